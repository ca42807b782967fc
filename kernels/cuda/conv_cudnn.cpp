// cuDNN convolution (see conv_cudnn.h): NHWC descriptors, KRSC filters, float32 compute. Per (device, dtype,
// shape, geometry) one cache entry holds the descriptors and, per direction, the algorithm chosen the first
// time that direction runs: cudnnFind*AlgorithmEx timings, keeping only deterministic algorithms (backward
// data/filter) and, for float32, only non-tensor-op math (no TF32). Workspaces come from the caller's
// allocator (the caching allocator) on the current stream. Compiled only in CUDA builds.
#if PNEUMO_WITH_CUDA
#include "kernels/cuda/conv_cudnn.h"
#include "kernels/math_mode.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "kernels/cuda/conv_graph.h"
#include "kernels/cuda/cuda_util.h"

namespace pneumo::kernels::cuda {
namespace {

enum Direction { kForward = 0, kBackwardData = 1, kBackwardFilter = 2 };

cudnnHandle_t handle_for(int device, cudaStream_t stream) {
  static std::mutex mu;
  static std::map<int, cudnnHandle_t> handles;  // one per device, for the life of the process
  cudnnHandle_t h;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = handles.find(device);
    if (it == handles.end()) {
      DeviceGuard guard(device);
      PNEUMO_CUDNN_CHECK(cudnnCreate(&h));
      handles[device] = h;
    } else {
      h = it->second;
    }
  }
  PNEUMO_CUDNN_CHECK(cudnnSetStream(h, stream));
  return h;
}

cudnnDataType_t cudnn_type(DType dt) {
  switch (dt) {
    case DType::F32: return CUDNN_DATA_FLOAT;
    case DType::BF16: return CUDNN_DATA_BFLOAT16;
    default: PNEUMO_FAIL("conv2d (cuDNN): supports F32 and BF16, got ", dtype_name(dt));
  }
}

bool math_allowed(DType dt, cudnnMathType_t m) {
  // float32 parity with the CPU oracle: no tensor-op (TF32) kernels, unless allow_tf32() (PNEUMO_TF32=1).
  return dt != DType::F32 || m == CUDNN_DEFAULT_MATH || m == CUDNN_FMA_MATH || allow_tf32();
}

struct Choice {
  bool ready = false;
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

struct Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv[3] = {nullptr, nullptr, nullptr};  // one per direction (math type differs)
  Choice choice[3];
  std::mutex mu;  // serialises the one-time search per direction
  ~Plan() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    for (auto c : conv)
      if (c) cudnnDestroyConvolutionDescriptor(c);
  }
};

using PlanKey = std::array<int64_t, 17>;
std::mutex g_plans_mu;
std::map<PlanKey, std::unique_ptr<Plan>> g_plans;

Plan& plan_for(DType dt, const ConvShape& cs, int device) {
  PNEUMO_CHECK(cs.pad_top == cs.pad_bottom && cs.pad_left == cs.pad_right,
               "conv2d (cuDNN): asymmetric padding must be applied explicitly first (t", cs.pad_top, " b", cs.pad_bottom,
               " l", cs.pad_left, " r", cs.pad_right, ")");
  const PlanKey key{device, static_cast<int64_t>(dt), cs.n, cs.h, cs.w, cs.c, cs.k, cs.r, cs.s, cs.pad_top,
                    cs.pad_left, cs.stride_h, cs.stride_w, cs.dilation_h, cs.dilation_w, cs.groups,
                    dt == DType::F32 && allow_tf32() ? 1 : 0};
  std::lock_guard<std::mutex> lock(g_plans_mu);
  auto it = g_plans.find(key);
  if (it != g_plans.end()) return *it->second;
  auto p = std::make_unique<Plan>();
  const cudnnDataType_t t = cudnn_type(dt);
  auto i32 = [](int64_t v) {
    PNEUMO_CHECK(v <= INT32_MAX, "conv2d (cuDNN): size ", v, " exceeds int32");
    return static_cast<int>(v);
  };
  PNEUMO_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
  PNEUMO_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NHWC, t, i32(cs.n), i32(cs.c), i32(cs.h), i32(cs.w)));
  PNEUMO_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
  PNEUMO_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NHWC, t, i32(cs.n), i32(cs.k), i32(cs.oh), i32(cs.ow)));
  PNEUMO_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  PNEUMO_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, t, CUDNN_TENSOR_NHWC, i32(cs.k), i32(cs.c_per_group()), i32(cs.r),
                                                i32(cs.s)));
  for (auto& c : p->conv) {
    PNEUMO_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&c));
    PNEUMO_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(c, i32(cs.pad_top), i32(cs.pad_left), i32(cs.stride_h),
                                                       i32(cs.stride_w), i32(cs.dilation_h), i32(cs.dilation_w),
                                                       CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    PNEUMO_CUDNN_CHECK(cudnnSetConvolutionGroupCount(c, i32(cs.groups)));
    PNEUMO_CUDNN_CHECK(cudnnSetConvolutionMathType(
        c, dt == DType::BF16 || (dt == DType::F32 && allow_tf32()) ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
  }
  int on = 0, oc = 0, oh = 0, ow = 0;
  PNEUMO_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv[0], p->x, p->w, &on, &oc, &oh, &ow));
  PNEUMO_CHECK(on == cs.n && oc == cs.k && oh == cs.oh && ow == cs.ow, "conv2d (cuDNN): output ", on, "x", oc, "x", oh,
               "x", ow, " differs from the expected [", cs.n, ", ", cs.oh, ", ", cs.ow, ", ", cs.k, "]");
  return *g_plans.emplace(key, std::move(p)).first->second;
}

// Workspace for the algorithm search: as much as is reasonable, halving on allocation failure.
struct SearchWorkspace {
  void* ptr = nullptr;
  size_t bytes = 0;
  int device;
  const WorkspaceAllocator& alloc;
  SearchWorkspace(int dev, const WorkspaceAllocator& a) : device(dev), alloc(a) {
    size_t free_bytes = 0, total = 0;
    PNEUMO_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
    bytes = std::min<size_t>(size_t{512} << 20, free_bytes / 2);
    while (bytes >= (size_t{1} << 20)) {
      try {
        ptr = alloc.allocate(bytes, device);
        return;
      } catch (const Error&) {
        bytes /= 2;
      }
    }
    bytes = 0;
  }
  ~SearchWorkspace() {
    if (ptr) alloc.release(ptr, device);
  }
};

// Diagnostics, read once from the environment:
//   PNEUMO_CUDNN_ALGOS=no-transform  skip the FFT and Winograd algorithms (their transformed tiles add
//                                    rounding, most of all in bf16), to tell their share of an accuracy gap;
//   PNEUMO_CUDNN_LOG=1               print each shape's chosen algorithm per direction on stderr.
bool env_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, value) == 0;
}
bool skip_transform_algorithms() {
  static const bool skip = env_is("PNEUMO_CUDNN_ALGOS", "no-transform");
  return skip;
}
bool log_choices() {
  static const bool log = env_is("PNEUMO_CUDNN_LOG", "1");
  return log;
}

bool is_transform(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}
bool is_transform(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
}
bool is_transform(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

template <typename Perf>
bool acceptable(const Perf& p, DType dt, bool need_deterministic) {
  return p.status == CUDNN_STATUS_SUCCESS && math_allowed(dt, p.mathType) &&
         (!need_deterministic || p.determinism == CUDNN_DETERMINISTIC) &&
         !(skip_transform_algorithms() && is_transform(p.algo));
}

template <typename Perf>
Choice pick(const Perf* perf, int count, DType dt, bool need_deterministic, const char* what, const ConvShape& cs) {
  // Deterministic first; if cuDNN offers none for this shape, the fastest other one, said once on stderr
  // (a failing training run would be worse than a non-bitwise-reproducible gradient).
  for (int pass = 0; pass < 2; ++pass)
    for (int i = 0; i < count; ++i)
      if (acceptable(perf[i], dt, need_deterministic && pass == 0)) {
        if (pass == 1)
          std::fprintf(stderr,
                       "pneumo: conv2d %s has no deterministic cuDNN algorithm for input [%lld, %lld, %lld, %lld], "
                       "groups %lld; using a non-deterministic one\n",
                       what, static_cast<long long>(cs.n), static_cast<long long>(cs.h), static_cast<long long>(cs.w),
                       static_cast<long long>(cs.c), static_cast<long long>(cs.groups));
        if (log_choices())
          std::fprintf(stderr, "pneumo: conv2d %s %s input [%lld, %lld, %lld, %lld] kernel %lldx%lld groups %lld: algo %d%s\n",
                       what, dtype_name(dt), static_cast<long long>(cs.n), static_cast<long long>(cs.h),
                       static_cast<long long>(cs.w), static_cast<long long>(cs.c), static_cast<long long>(cs.r),
                       static_cast<long long>(cs.s), static_cast<long long>(cs.groups), static_cast<int>(perf[i].algo),
                       is_transform(perf[i].algo) ? " (FFT/Winograd)" : "");
        Choice c;
        c.ready = true;
        c.algo = static_cast<int>(perf[i].algo);
        c.math = perf[i].mathType;
        c.workspace = perf[i].memory;
        return c;
      }
  PNEUMO_FAIL("conv2d (cuDNN ", what, "): no usable algorithm for input [", cs.n, ", ", cs.h, ", ", cs.w, ", ", cs.c,
              "], weight [", cs.k, ", ", cs.r, ", ", cs.s, ", ", cs.c_per_group(), "], groups ", cs.groups, " (",
              dtype_name(dt), ")");
}

struct Workspace {
  void* ptr = nullptr;
  int device;
  const WorkspaceAllocator& alloc;
  Workspace(size_t bytes, int dev, const WorkspaceAllocator& a) : device(dev), alloc(a) {
    if (bytes) ptr = alloc.allocate(bytes, device);
  }
  ~Workspace() {
    if (ptr) alloc.release(ptr, device);
  }
};

// Chooses (once) the algorithm of one direction, timing candidates on the real buffers; the search writes
// the direction's output buffer, which the caller overwrites right after -- unless the output holds values
// the call adds to (`out_bytes_live`: its size), then the search writes a scratch buffer of that size.
const Choice& choose(Plan& p, Direction dir, DType dt, const ConvShape& cs, cudnnHandle_t h, cudaStream_t stream,
                     const void* a, const void* b, void* out, int device, const WorkspaceAllocator& alloc,
                     size_t out_bytes_live = 0) {
  std::lock_guard<std::mutex> lock(p.mu);
  Choice& c = p.choice[dir];
  if (c.ready) return c;
  // Under capture Find would fail and the untimed heuristic choice below would be cached for good.
  require_not_capturing(stream, "conv2d (cuDNN) algorithm search");
  Workspace scratch(out_bytes_live, device, alloc);
  if (out_bytes_live) out = scratch.ptr;
  SearchWorkspace ws(device, alloc);
  constexpr int kMax = 16;
  int returned = 0;
  if (dir == kForward) {
    cudnnConvolutionFwdAlgoPerf_t perf[kMax];
    cudnnStatus_t s = cudnnFindConvolutionForwardAlgorithmEx(h, p.x, a, p.w, b, p.conv[dir], p.y, out, kMax, &returned,
                                                             perf, ws.ptr, ws.bytes);
    if (s != CUDNN_STATUS_SUCCESS)
      PNEUMO_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p.x, p.w, p.conv[dir], p.y, kMax, &returned, perf));
    c = pick(perf, returned, dt, false, "forward", cs);
  } else if (dir == kBackwardData) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[kMax];
    cudnnStatus_t s = cudnnFindConvolutionBackwardDataAlgorithmEx(h, p.w, b, p.y, a, p.conv[dir], p.x, out, kMax,
                                                                  &returned, perf, ws.ptr, ws.bytes);
    if (s != CUDNN_STATUS_SUCCESS)
      PNEUMO_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w, p.y, p.conv[dir], p.x, kMax, &returned, perf));
    c = pick(perf, returned, dt, true, "backward data", cs);
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[kMax];
    cudnnStatus_t s = cudnnFindConvolutionBackwardFilterAlgorithmEx(h, p.x, b, p.y, a, p.conv[dir], p.w, out, kMax,
                                                                    &returned, perf, ws.ptr, ws.bytes);
    if (s != CUDNN_STATUS_SUCCESS)
      PNEUMO_CUDNN_CHECK(
          cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x, p.y, p.conv[dir], p.w, kMax, &returned, perf));
    c = pick(perf, returned, dt, true, "backward filter", cs);
  }
  // float32 without TF32: the search ran with FMA math, but an entry may report CUDNN_DEFAULT_MATH, which cuDNN
  // documents as permitting TF32 tensor cores on Ampere and later. Keep the descriptor at FMA.
  if (dt == DType::F32 && !allow_tf32() && c.math == CUDNN_DEFAULT_MATH) c.math = CUDNN_FMA_MATH;
  PNEUMO_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv[dir], c.math));
  return c;
}

void check_allocator(const WorkspaceAllocator& a) {
  PNEUMO_CHECK(a.allocate && a.release, "conv2d (cuDNN): no workspace allocator given");
}

}  // namespace

void conv2d_forward_cudnn(DType dt, const ConvShape& cs, const void* x, const void* w, void* y, int device,
                          cudaStream_t stream, const WorkspaceAllocator& alloc) {
  check_allocator(alloc);
  if (conv_engine() == ConvEngine::Graph &&
      conv2d_graph(ConvDirection::Forward, dt, cs, x, w, y, device, stream, alloc))
    return;
  cudnnHandle_t h = handle_for(device, stream);
  Plan& p = plan_for(dt, cs, device);
  const Choice& c = choose(p, kForward, dt, cs, h, stream, x, w, y, device, alloc);
  Workspace ws(c.workspace, device, alloc);
  const float one = 1.f, zero = 0.f;
  PNEUMO_CUDNN_CHECK(cudnnConvolutionForward(h, &one, p.x, x, p.w, w, p.conv[kForward],
                                             static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), ws.ptr, c.workspace, &zero,
                                             p.y, y));
}

void conv2d_backward_data_cudnn(DType dt, const ConvShape& cs, const void* dy, const void* w, void* dx, int device,
                                cudaStream_t stream, const WorkspaceAllocator& alloc, bool accumulate) {
  check_allocator(alloc);
  // The graph engine's plans are built with beta = 0: an accumulating call takes the legacy path.
  if (!accumulate && conv_engine() == ConvEngine::Graph &&
      conv2d_graph(ConvDirection::BackwardData, dt, cs, dy, w, dx, device, stream, alloc))
    return;
  cudnnHandle_t h = handle_for(device, stream);
  Plan& p = plan_for(dt, cs, device);
  const size_t dx_bytes = static_cast<size_t>(cs.n * cs.h * cs.w * cs.c) * dtype_size(dt);
  const Choice& c = choose(p, kBackwardData, dt, cs, h, stream, dy, w, dx, device, alloc, accumulate ? dx_bytes : 0);
  Workspace ws(c.workspace, device, alloc);
  // dx = 1 * dgrad + beta * dx, blended in float32 before dx's rounding (cuDNN's scaling parameters).
  const float one = 1.f, beta = accumulate ? 1.f : 0.f;
  PNEUMO_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, p.w, w, p.y, dy, p.conv[kBackwardData],
                                                  static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), ws.ptr,
                                                  c.workspace, &beta, p.x, dx));
}

void conv2d_backward_weight_cudnn(DType dt, const ConvShape& cs, const void* dy, const void* x, void* dw, int device,
                                  cudaStream_t stream, const WorkspaceAllocator& alloc) {
  check_allocator(alloc);
  if (conv_engine() == ConvEngine::Graph &&
      conv2d_graph(ConvDirection::BackwardWeight, dt, cs, dy, x, dw, device, stream, alloc))
    return;
  cudnnHandle_t h = handle_for(device, stream);
  Plan& p = plan_for(dt, cs, device);
  const Choice& c = choose(p, kBackwardFilter, dt, cs, h, stream, dy, x, dw, device, alloc);
  Workspace ws(c.workspace, device, alloc);
  const float one = 1.f, zero = 0.f;
  PNEUMO_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, p.x, x, p.y, dy, p.conv[kBackwardFilter],
                                                    static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo), ws.ptr,
                                                    c.workspace, &zero, p.w, dw));
}

size_t conv_algorithm_cache_size() {
  std::lock_guard<std::mutex> lock(g_plans_mu);
  return g_plans.size();
}

}  // namespace pneumo::kernels::cuda
#endif  // PNEUMO_WITH_CUDA
