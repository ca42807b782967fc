// Op profiling and NVTX ranges (issue 12 part 2 item 1). Off by default and then costs one load and branch
// per op scope (no string, no event, no clock):
//   PNEUMO_PROFILE=1  time every op scope (cudaEvents around its launches on CUDA, std::chrono on the CPU),
//                     aggregate the SELF time by (op, shape + dtype, direction) and print the top-N table
//                     with the op sum against wall time at exit (N = PNEUMO_PROFILE_TOP, default 30);
//                     `pneumo bench-models --profile` prints it per network instead;
//   PNEUMO_NVTX=1     push an NVTX range "op fwd" / "op bwd" per scope (for nsys; PNEUMO_PROFILE implies it).
// Scopes: PNEUMO_OP_SCOPE (tensor/dispatch.h) at the tensor ops, and one per node in the autograd backward
// loop (which marks its thread "bwd"); a scope inside another is charged only its own time.
// CUDA timings are of the device: ops run asynchronously, so a scope's time is the device time between its
// first and last launch; host gaps between ops show as wall - sum. One device per process is assumed.
#pragma once
#include <string>
#include <vector>

#include "kernels/profile.h"
#include "tensor/tensor.h"

namespace pneumo::profile {

namespace detail {
extern int state;  // -1 unread, else bit 1: timing, bit 2: NVTX
int read_env();
}  // namespace detail

inline int state() {
  const int s = detail::state;
  return s >= 0 ? s : detail::read_env();
}
inline bool active() { return state() > 0; }
bool timing();
void set_timing(bool on);  // tests and bench-models; overrides PNEUMO_PROFILE
void set_nvtx(bool on);

class OpScope {
 public:
  OpScope(const char* op, const Tensor& t) {
    if (active()) begin(op, t);
  }
  ~OpScope() {
    if (open_) end();
  }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  void begin(const char* op, const Tensor& t);
  void end();
  int open_ = 0;  // the state bits this scope opened with
};

// Sets this thread's direction label ("fwd" outside, "bwd" in the autograd backward loop, "opt" in
// optimiser steps) for the scopes opened inside it.
class DirectionGuard {
 public:
  explicit DirectionGuard(const char* direction);
  ~DirectionGuard();
  DirectionGuard(const DirectionGuard&) = delete;
  DirectionGuard& operator=(const DirectionGuard&) = delete;

 private:
  const char* previous_;
};

// Drops everything recorded and restarts the wall clock.
void reset();
// Waits for pending device timings and folds them into the aggregate (syncs the device when CUDA scopes
// are pending).
void flush();
// Milliseconds since the last reset() (or the first scope), host clock.
double wall_ms();
// flush(), then the aggregate rows / the table (wall_ms < 0: wall since reset()).
std::vector<kernels::profile::Row> rows();
std::string table(int top, double wall_ms = -1, const std::string& title = "pneumo op profile (self time)");

}  // namespace pneumo::profile
