// CPU/CUDA dispatch of the fused losses (see loss_ops.h).
#include "tensor/loss_ops.h"

#include "kernels/check.h"
#include "kernels/cpu/loss_kernels.h"
#include "tensor/dispatch.h"
#if PNEUMO_WITH_CUDA
#include "kernels/cuda/loss_kernels.h"
#endif

namespace pneumo::loss_ops {

DType loss_dtype(DType logits_dtype) { return logits_dtype == DType::F64 ? DType::F64 : DType::F32; }

Tensor binary_loss_forward(kernels::BinaryLoss kind, double gamma, const Tensor& x, const Tensor& t) {
  PNEUMO_OP_SCOPE("binary_loss_forward", x);
  Tensor loss = Tensor::empty({}, loss_dtype(x.dtype()), x.device());
  if (x.is_cuda()) {
#if PNEUMO_WITH_CUDA
    Tensor ws = dispatch::scratch(kernels::cuda::binary_loss_workspace_bytes(x.numel()), x.device());
    kernels::cuda::binary_loss_forward(x.dtype(), kind, gamma, x.raw_data(), t.raw_data(), x.numel(),
                                       loss.data<float>(), ws.raw_data(), dispatch::stream_of(x));
#else
    PNEUMO_FAIL("CUDA tensor in a build without CUDA");
#endif
  } else {
    kernels::cpu::binary_loss_forward(x.dtype(), kind, gamma, x.raw_data(), t.raw_data(), x.numel(), loss.raw_data());
  }
  return loss;
}

Tensor binary_loss_backward(kernels::BinaryLoss kind, double gamma, const Tensor& x, const Tensor& t, const Tensor& g) {
  PNEUMO_OP_SCOPE("binary_loss_backward", x);
  Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.is_cuda()) {
#if PNEUMO_WITH_CUDA
    kernels::cuda::binary_loss_backward(x.dtype(), kind, gamma, x.raw_data(), t.raw_data(), x.numel(),
                                        g.data<float>(), dx.raw_data(), dispatch::stream_of(x));
#else
    PNEUMO_FAIL("CUDA tensor in a build without CUDA");
#endif
  } else {
    kernels::cpu::binary_loss_backward(x.dtype(), kind, gamma, x.raw_data(), t.raw_data(), x.numel(), g.raw_data(),
                                       dx.raw_data());
  }
  return dx;
}

SoftDice soft_dice_forward(const Tensor& x, const Tensor& t, int64_t batch, double smooth) {
  PNEUMO_OP_SCOPE("soft_dice_forward", x);
  const int64_t per_sample = x.numel() / batch;
  const DType acc = loss_dtype(x.dtype());
  SoftDice r;
  r.stats = Tensor::empty({2 * batch + 1}, acc, x.device());
  r.loss = Tensor::empty({}, acc, x.device());
  if (x.is_cuda()) {
#if PNEUMO_WITH_CUDA
    Tensor ws = dispatch::scratch(kernels::cuda::soft_dice_workspace_bytes(batch, per_sample), x.device());
    kernels::cuda::soft_dice_forward(x.dtype(), x.raw_data(), t.raw_data(), batch, per_sample, smooth,
                                     r.stats.data<float>(), r.loss.data<float>(), ws.raw_data(),
                                     dispatch::stream_of(x));
#else
    PNEUMO_FAIL("soft_dice_loss: CUDA tensor in a build without CUDA");
#endif
  } else {
    kernels::cpu::soft_dice_forward(x.dtype(), x.raw_data(), t.raw_data(), batch, per_sample, smooth,
                                    r.stats.raw_data(), r.loss.raw_data());
  }
  return r;
}

Tensor soft_dice_backward(const Tensor& x, const Tensor& t, const Tensor& stats, int64_t batch, const Tensor& g) {
  PNEUMO_OP_SCOPE("soft_dice_backward", x);
  Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
  const int64_t per_sample = x.numel() / batch;
  if (x.is_cuda()) {
#if PNEUMO_WITH_CUDA
    kernels::cuda::soft_dice_backward(x.dtype(), x.raw_data(), t.raw_data(), batch, per_sample, stats.data<float>(),
                                      g.data<float>(), dx.raw_data(), dispatch::stream_of(x));
#else
    PNEUMO_FAIL("CUDA tensor in a build without CUDA");
#endif
  } else {
    kernels::cpu::soft_dice_backward(x.dtype(), x.raw_data(), t.raw_data(), batch, per_sample, stats.raw_data(),
                                     g.raw_data(), dx.raw_data());
  }
  return dx;
}

}  // namespace pneumo::loss_ops
