// Multi-tensor optimiser kernels on CUDA (contract in optim_kernels.h). The host list of tensors and a
// chunk table (tensor index, chunk index) go to the device in one copy; one block per 64K-element chunk
// runs the shared element update (kernels/optim_update.h) 4-wide where the tensor's pointers allow.
#include "kernels/cuda/optim_kernels.h"

#include <algorithm>
#include <vector>

#include "kernels/cuda/cuda_util.cuh"

namespace pneumo::kernels::cuda {
namespace {

constexpr int kOptimThreads = 512;  // one block per 64K-element chunk

struct Chunk {
  int32_t tensor;
  int32_t index;  // chunk index inside the tensor
};

struct ClipTensor {
  float* data;
  int64_t numel;
};

template <typename Tensor>
std::vector<Chunk> make_chunks(const Tensor* tensors, int count, int64_t (*numel)(const Tensor&)) {
  std::vector<Chunk> chunks;
  for (int k = 0; k < count; ++k) {
    const int64_t n = numel(tensors[k]);
    const int64_t c = (n + kOptimChunk - 1) / kOptimChunk;
    PNEUMO_CHECK(c < (int64_t(1) << 31), "multi-tensor kernel: tensor ", k, " of ", n, " elements is too large");
    for (int64_t i = 0; i < c; ++i) chunks.push_back({k, static_cast<int32_t>(i)});
  }
  return chunks;
}

int64_t optim_numel(const OptimTensor& t) { return t.numel; }
int64_t clip_numel(const ClipTensor& t) { return t.numel; }

// Copies [tensors | chunks] into the workspace; returns the device addresses.
template <typename Tensor>
void upload_tables(const Tensor* tensors, int count, const std::vector<Chunk>& chunks, void* workspace,
                   size_t workspace_bytes, size_t extra_bytes, cudaStream_t stream, void* host_staging,
                   Tensor** d_tensors, Chunk** d_chunks, char** d_extra) {
  const size_t tensor_bytes = align256(sizeof(Tensor) * count);
  const size_t chunk_bytes = align256(sizeof(Chunk) * chunks.size());
  PNEUMO_CHECK(tensor_bytes + chunk_bytes + extra_bytes <= workspace_bytes, "multi-tensor kernel: workspace of ",
               workspace_bytes, " bytes, need ", tensor_bytes + chunk_bytes + extra_bytes);
  const size_t table_bytes = tensor_bytes + chunk_bytes;
  std::vector<char> pageable;
  char* host = static_cast<char*>(host_staging);
  if (!host) {
    pageable.resize(table_bytes);
    host = pageable.data();
  }
  std::fill(host, host + table_bytes, char(0));
  std::copy(reinterpret_cast<const char*>(tensors), reinterpret_cast<const char*>(tensors + count), host);
  std::copy(reinterpret_cast<const char*>(chunks.data()), reinterpret_cast<const char*>(chunks.data() + chunks.size()),
            host + tensor_bytes);
  char* ws = static_cast<char*>(workspace);
  // Pageable source: cudaMemcpyAsync stages it before returning, so `pageable` may go out of scope. Pinned
  // staging (capture): the copy reads it when it runs, on every replay.
  PNEUMO_CUDA_CHECK(cudaMemcpyAsync(ws, host, table_bytes, cudaMemcpyHostToDevice, stream));
  *d_tensors = reinterpret_cast<Tensor*>(ws);
  *d_chunks = reinterpret_cast<Chunk*>(ws + tensor_bytes);
  *d_extra = ws + tensor_bytes + chunk_bytes;
}

__global__ void optimizer_step_kernel(const OptimTensor* __restrict__ tensors, const Chunk* __restrict__ chunks,
                                      OptimHyper hyper, OptimCapturable capturable) {
  const Chunk ch = chunks[blockIdx.x];
  OptimTensor t = tensors[ch.tensor];
  if (capturable.lr) {  // uniform over the block: the scalars once per block, in double, then shared
    __shared__ float scalars[4];
    if (threadIdx.x == 0) {
      OptimTensor tt = t;
      OptimHyper hh = hyper;
      capturable_scalars(capturable, hh, tt);
      scalars[0] = tt.step_size;
      scalars[1] = tt.bias_correction2_sqrt;
      scalars[2] = tt.param_scale;
      scalars[3] = hh.lr;
    }
    __syncthreads();
    t.step_size = scalars[0];
    t.bias_correction2_sqrt = scalars[1];
    t.param_scale = scalars[2];
    hyper.lr = scalars[3];
  }
  const int64_t begin = static_cast<int64_t>(ch.index) * kOptimChunk;
  const int64_t end = min(t.numel, begin + kOptimChunk);
  const bool has1 = t.state1 != nullptr, has2 = t.state2 != nullptr;
  const bool vec = vec4_aligned<float>(t.param) && vec4_aligned<float>(t.grad) &&
                   vec4_aligned<float>(t.state1) && vec4_aligned<float>(t.state2);
  int64_t scalar_begin = begin;
  if (vec) {
    const int64_t vec_end = begin + (end - begin) / 4 * 4;
    for (int64_t i = begin + threadIdx.x * 4; i < vec_end; i += blockDim.x * 4) {
      float4 p = *reinterpret_cast<const float4*>(t.param + i);
      const float4 g = *reinterpret_cast<const float4*>(t.grad + i);
      float4 s1 = has1 ? *reinterpret_cast<const float4*>(t.state1 + i) : make_float4(0, 0, 0, 0);
      float4 s2 = has2 ? *reinterpret_cast<const float4*>(t.state2 + i) : make_float4(0, 0, 0, 0);
      optim_update_element(hyper, t, p.x, g.x, s1.x, s2.x);
      optim_update_element(hyper, t, p.y, g.y, s1.y, s2.y);
      optim_update_element(hyper, t, p.z, g.z, s1.z, s2.z);
      optim_update_element(hyper, t, p.w, g.w, s1.w, s2.w);
      *reinterpret_cast<float4*>(t.param + i) = p;
      if (has1) *reinterpret_cast<float4*>(t.state1 + i) = s1;
      if (has2) *reinterpret_cast<float4*>(t.state2 + i) = s2;
    }
    scalar_begin = vec_end;
  }
  for (int64_t i = scalar_begin + threadIdx.x; i < end; i += blockDim.x) {
    float p = t.param[i], s1 = has1 ? t.state1[i] : 0.0f, s2 = has2 ? t.state2[i] : 0.0f;
    optim_update_element(hyper, t, p, t.grad[i], s1, s2);
    t.param[i] = p;
    if (has1) t.state1[i] = s1;
    if (has2) t.state2[i] = s2;
  }
}

// After every block of the step has read its count (a separate launch, so no block sees a count advanced).
__global__ void advance_steps_kernel(const OptimTensor* __restrict__ tensors, int count, int64_t* __restrict__ steps) {
  for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < count; k += gridDim.x * blockDim.x) steps[tensors[k].slot] += 1;
}

__global__ void sum_squares_kernel(const ClipTensor* __restrict__ tensors, const Chunk* __restrict__ chunks,
                                   float* __restrict__ partial) {
  __shared__ float scratch[32];
  const Chunk ch = chunks[blockIdx.x];
  const ClipTensor t = tensors[ch.tensor];
  const int64_t begin = static_cast<int64_t>(ch.index) * kOptimChunk, end = min(t.numel, begin + kOptimChunk);
  float s = 0.0f;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) s += t.data[i] * t.data[i];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void clip_finish_kernel(const float* __restrict__ partial, int count, float max_norm,
                                   float* __restrict__ total_norm, float* __restrict__ coef) {
  __shared__ float scratch[32];
  float s = 0.0f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) s += partial[i];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) {
    const float norm = sqrtf(s);
    *total_norm = norm;
    *coef = fminf(max_norm / (norm + 1e-6f), 1.0f);
  }
}

__global__ void scale_kernel(const ClipTensor* __restrict__ tensors, const Chunk* __restrict__ chunks,
                             const float* __restrict__ coef) {
  const float c = *coef;
  if (c == 1.0f) return;
  const Chunk ch = chunks[blockIdx.x];
  const ClipTensor t = tensors[ch.tensor];
  const int64_t begin = static_cast<int64_t>(ch.index) * kOptimChunk, end = min(t.numel, begin + kOptimChunk);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) t.data[i] = t.data[i] * c;
}

struct CastTensor {
  const float* src;
  uint16_t* dst;
  int64_t numel;
};
int64_t cast_numel(const CastTensor& t) { return t.numel; }

// One block per 64K-element chunk; 4 floats in (16 bytes), 4 bf16 out (8 bytes) where both pointers allow.
__global__ void multi_cast_bf16_kernel(const CastTensor* __restrict__ tensors, const Chunk* __restrict__ chunks) {
  const Chunk ch = chunks[blockIdx.x];
  const CastTensor t = tensors[ch.tensor];
  const int64_t begin = static_cast<int64_t>(ch.index) * kOptimChunk, end = min(t.numel, begin + kOptimChunk);
  int64_t scalar_begin = begin;
  if (vec4_aligned<float>(t.src) && vec4_aligned<uint16_t>(t.dst)) {
    const int64_t vec_end = begin + (end - begin) / 4 * 4;
    for (int64_t i = begin + threadIdx.x * 4; i < vec_end; i += blockDim.x * 4) {
      const float4 v = *reinterpret_cast<const float4*>(t.src + i);
      const uint32_t lo = float_to_bf16_bits(v.x) | (static_cast<uint32_t>(float_to_bf16_bits(v.y)) << 16);
      const uint32_t hi = float_to_bf16_bits(v.z) | (static_cast<uint32_t>(float_to_bf16_bits(v.w)) << 16);
      *reinterpret_cast<uint2*>(t.dst + i) = make_uint2(lo, hi);
    }
    scalar_begin = vec_end;
  }
  for (int64_t i = scalar_begin + threadIdx.x; i < end; i += blockDim.x) t.dst[i] = float_to_bf16_bits(t.src[i]);
}

}  // namespace

size_t optimizer_workspace_bytes(const OptimTensor* tensors, int count) {
  const size_t chunks = make_chunks(tensors, count, optim_numel).size();
  return align256(sizeof(OptimTensor) * count) + align256(sizeof(Chunk) * chunks);
}

void optimizer_step(const OptimTensor* tensors, int count, const OptimHyper& hyper, void* workspace,
                    size_t workspace_bytes, cudaStream_t stream, const OptimCapturable* capturable,
                    void* host_staging) {
  PNEUMO_CHECK(hyper.algorithm >= 0 && hyper.algorithm <= 2, "optimizer_step: algorithm ", hyper.algorithm);
  for (int k = 0; k < count; ++k)
    PNEUMO_CHECK(hyper.algorithm == 2 || (tensors[k].state1 && tensors[k].state2), "optimizer_step: Adam tensor ", k,
                 " lacks its state");
  std::vector<Chunk> chunks = make_chunks(tensors, count, optim_numel);
  // Tensors of 0 elements make no chunk, but their step counts still advance (as on the CPU and the host).
  if (count == 0 || (chunks.empty() && !capturable)) return;
  OptimTensor* d_tensors;
  Chunk* d_chunks;
  char* extra;
  upload_tables(tensors, count, chunks, workspace, workspace_bytes, 0, stream, host_staging, &d_tensors, &d_chunks,
                &extra);
  const OptimCapturable cap = capturable ? *capturable : OptimCapturable{};
  PNEUMO_CHECK(!capturable || (cap.lr && cap.steps), "optimizer_step: capturable state without lr or steps");
  if (!chunks.empty()) {
    optimizer_step_kernel<<<static_cast<unsigned>(chunks.size()), kOptimThreads, 0, stream>>>(d_tensors, d_chunks,
                                                                                              hyper, cap);
    PNEUMO_LAUNCH_CHECK("optimizer_step_kernel");
  }
  if (capturable) {
    advance_steps_kernel<<<(count + 255) / 256, 256, 0, stream>>>(d_tensors, count, cap.steps);
    PNEUMO_LAUNCH_CHECK("advance_steps_kernel");
  }
}

size_t clip_workspace_bytes(const int64_t* sizes, int count) {
  size_t chunks = 0;
  for (int k = 0; k < count; ++k) chunks += static_cast<size_t>((sizes[k] + kOptimChunk - 1) / kOptimChunk);
  return align256(sizeof(ClipTensor) * count) + align256(sizeof(Chunk) * chunks) +
         align256(sizeof(float) * (chunks + 1));
}

void clip_grad_norm(float* const* tensors, const int64_t* sizes, int count, float max_norm, float* total_norm,
                    void* workspace, size_t workspace_bytes, cudaStream_t stream, void* host_staging) {
  std::vector<ClipTensor> list(count);
  for (int k = 0; k < count; ++k) list[k] = {tensors[k], sizes[k]};
  std::vector<Chunk> chunks = make_chunks(list.data(), count, clip_numel);
  if (chunks.empty()) {
    PNEUMO_CUDA_CHECK(cudaMemsetAsync(total_norm, 0, sizeof(float), stream));
    return;
  }
  ClipTensor* d_tensors;
  Chunk* d_chunks;
  char* extra;
  upload_tables(list.data(), count, chunks, workspace, workspace_bytes, sizeof(float) * (chunks.size() + 1), stream,
                host_staging, &d_tensors, &d_chunks, &extra);
  float* partial = reinterpret_cast<float*>(extra);
  float* coef = partial + chunks.size();
  const unsigned blocks = static_cast<unsigned>(chunks.size());
  sum_squares_kernel<<<blocks, kOptimThreads, 0, stream>>>(d_tensors, d_chunks, partial);
  PNEUMO_LAUNCH_CHECK("sum_squares_kernel");
  clip_finish_kernel<<<1, 1024, 0, stream>>>(partial, static_cast<int>(chunks.size()), max_norm, total_norm, coef);
  PNEUMO_LAUNCH_CHECK("clip_finish_kernel");
  scale_kernel<<<blocks, kOptimThreads, 0, stream>>>(d_tensors, d_chunks, coef);
  PNEUMO_LAUNCH_CHECK("scale_kernel");
}

size_t multi_cast_workspace_bytes(const int64_t* sizes, int count) {
  size_t chunks = 0;
  for (int k = 0; k < count; ++k) chunks += static_cast<size_t>((sizes[k] + kOptimChunk - 1) / kOptimChunk);
  return align256(sizeof(CastTensor) * count) + align256(sizeof(Chunk) * chunks);
}

void multi_tensor_cast_bf16(const float* const* src, uint16_t* const* dst, const int64_t* sizes, int count,
                            void* workspace, size_t workspace_bytes, cudaStream_t stream, void* host_staging) {
  std::vector<CastTensor> list(count);
  for (int k = 0; k < count; ++k) list[k] = {src[k], dst[k], sizes[k]};
  std::vector<Chunk> chunks = make_chunks(list.data(), count, cast_numel);
  if (chunks.empty()) return;
  CastTensor* d_tensors;
  Chunk* d_chunks;
  char* extra;
  upload_tables(list.data(), count, chunks, workspace, workspace_bytes, 0, stream, host_staging, &d_tensors,
                &d_chunks, &extra);
  multi_cast_bf16_kernel<<<static_cast<unsigned>(chunks.size()), kOptimThreads, 0, stream>>>(d_tensors, d_chunks);
  PNEUMO_LAUNCH_CHECK("multi_cast_bf16_kernel");
}

}  // namespace pneumo::kernels::cuda
