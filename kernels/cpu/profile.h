// CPU kernel profiler, off unless PNEUMO_CPU_PROFILE is set (to anything but 0): each PNEUMO_CPU_SCOPE adds its
// wall time, less that of the scopes nested in it (self time), to a per-name total, and the totals are printed
// to stderr as a table when the process exits. Only scopes entered outside an OpenMP parallel region are timed
// (a kernel called from inside a parallel region counts toward its caller). When off, a scope costs one
// predictable branch. Separate from the CUDA profiling hooks of tensor/dispatch.h.
#pragma once
#include <cstdint>

namespace pneumo::kernels::cpu {

bool profile_enabled();
// PNEUMO_CPU_PROFILE=shapes: kernels that have a shape label them with it (profile_label), one row per shape.
bool profile_shapes();
// A stable copy of `label` (kept for the process's life) to name a scope.
const char* profile_label(const char* label);

class ProfileScope {
 public:
  explicit ProfileScope(const char* name) : name_(profile_enabled() ? name : nullptr) {
    if (name_) begin();
  }
  ~ProfileScope() {
    if (name_) end();
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  void begin();
  void end();
  const char* name_;
  int64_t start_ns_ = 0, child_ns_ = 0;
  ProfileScope* parent_ = nullptr;
  bool timed_ = false;
};

}  // namespace pneumo::kernels::cpu

#define PNEUMO_CPU_SCOPE_CAT2(a, b) a##b
#define PNEUMO_CPU_SCOPE_CAT(a, b) PNEUMO_CPU_SCOPE_CAT2(a, b)
#define PNEUMO_CPU_SCOPE(name) ::pneumo::kernels::cpu::ProfileScope PNEUMO_CPU_SCOPE_CAT(pneumo_cpu_scope_, __LINE__)(name)
