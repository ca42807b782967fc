// Temporary plain-autograd squeeze-excite (see squeeze_excite_fallback.h).
#include "nn/models/squeeze_excite_fallback.h"

#include "kernels/check.h"
#include "tensor/ops.h"

namespace pneumo::nn::models {

namespace {
class ExpandHWNode : public ag::Node {
 public:
  std::vector<Tensor> backward(const std::vector<Tensor>& grads) override {
    const Tensor& g = grads[0];
    return {ops::sum_hw(g).reshape({g.size(0), 1, 1, g.size(3)})};
  }
  const char* name() const override { return "ExpandHW"; }
};
}  // namespace

Variable expand_hw(const Variable& nc11, const Shape& shape) {
  PNEUMO_CHECK(nc11.shape().size() == 4 && shape.size() == 4 && nc11.shape()[0] == shape[0] &&
                   nc11.shape()[1] == 1 && nc11.shape()[2] == 1 && nc11.shape()[3] == shape[3],
               "expand_hw: expected [N, 1, 1, C] against ", shape_str(shape), ", got ", shape_str(nc11.shape()));
  const Tensor& v = nc11.value();
  Tensor out = ops::expand_hw(v.reshape({shape[0], shape[3]}), shape);
  if (!ag::any_requires_grad({nc11})) return Variable(out);
  return ag::record1(std::make_shared<ExpandHWNode>(), {nc11}, out);
}

SqueezeExciteFallback::SqueezeExciteFallback(int64_t channels, int64_t reduced, SEActivation activation,
                                             const std::string& reduce_name, const std::string& expand_name)
    : activation_(activation) {
  reduce_ = register_module(reduce_name, std::make_shared<Conv2d>(channels, reduced, 1, 1, 0, 1, 1, true));
  expand_ = register_module(expand_name, std::make_shared<Conv2d>(reduced, channels, 1, 1, 0, 1, 1, true));
}

Variable SqueezeExciteFallback::forward(const Variable& x) {
  Variable s = reduce_->forward(F::global_avg_pool(x));
  s = activation_ == SEActivation::ReLU ? F::relu(s) : F::swish(s);
  s = F::sigmoid(expand_->forward(s));
  return ag::mul(x, expand_hw(s, x.shape()));
}

}  // namespace pneumo::nn::models
