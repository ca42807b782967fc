// Fused losses: validation, CPU/CUDA dispatch and one autograd node per loss. The scalar upstream
// gradient stays on the device (CUDA kernels read it from device memory: no host synchronisation).
#include "nn/losses.h"

#include "kernels/check.h"
#include "kernels/cpu/loss_kernels.h"
#include "tensor/cuda_runtime.h"
#if PNEUMO_WITH_CUDA
#include "kernels/cuda/loss_kernels.h"
#endif

namespace pneumo::nn {

DType loss_dtype(DType logits_dtype) { return logits_dtype == DType::F64 ? DType::F64 : DType::F32; }

namespace {

using kernels::BinaryLoss;

Tensor prepare_targets(const char* op, const Tensor& logits, const Tensor& targets) {
  check_defined(op, targets);
  PNEUMO_CHECK(logits.numel() > 0, op, ": empty logits ", shape_str(logits.shape()));
  PNEUMO_CHECK(targets.numel() == logits.numel(), op, ": targets ", shape_str(targets.shape()),
               " do not match logits ", shape_str(logits.shape()));
  PNEUMO_CHECK(is_floating(logits.dtype()), op, ": logits must be floating, got ", dtype_name(logits.dtype()));
  Tensor t = targets.to(logits.device()).to(logits.dtype());
  return t;
}

#if PNEUMO_WITH_CUDA
cudaStream_t stream_of(const Tensor& t) { return cuda::current_stream(t.device().index); }
Tensor workspace(size_t bytes, Device device) {
  return Tensor::empty({static_cast<int64_t>(bytes < 1 ? 1 : bytes)}, DType::U8, device);
}
#endif

Tensor scalar_grad(const Tensor& g, const Tensor& like) {
  if (!g.defined()) return Tensor::zeros({}, like.dtype(), like.device());
  PNEUMO_CHECK(g.numel() == 1, "loss backward: upstream gradient must be a scalar, got ", shape_str(g.shape()));
  return g.to(like.device()).to(like.dtype());
}

// ---- BCE / focal ----
Tensor binary_forward(BinaryLoss kind, double gamma, const Tensor& x, const Tensor& t) {
  Tensor loss = Tensor::empty({}, loss_dtype(x.dtype()), x.device());
  if (x.is_cuda()) {
#if PNEUMO_WITH_CUDA
    Tensor ws = workspace(kernels::cuda::binary_loss_workspace_bytes(x.numel()), x.device());
    kernels::cuda::binary_loss_forward(x.dtype(), kind, gamma, x.raw_data(), t.raw_data(), x.numel(),
                                       loss.data<float>(), ws.raw_data(), stream_of(x));
#else
    PNEUMO_FAIL("CUDA tensor in a build without CUDA");
#endif
  } else {
    kernels::cpu::binary_loss_forward(x.dtype(), kind, gamma, x.raw_data(), t.raw_data(), x.numel(), loss.raw_data());
  }
  return loss;
}

class BinaryLossNode : public ag::Node {
 public:
  BinaryLossNode(BinaryLoss kind, double gamma, Tensor x, Tensor t) : kind_(kind), gamma_(gamma), x_(x), t_(t) {}
  const char* name() const override { return kind_ == BinaryLoss::Bce ? "BceWithLogits" : "FocalLoss"; }
  void release() override { x_ = t_ = Tensor(); }
  std::vector<Tensor> backward(const std::vector<Tensor>& grads) override {
    PNEUMO_CHECK(x_.defined(), name(), " backward: saved tensors were released (retain_graph?)");
    Tensor g = scalar_grad(grads[0], Tensor::empty({}, loss_dtype(x_.dtype()), x_.device()));
    Tensor dx = Tensor::empty(x_.shape(), x_.dtype(), x_.device());
    if (x_.is_cuda()) {
#if PNEUMO_WITH_CUDA
      kernels::cuda::binary_loss_backward(x_.dtype(), kind_, gamma_, x_.raw_data(), t_.raw_data(), x_.numel(),
                                          g.data<float>(), dx.raw_data(), stream_of(x_));
#else
    PNEUMO_FAIL("CUDA tensor in a build without CUDA");
#endif
    } else {
      kernels::cpu::binary_loss_backward(x_.dtype(), kind_, gamma_, x_.raw_data(), t_.raw_data(), x_.numel(),
                                         g.raw_data(), dx.raw_data());
    }
    return {dx};
  }

 private:
  BinaryLoss kind_;
  double gamma_;
  Tensor x_, t_;
};

ag::Variable binary_loss(const char* op, BinaryLoss kind, double gamma, const ag::Variable& logits, const Tensor& targets) {
  const Tensor& x = logits.value();
  Tensor t = prepare_targets(op, x, targets);
  Tensor loss = binary_forward(kind, gamma, x, t);
  if (!ag::any_requires_grad({logits})) return ag::Variable(loss);
  return ag::record1(std::make_shared<BinaryLossNode>(kind, gamma, x, t), {logits}, loss);
}

// ---- soft dice ----
class SoftDiceNode : public ag::Node {
 public:
  SoftDiceNode(Tensor x, Tensor t, Tensor stats, int64_t batch) : x_(x), t_(t), stats_(stats), batch_(batch) {}
  const char* name() const override { return "SoftDiceLoss"; }
  void release() override { x_ = t_ = stats_ = Tensor(); }
  std::vector<Tensor> backward(const std::vector<Tensor>& grads) override {
    PNEUMO_CHECK(x_.defined(), "soft dice backward: saved tensors were released (retain_graph?)");
    Tensor g = scalar_grad(grads[0], stats_);
    Tensor dx = Tensor::empty(x_.shape(), x_.dtype(), x_.device());
    const int64_t per_sample = x_.numel() / batch_;
    if (x_.is_cuda()) {
#if PNEUMO_WITH_CUDA
      kernels::cuda::soft_dice_backward(x_.dtype(), x_.raw_data(), t_.raw_data(), batch_, per_sample,
                                        stats_.data<float>(), g.data<float>(), dx.raw_data(), stream_of(x_));
#else
    PNEUMO_FAIL("CUDA tensor in a build without CUDA");
#endif
    } else {
      kernels::cpu::soft_dice_backward(x_.dtype(), x_.raw_data(), t_.raw_data(), batch_, per_sample,
                                       stats_.raw_data(), g.raw_data(), dx.raw_data());
    }
    return {dx};
  }

 private:
  Tensor x_, t_, stats_;
  int64_t batch_;
};

}  // namespace

ag::Variable bce_with_logits(const ag::Variable& logits, const Tensor& targets) {
  return binary_loss("bce_with_logits", BinaryLoss::Bce, 0.0, logits, targets);
}

ag::Variable focal_loss(const ag::Variable& logits, const Tensor& targets, double gamma) {
  return binary_loss("focal_loss", BinaryLoss::Focal, gamma, logits, targets);
}

ag::Variable soft_dice_loss(const ag::Variable& logits, const Tensor& targets, double smooth) {
  const Tensor& x = logits.value();
  PNEUMO_CHECK(x.dim() >= 1 && x.size(0) > 0, "soft_dice_loss: logits need a batch dimension, got ",
               shape_str(x.shape()));
  Tensor t = prepare_targets("soft_dice_loss", x, targets);
  PNEUMO_CHECK(targets.dim() >= 1 && targets.size(0) == x.size(0), "soft_dice_loss: targets ",
               shape_str(targets.shape()), " and logits ", shape_str(x.shape()), " differ in batch size");
  const int64_t batch = x.size(0), per_sample = x.numel() / batch;
  const DType acc = loss_dtype(x.dtype());
  Tensor stats = Tensor::empty({2 * batch + 1}, acc, x.device());
  Tensor loss = Tensor::empty({}, acc, x.device());
  if (x.is_cuda()) {
#if PNEUMO_WITH_CUDA
    Tensor ws = workspace(kernels::cuda::soft_dice_workspace_bytes(batch, per_sample), x.device());
    kernels::cuda::soft_dice_forward(x.dtype(), x.raw_data(), t.raw_data(), batch, per_sample, smooth,
                                     stats.data<float>(), loss.data<float>(), ws.raw_data(), stream_of(x));
#else
    PNEUMO_FAIL("soft_dice_loss: CUDA tensor in a build without CUDA");
#endif
  } else {
    kernels::cpu::soft_dice_forward(x.dtype(), x.raw_data(), t.raw_data(), batch, per_sample, smooth,
                                    stats.raw_data(), loss.raw_data());
  }
  if (!ag::any_requires_grad({logits})) return ag::Variable(loss);
  return ag::record1(std::make_shared<SoftDiceNode>(x, t, stats, batch), {logits}, loss);
}

}  // namespace pneumo::nn
