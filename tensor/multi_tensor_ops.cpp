#include "tensor/multi_tensor_ops.h"

#include "kernels/check.h"
#include "kernels/cpu/multi_tensor_cast.h"
#include "tensor/cuda_graph.h"
#include "tensor/dispatch.h"

#if PNEUMO_WITH_CUDA
#include "kernels/cuda/optim_kernels.h"
#endif

namespace pneumo::ops {

std::vector<Tensor> cast_bf16_multi(const std::vector<Tensor>& src) {
  if (src.empty()) return {};
  const Tensor& first = src[0];
  PNEUMO_OP_SCOPE("cast_bf16_multi", first);
  constexpr int64_t kAlign = 8;  // bf16 elements: 16 bytes
  std::vector<int64_t> offsets(src.size()), sizes(src.size());
  int64_t total = 0;
  for (size_t k = 0; k < src.size(); ++k) {
    const Tensor& t = src[k];
    check_defined("cast_bf16_multi", t);
    PNEUMO_CHECK(t.dtype() == DType::F32, "cast_bf16_multi: tensor ", k, " is ", dtype_name(t.dtype()),
                 ", expected float32 ", shape_str(t.shape()));
    check_same_device("cast_bf16_multi", first, t);
    offsets[k] = total;
    sizes[k] = t.numel();
    total += (t.numel() + kAlign - 1) / kAlign * kAlign;
  }
  Tensor buffer = Tensor::empty({total > 0 ? total : 1}, DType::BF16, first.device());
  std::vector<Tensor> out;
  std::vector<const float*> s(src.size());
  std::vector<uint16_t*> d(src.size());
  out.reserve(src.size());
  for (size_t k = 0; k < src.size(); ++k) {
    out.push_back(buffer.slice(offsets[k], offsets[k] + sizes[k]).reshape(src[k].shape()));
    s[k] = src[k].data<float>();
    d[k] = static_cast<uint16_t*>(out.back().raw_data());
  }
  const int count = static_cast<int>(src.size());
  if (first.device().is_cpu()) {
    kernels::cpu::multi_tensor_cast_bf16(s.data(), d.data(), sizes.data(), count);
  } else {
#if PNEUMO_WITH_CUDA
    const size_t bytes = kernels::cuda::multi_cast_workspace_bytes(sizes.data(), count);
    Tensor ws = dispatch::scratch(bytes, first.device());
    // Inside a CUDA Graph capture the table is copied from a pinned buffer the graph keeps (a pageable copy
    // cannot be captured). `ws` may be freed: later users of its block come after the copy in stream order.
    cuda::Graph* graph = cuda::capturing_graph();
    kernels::cuda::multi_tensor_cast_bf16(s.data(), d.data(), sizes.data(), count, ws.raw_data(), bytes,
                                          dispatch::stream_of(first), graph ? graph->pinned_buffer(bytes) : nullptr);
#else
    dispatch::no_cuda("cast_bf16_multi");
#endif
  }
  return out;
}

}  // namespace pneumo::ops
