#include "kernels/math_mode.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace pneumo::kernels {
namespace {

std::atomic<int> g_tf32{-1}, g_dgrad_accumulate{-1};  // -1: the environment not read yet

// A mode's value: set in code, else the environment variable (set and not "0" means on), read once.
bool mode(std::atomic<int>& value, const char* env) {
  int v = value.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* e = std::getenv(env);
    v = e && *e && std::strcmp(e, "0") != 0 ? 1 : 0;
    int expected = -1;
    if (!value.compare_exchange_strong(expected, v)) v = expected;  // a set_* came first
  }
  return v == 1;
}

}  // namespace

bool allow_tf32() { return mode(g_tf32, "PNEUMO_TF32"); }
void set_allow_tf32(bool on) { g_tf32.store(on ? 1 : 0); }

bool dgrad_accumulate() { return mode(g_dgrad_accumulate, "PNEUMO_DGRAD_ACCUMULATE"); }
void set_dgrad_accumulate(bool on) { g_dgrad_accumulate.store(on ? 1 : 0); }

}  // namespace pneumo::kernels
