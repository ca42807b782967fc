// Temporary squeeze-excite in plain autograd ops (pool -> 1x1 conv + bias -> act -> 1x1 conv + bias ->
// sigmoid -> scale), used by the encoders until the fused nn/squeeze_excite.h lands on main; it has the same
// parameter names (timm: "fc1"/"fc2" for SE-ResNeXt, "conv_reduce"/"conv_expand" for tf_efficientnet) so
// checkpoints are unaffected by the swap. Weights are KRSC [reduced, 1, 1, C] and [C, 1, 1, reduced].
#pragma once
#include <memory>
#include <string>

#include "nn/layers.h"

namespace pneumo::nn::models {

enum class SEActivation { ReLU, Swish };

class SqueezeExciteFallback : public Module {
 public:
  SqueezeExciteFallback(int64_t channels, int64_t reduced, SEActivation activation, const std::string& reduce_name,
                        const std::string& expand_name);
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "SqueezeExcite"; }

 private:
  std::shared_ptr<Conv2d> reduce_, expand_;
  SEActivation activation_;
};

// [N, 1, 1, C] broadcast over H and W of `shape` (autograd: the gradient is summed back over H and W).
Variable expand_hw(const Variable& nc11, const Shape& shape);

}  // namespace pneumo::nn::models
