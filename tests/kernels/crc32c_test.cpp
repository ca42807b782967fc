// CRC-32C: the standard check value, the hardware path against the table path on every length and
// alignment, and extension in pieces.
#include "kernels/crc32c.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace pneumo;

TEST(Crc32c, CheckValuesFromTheStandard) {
  // RFC 3720 (iSCSI) B.4: "123456789" -> E3069283; 32 zero bytes -> 8A9136AA; 32 bytes of 0xFF -> 62A8AB43.
  const std::string digits = "123456789";
  EXPECT_EQ(crc32c(digits.data(), digits.size()), 0xE3069283u);
  EXPECT_EQ(crc32c_extend_portable(0, digits.data(), digits.size()), 0xE3069283u);
  const std::vector<unsigned char> zeros(32, 0), ones(32, 0xFF);
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
}

TEST(Crc32c, HardwareAndTableAgreeOnEveryLengthAndAlignmentAndExtend) {
  std::mt19937 rng(7);
  std::vector<unsigned char> buf(4096 + 16);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  for (size_t offset = 0; offset < 8; ++offset)
    for (size_t n : {0, 1, 3, 7, 8, 9, 15, 16, 63, 64, 65, 1000, 4096}) {
      const unsigned char* p = buf.data() + offset;
      const uint32_t whole = crc32c(p, n);
      ASSERT_EQ(whole, crc32c_extend_portable(0, p, n)) << "offset " << offset << " length " << n;
      const size_t cut = n / 3;
      ASSERT_EQ(whole, crc32c_extend(crc32c(p, cut), p + cut, n - cut)) << "offset " << offset << " length " << n;
    }
  // One flipped bit changes it.
  const uint32_t before = crc32c(buf.data(), 4096);
  buf[1234] ^= 0x10;
  EXPECT_NE(crc32c(buf.data(), 4096), before);
}
