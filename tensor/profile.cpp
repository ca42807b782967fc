// Op scopes -> kernels/profile.h's aggregator. Each thread keeps the scopes of its current outermost scope
// (a batch: parents precede children); when the outermost scope closes, the batch goes to a global list.
// CPU batches are folded in at once; batches with CUDA scopes wait (their events may not have completed)
// until flush(), or until enough are pending that holding more events would only grow the pool.
#include "tensor/profile.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "tensor/cuda_runtime.h"

#if PNEUMO_WITH_CUDA
#include "kernels/cuda/profile_events.h"
#endif

namespace pneumo::profile {

namespace detail {
int state = -1;
bool nvtx_requested = false;  // NVTX ranges asked for by themselves (PNEUMO_NVTX, set_nvtx), not via timing

int read_env() {
  auto on = [](const char* name) {
    const char* v = std::getenv(name);
    return v && *v && std::strcmp(v, "0") != 0;
  };
  const bool timing = on("PNEUMO_PROFILE");
  nvtx_requested = on("PNEUMO_NVTX");
  state = (timing ? 1 : 0) | (timing || nvtx_requested ? 2 : 0);
  return state;
}
}  // namespace detail

namespace {

using Clock = std::chrono::steady_clock;

struct Record {
  const char* op;
  std::string shape;
  const char* direction;
  int parent;
  bool cuda = false;
  Clock::time_point cpu_start;
  double cpu_ms = 0;
#if PNEUMO_WITH_CUDA
  cudaEvent_t start = nullptr, end = nullptr;
  cudaStream_t stream = nullptr;
#endif
};

struct ThreadLog {
  std::vector<Record> batch;
  std::vector<int> open;  // indices into batch
  const char* direction = "fwd";
};
thread_local ThreadLog tlog;

constexpr size_t kMaxPendingScopes = 1 << 15;  // then fold in (waits for the device) to bound held events

struct Global {
  std::mutex mutex;
  kernels::profile::Aggregator aggregate;
  std::vector<std::vector<Record>> pending;  // batches holding CUDA events
  size_t pending_scopes = 0;
  bool started = false;
  Clock::time_point wall_start;
  bool exit_hook = false, exit_hook_after_cuda = false, printed = false;
};
Global& global() {
  static auto* g = new Global();  // never destroyed: used from an atexit handler
  return *g;
}

// Times a finished batch (waits for its CUDA events) and adds it to the aggregate. Caller holds the mutex.
void fold(Global& g, std::vector<Record>& batch) {
  std::vector<kernels::profile::Scope> scopes;
  scopes.reserve(batch.size());
  for (Record& r : batch) {
    double ms = r.cpu_ms;
#if PNEUMO_WITH_CUDA
    if (r.cuda) {
      ms = kernels::cuda::profile_event_elapsed_ms(r.start, r.end);
      const cudaEvent_t ev[2] = {r.start, r.end};
      kernels::cuda::profile_events_release(ev, 2);
    }
#endif
    scopes.push_back({r.op, std::move(r.shape), r.direction, r.parent, ms});
  }
  g.aggregate.add(scopes);
}

void fold_pending(Global& g) {
  for (auto& b : g.pending) fold(g, b);
  g.pending.clear();
  g.pending_scopes = 0;
}

void print_at_exit() {
  Global& g = global();
  {
    std::lock_guard<std::mutex> lock(g.mutex);
    if (g.printed) return;
    g.printed = true;
  }
  try {
    int top = 30;
    if (const char* v = std::getenv("PNEUMO_PROFILE_TOP")) top = std::atoi(v);
    const std::string t = table(top, -1, "pneumo op profile at exit (PNEUMO_PROFILE=1; self time per op)");
    std::fprintf(stderr, "%s", t.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pneumo op profile at exit: not available (%s)\n", e.what());
  }
}

}  // namespace

bool timing() { return (state() & 1) != 0; }
// Timing implies NVTX ranges; turning it off keeps them only where they were asked for by themselves (it kept
// them always, so ops after a profiled step still built an NVTX string each, skewing bench-models' timings).
void set_timing(bool on) {
  (void)state();  // reads the environment once
  detail::state = on ? 3 : (detail::nvtx_requested ? 2 : 0);
}
void set_nvtx(bool on) {
  (void)state();
  detail::nvtx_requested = on;
  detail::state = (state() & 1) | (on || (state() & 1) ? 2 : 0);
}

void OpScope::begin(const char* op, const Tensor& t) {
  open_ = state();
#if PNEUMO_WITH_CUDA
  const bool cuda = t.defined() && t.device().is_cuda();
  if (open_ & 2) {
    std::string msg = std::string(op) + " " + tlog.direction;
    kernels::cuda::nvtx_push(msg.c_str());
  }
#else
  const bool cuda = false;
#endif
  if (!(open_ & 1)) return;
  Global& g = global();
  if (tlog.open.empty()) {
    std::lock_guard<std::mutex> lock(g.mutex);
    if (!g.started) {
      g.started = true;
      g.wall_start = Clock::now();
    }
    // Print at exit only when PNEUMO_PROFILE asked for it (not when a test or bench turned timing on).
    const char* env = std::getenv("PNEUMO_PROFILE");
    const bool from_env = env && *env && std::strcmp(env, "0") != 0;
    if (from_env && !g.exit_hook) {
      g.exit_hook = true;
      std::atexit(print_at_exit);
    }
    // Handlers run in reverse order: one registered after CUDA started runs before CUDA's own teardown.
    if (from_env && cuda && !g.exit_hook_after_cuda) {
      g.exit_hook_after_cuda = true;
      std::atexit(print_at_exit);
    }
  }
  Record r;
  r.op = op;
  r.shape = t.defined() ? shape_str(t.shape()) + " " + dtype_name(t.dtype()) : std::string("-");
  r.direction = tlog.direction;
  r.parent = tlog.open.empty() ? -1 : tlog.open.back();
  r.cuda = cuda;
#if PNEUMO_WITH_CUDA
  if (cuda) {
    r.stream = cuda::current_stream(t.device().index);
    r.start = kernels::cuda::profile_event_record(r.stream);
  }
#endif
  if (!cuda) r.cpu_start = Clock::now();
  tlog.open.push_back(static_cast<int>(tlog.batch.size()));
  tlog.batch.push_back(std::move(r));
}

void OpScope::end() {
  // Never throws (runs in destructors, also while an op's exception unwinds).
  try {
#if PNEUMO_WITH_CUDA
    if (open_ & 2) kernels::cuda::nvtx_pop();
#endif
    if (!(open_ & 1) || tlog.open.empty()) return;
    Record& r = tlog.batch[static_cast<size_t>(tlog.open.back())];
    tlog.open.pop_back();
#if PNEUMO_WITH_CUDA
    if (r.cuda) r.end = kernels::cuda::profile_event_record(r.stream);
#endif
    if (!r.cuda) r.cpu_ms = std::chrono::duration<double, std::milli>(Clock::now() - r.cpu_start).count();
    if (!tlog.open.empty()) return;
    bool any_cuda = false;
    for (const Record& x : tlog.batch) any_cuda = any_cuda || x.cuda;
    Global& g = global();
    std::lock_guard<std::mutex> lock(g.mutex);
    if (!any_cuda) {
      fold(g, tlog.batch);
    } else {
      g.pending_scopes += tlog.batch.size();
      g.pending.push_back(std::move(tlog.batch));
      if (g.pending_scopes > kMaxPendingScopes) fold_pending(g);
    }
    tlog.batch.clear();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pneumo profile: scope end failed: %s\n", e.what());
  }
}

DirectionGuard::DirectionGuard(const char* direction) : previous_(tlog.direction) { tlog.direction = direction; }
DirectionGuard::~DirectionGuard() { tlog.direction = previous_; }

void reset() {
  Global& g = global();
  std::lock_guard<std::mutex> lock(g.mutex);
  fold_pending(g);  // releases their events
  g.aggregate.clear();
  g.started = true;
  g.wall_start = Clock::now();
}

void flush() {
  Global& g = global();
  std::lock_guard<std::mutex> lock(g.mutex);
  fold_pending(g);
}

double wall_ms() {
  Global& g = global();
  std::lock_guard<std::mutex> lock(g.mutex);
  return g.started ? std::chrono::duration<double, std::milli>(Clock::now() - g.wall_start).count() : 0.0;
}

std::vector<kernels::profile::Row> rows() {
  Global& g = global();
  std::lock_guard<std::mutex> lock(g.mutex);
  fold_pending(g);
  return g.aggregate.rows();
}

std::string table(int top, double wall, const std::string& title) {
  Global& g = global();
  std::lock_guard<std::mutex> lock(g.mutex);
  fold_pending(g);
  if (wall < 0)
    wall = g.started ? std::chrono::duration<double, std::milli>(Clock::now() - g.wall_start).count() : 0.0;
  return g.aggregate.table(top, wall, title);
}

}  // namespace pneumo::profile
