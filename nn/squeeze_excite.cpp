// The fused squeeze-excite op (validation + CPU/CUDA dispatch + autograd node) and its Module.
#include "nn/squeeze_excite.h"

#include <cmath>

#include "autograd/functions.h"
#include "kernels/check.h"
#include "kernels/cpu/squeeze_excite_kernels.h"
#include "tensor/cuda_runtime.h"
#include "tensor/generator.h"
#if PNEUMO_WITH_CUDA
#include "kernels/cuda/squeeze_excite_kernels.h"
#endif

namespace pneumo::nn {
namespace {

struct SeDims {
  int64_t batch, hw, channels, reduced;
};

SeDims check_se(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2) {
  PNEUMO_CHECK(x.dim() == 4, "squeeze_excite: x must be NHWC [N, H, W, C], got ", shape_str(x.shape()));
  const int64_t C = x.size(3);
  PNEUMO_CHECK(w1.dim() == 2 || (w1.dim() == 4 && w1.size(1) == 1 && w1.size(2) == 1),
               "squeeze_excite: fc1 weight must be [R, C] or [R, 1, 1, C], got ", shape_str(w1.shape()));
  const int64_t R = w1.size(0);
  PNEUMO_CHECK(w1.numel() == R * C && w1.size(-1) == C, "squeeze_excite: fc1 weight ", shape_str(w1.shape()),
               " does not match ", C, " channels of x ", shape_str(x.shape()));
  PNEUMO_CHECK(w2.numel() == C * R && w2.size(0) == C && w2.size(-1) == R &&
                   (w2.dim() == 2 || (w2.dim() == 4 && w2.size(1) == 1 && w2.size(2) == 1)),
               "squeeze_excite: fc2 weight must be [C, R] or [C, 1, 1, R] = [", C, ", ", R, "], got ",
               shape_str(w2.shape()));
  PNEUMO_CHECK(b1.numel() == R && b1.dim() == 1, "squeeze_excite: fc1 bias must be [", R, "], got ",
               shape_str(b1.shape()));
  PNEUMO_CHECK(b2.numel() == C && b2.dim() == 1, "squeeze_excite: fc2 bias must be [", C, "], got ",
               shape_str(b2.shape()));
  for (const Tensor* t : {&w1, &b1, &w2, &b2}) {
    check_same_device("squeeze_excite", x, *t);
    check_same_dtype("squeeze_excite", x, *t);
  }
  PNEUMO_CHECK(x.size(1) * x.size(2) > 0 && C > 0 && R > 0, "squeeze_excite: empty input ", shape_str(x.shape()));
  return {x.size(0), x.size(1) * x.size(2), C, R};
}

#if PNEUMO_WITH_CUDA
Tensor cuda_workspace(size_t bytes, Device device) {
  return Tensor::empty({static_cast<int64_t>(bytes)}, DType::U8, device);
}
#endif

Tensor se_forward(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2,
                  kernels::Activation act) {
  const SeDims d = check_se(x, w1, b1, w2, b2);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.is_cuda()) {
#if PNEUMO_WITH_CUDA
    Tensor ws = cuda_workspace(kernels::cuda::squeeze_excite_workspace_bytes(d.batch, d.hw, d.channels, d.reduced),
                               x.device());
    kernels::cuda::squeeze_excite_forward(x.dtype(), x.raw_data(), w1.raw_data(), b1.raw_data(), w2.raw_data(),
                                          b2.raw_data(), d.batch, d.hw, d.channels, d.reduced, act, y.raw_data(),
                                          ws.raw_data(), cuda::current_stream(x.device().index));
#else
    PNEUMO_FAIL("squeeze_excite: CUDA tensor in a build without CUDA");
#endif
  } else {
    kernels::cpu::squeeze_excite_forward(x.dtype(), x.raw_data(), w1.raw_data(), b1.raw_data(), w2.raw_data(),
                                         b2.raw_data(), d.batch, d.hw, d.channels, d.reduced, act, y.raw_data());
  }
  return y;
}

class SqueezeExciteNode : public ag::Node {
 public:
  SqueezeExciteNode(Tensor x, Tensor w1, Tensor b1, Tensor w2, Tensor b2, kernels::Activation act)
      : x_(std::move(x)), w1_(std::move(w1)), b1_(std::move(b1)), w2_(std::move(w2)), b2_(std::move(b2)), act_(act) {}
  const char* name() const override { return "SqueezeExcite"; }
  void release() override { x_ = w1_ = b1_ = w2_ = b2_ = Tensor(); }

  std::vector<Tensor> backward(const std::vector<Tensor>& grads) override {
    PNEUMO_CHECK(x_.defined(), "squeeze_excite backward: saved tensors were released (retain_graph?)");
    Tensor dy = grads[0];
    if (!dy.defined()) dy = Tensor::zeros(x_.shape(), x_.dtype(), x_.device());
    check_same_dtype("squeeze_excite backward", x_, dy);
    const SeDims d = check_se(x_, w1_, b1_, w2_, b2_);
    Tensor dx = Tensor::empty(x_.shape(), x_.dtype(), x_.device());
    Tensor dw1 = Tensor::empty(w1_.shape(), w1_.dtype(), x_.device());
    Tensor db1 = Tensor::empty(b1_.shape(), b1_.dtype(), x_.device());
    Tensor dw2 = Tensor::empty(w2_.shape(), w2_.dtype(), x_.device());
    Tensor db2 = Tensor::empty(b2_.shape(), b2_.dtype(), x_.device());
    if (x_.is_cuda()) {
#if PNEUMO_WITH_CUDA
      Tensor ws = cuda_workspace(
          kernels::cuda::squeeze_excite_workspace_bytes(d.batch, d.hw, d.channels, d.reduced), x_.device());
      kernels::cuda::squeeze_excite_backward(x_.dtype(), x_.raw_data(), dy.raw_data(), w1_.raw_data(),
                                             b1_.raw_data(), w2_.raw_data(), b2_.raw_data(), d.batch, d.hw,
                                             d.channels, d.reduced, act_, dx.raw_data(), dw1.raw_data(),
                                             db1.raw_data(), dw2.raw_data(), db2.raw_data(), ws.raw_data(),
                                             cuda::current_stream(x_.device().index));
#else
    PNEUMO_FAIL("CUDA tensor in a build without CUDA");
#endif
    } else {
      kernels::cpu::squeeze_excite_backward(x_.dtype(), x_.raw_data(), dy.raw_data(), w1_.raw_data(), b1_.raw_data(),
                                            w2_.raw_data(), b2_.raw_data(), d.batch, d.hw, d.channels, d.reduced,
                                            act_, dx.raw_data(), dw1.raw_data(), db1.raw_data(), dw2.raw_data(),
                                            db2.raw_data());
    }
    return {dx, dw1, db1, dw2, db2};
  }

 private:
  Tensor x_, w1_, b1_, w2_, b2_;
  kernels::Activation act_;
};

}  // namespace

ag::Variable squeeze_excite(const ag::Variable& x, const ag::Variable& w1, const ag::Variable& b1,
                            const ag::Variable& w2, const ag::Variable& b2, SEActivation act) {
  const auto code = static_cast<kernels::Activation>(act);
  Tensor y = se_forward(x.value(), w1.value(), b1.value(), w2.value(), b2.value(), code);
  std::vector<ag::Variable> inputs{x, w1, b1, w2, b2};
  if (!ag::any_requires_grad(inputs)) return ag::Variable(y);
  auto node = std::make_shared<SqueezeExciteNode>(x.value(), w1.value(), b1.value(), w2.value(), b2.value(), code);
  return ag::record1(node, inputs, y);
}

SEConv1x1::SEConv1x1(int64_t in_channels, int64_t out_channels, uint64_t init_seed) {
  PNEUMO_CHECK(in_channels > 0 && out_channels > 0, "SEConv1x1: channels ", in_channels, " -> ", out_channels);
  const float bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(in_channels)));
  Generator& gen = default_generator();
  register_parameter("weight", Tensor::uniform({out_channels, 1, 1, in_channels}, -bound, bound, init_seed,
                                               gen.next_offset()));
  register_parameter("bias", Tensor::uniform({out_channels}, -bound, bound, init_seed, gen.next_offset()));
}

SqueezeExcite::SqueezeExcite(int64_t channels, int64_t reduced, SEActivation act,
                             std::pair<std::string, std::string> child_names)
    : channels_(channels), reduced_(reduced), act_(act) {
  PNEUMO_CHECK(channels > 0 && reduced > 0, "SqueezeExcite: channels ", channels, ", reduced ", reduced);
  const uint64_t seed = default_generator().seed();
  reduce_ = register_module(child_names.first, std::make_shared<SEConv1x1>(channels, reduced, seed));
  expand_ = register_module(child_names.second, std::make_shared<SEConv1x1>(reduced, channels, seed));
}

Variable SqueezeExcite::forward(const Variable& x) {
  PNEUMO_CHECK(x.value().dim() == 4 && x.value().size(3) == channels_, "SqueezeExcite(", channels_, " -> ", reduced_,
               "): x must be NHWC with ", channels_, " channels, got ", shape_str(x.shape()));
  auto as_x = [&](const Variable& p) { return p.dtype() == x.dtype() ? p : ag::cast(p, x.dtype()); };
  return squeeze_excite(x, as_x(reduce_->weight()), as_x(reduce_->bias()), as_x(expand_->weight()),
                        as_x(expand_->bias()), act_);
}

}  // namespace pneumo::nn
