// Storage: raw memory from the CPU allocator (64-byte aligned, large blocks cached: kernels/cpu/host_memory.h) or the CUDA caching allocator, optionally
// poisoned with 0xFF bytes (NaN for floats) so that tests catch outputs an op never wrote.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels/check.h"
#include "kernels/cpu/host_memory.h"
#include "tensor/allocator.h"
#include "tensor/cuda_runtime.h"
#include "tensor/tensor.h"

namespace pneumo {

namespace {
std::atomic<bool> g_poison{false};
}
void set_poison_allocations(bool on) { g_poison = on; }
bool poison_allocations() { return g_poison; }

void* cpu_alloc(size_t bytes) { return kernels::cpu::host_alloc(bytes); }
void cpu_free(void* p, size_t bytes) { kernels::cpu::host_free(p, bytes); }

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  if (device.is_cpu()) {
    ptr_ = cpu_alloc(bytes);
    if (g_poison) std::memset(ptr_, 0xFF, bytes);
  } else {
    ptr_ = cuda_memory::allocate(bytes, device.index);
    if (g_poison && bytes) cuda::memset_async(ptr_, 0xFF, bytes, device.index);
  }
}

Storage::~Storage() {
  if (!ptr_) return;
  if (device_.is_cpu()) {
    cpu_free(ptr_, bytes_);
  } else {
    try {
      cuda_memory::release(ptr_, device_.index);
    } catch (...) {  // never throw from a destructor; the driver may already be shutting down
    }
  }
}


}  // namespace pneumo
