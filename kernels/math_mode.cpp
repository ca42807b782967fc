#include "kernels/math_mode.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace pneumo::kernels {
namespace {
std::atomic<int> g_tf32{-1};  // -1: PNEUMO_TF32 not read yet
}

bool allow_tf32() {
  int v = g_tf32.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* e = std::getenv("PNEUMO_TF32");
    v = e && *e && std::strcmp(e, "0") != 0 ? 1 : 0;
    int expected = -1;
    if (!g_tf32.compare_exchange_strong(expected, v)) v = expected;  // a set_allow_tf32 came first
  }
  return v == 1;
}

void set_allow_tf32(bool on) { g_tf32.store(on ? 1 : 0); }

}  // namespace pneumo::kernels
