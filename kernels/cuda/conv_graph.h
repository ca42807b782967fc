// Convolution through cuDNN 9's backend (graph) API: one operation graph per (device, dtype, direction,
// geometry, pointer alignment, determinism policy) holding a single CONVOLUTION_FORWARD / BACKWARD_DATA /
// BACKWARD_FILTER operation on NHWC tensors (F32 or BF16, float32 compute), engine configurations from the
// heuristics (CUDNN_HEUR_MODE_A, then B, then FALLBACK until enough are usable), filtered by their notes
// (conv_graph_policy.h engine_rejection: deterministic unless PNEUMO_CONV_NONDETERMINISTIC=1, no TF32 for
// float32, float32 accumulation, no runtime compilation), plans over the workspace limit dropped, the best
// PNEUMO_CONV_AUTOTUNE plans timed once on the caller's buffers and the fastest cached for the process (and
// by engine tag in PNEUMO_CONV_PLAN_CACHE when set). Workspace comes from the caller's allocator.
//
// conv2d_graph returns false when no plan could be built for the key (the reason is printed once per key on
// stderr) and every later call of that key returns false at once: the caller (conv_cudnn.cpp) then runs the
// legacy path. Selected by PNEUMO_CONV_ENGINE=graph (conv_cudnn.h conv_engine); the default stays legacy
// until a GPU run verifies this path (docs/gpu-status.md).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/cuda/conv_cudnn.h"
#include "kernels/cuda/conv_graph_policy.h"

namespace pneumo::kernels::cuda {

// a, b, out as in conv_cudnn.h: forward (x, w -> y), backward data (dy, w -> dx), backward weight (dy, x -> dw).
bool conv2d_graph(ConvDirection dir, DType dt, const ConvShape& cs, const void* a, const void* b, void* out, int device,
                  cudaStream_t stream, const WorkspaceAllocator& workspace);

// Cumulative counters (for tests and logs).
struct ConvGraphStats {
  uint64_t plans_built = 0;     // keys whose plan was built (heuristics + finalize, timed when > 1 candidate)
  uint64_t plans_timed = 0;     // candidate plans timed by the autotuner
  uint64_t disk_hits = 0;       // keys whose engine came from PNEUMO_CONV_PLAN_CACHE (no timing)
  uint64_t cache_hits = 0;      // calls served by an already built plan
  uint64_t failed_keys = 0;     // keys whose build failed (each falls back to legacy, said once)
  uint64_t fallback_calls = 0;  // calls that returned false
};
ConvGraphStats conv_graph_stats();
size_t conv_graph_cache_size();

// The engine tag chosen for a key ("eng12_k2=1_k3=0"), "failed: <reason>" or "" when never built.
std::string conv_graph_choice(ConvDirection dir, DType dt, const ConvShape& cs, int device, int64_t alignment = 16);

// Builds and finalizes one direction's tensor, convolution and operation descriptors (no handle: runs
// without a GPU, so CUDA builds check the attributes on the CPU) and returns "" or cuDNN's reason.
std::string conv_graph_validate(ConvDirection dir, DType dt, const ConvShape& cs, int64_t alignment = 16);

// Tests: while on, every new key's build fails (as a failed finalize would), so the fallback can be tested.
void conv_graph_inject_build_failures(bool on);

}  // namespace pneumo::kernels::cuda
