// CRC-32C (Castagnoli, polynomial 0x1EDC6F41 reflected: 0x82F63B78), the checksum of iSCSI, ext4 and
// Snappy frames. Used to detect corrupted checkpoints. The SSE4.2 crc32 instruction when the CPU has it
// (several GB/s), else a slicing-by-8 table (about 1 GB/s). crc32c("123456789") == 0xE3069283.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pneumo {

// Continues `crc` (0 to start) over `size` bytes: crc32c(a + b) == crc32c_extend(crc32c_extend(0, a), b).
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size);
inline uint32_t crc32c(const void* data, size_t size) { return crc32c_extend(0, data, size); }
// The table version alone (tests compare it with the hardware one).
uint32_t crc32c_extend_portable(uint32_t crc, const void* data, size_t size);

}  // namespace pneumo
