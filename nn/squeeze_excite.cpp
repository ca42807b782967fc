// The squeeze-excite Module over the fused op (dispatch: tensor/layer_ops.h; autograd node:
// autograd/layer_functions.h).
#include "nn/squeeze_excite.h"

#include <cmath>

#include "autograd/functions.h"
#include "autograd/layer_functions.h"
#include "kernels/check.h"
#include "nn/weight_cast.h"
#include "tensor/generator.h"

namespace pneumo::nn {

ag::Variable squeeze_excite(const ag::Variable& x, const ag::Variable& w1, const ag::Variable& b1,
                            const ag::Variable& w2, const ag::Variable& b2, SEActivation act) {
  return ag::squeeze_excite(x, w1, b1, w2, b2, static_cast<kernels::Activation>(act));
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
  auto as_x = [&](const Variable& p) { return cast_for_forward(p, x.dtype()); };
  return squeeze_excite(x, as_x(reduce_->weight()), as_x(reduce_->bias()), as_x(expand_->weight()),
                        as_x(expand_->bias()), act_);
}

}  // namespace pneumo::nn
