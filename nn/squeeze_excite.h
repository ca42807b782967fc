// Squeeze-excite as one fused op: y = x * sigmoid(W2 act(W1 mean_hw(x) + b1) + b2), x NHWC [N, H, W, C].
// act is ReLU (SE-ResNeXt's SEModule) or swish (EfficientNet). The two FCs are 1x1 convolutions stored
// KRSC like every conv weight: fc1.weight [reduced, 1, 1, C], fc2.weight [C, 1, 1, reduced], so timm /
// pretrainedmodels checkpoints load after the usual KCRS -> KRSC transpose (a no-op for 1x1 kernels
// apart from the shape). Backward recomputes the gate from x (saves x and the weights only).
// Mixed precision: parameters stay float32 masters; when x is bfloat16 the module casts the weights to
// bfloat16 at forward (the cast's backward returns float32 gradients to the masters).
#pragma once
#include <memory>
#include <string>

#include "autograd/variable.h"
#include "nn/module.h"

namespace pneumo::nn {

enum class SEActivation : uint8_t { ReLU = 0, Swish = 1 };

// The differentiable fused op. w1 [R, C] or [R,1,1,C]; w2 [C, R] or [C,1,1,R]; b1 [R]; b2 [C]; all the
// dtype and device of x (F32/F64 on the CPU, F32/BF16 on CUDA).
ag::Variable squeeze_excite(const ag::Variable& x, const ag::Variable& w1, const ag::Variable& b1,
                            const ag::Variable& w2, const ag::Variable& b2, SEActivation act);

// A 1x1 convolution's parameters (weight KRSC [out, 1, 1, in], bias [out]); the SE block's two children.
class SEConv1x1 : public Module {
 public:
  SEConv1x1(int64_t in_channels, int64_t out_channels, uint64_t init_seed);
  std::string type_name() const override { return "SEConv1x1"; }
  Variable& weight() { return parameters_[0].second; }
  Variable& bias() { return parameters_[1].second; }
};

class SqueezeExcite : public Module {
 public:
  // child_names: {"fc1", "fc2"} (SE-ResNeXt / timm SEModule) or {"conv_reduce", "conv_expand"} (timm
  // EfficientNet), or {"_se_reduce", "_se_expand"} (efficientnet-pytorch). Initialisation is PyTorch's
  // Conv2d default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias, drawn from the default generator.
  SqueezeExcite(int64_t channels, int64_t reduced, SEActivation act,
                std::pair<std::string, std::string> child_names = {"fc1", "fc2"});
  std::string type_name() const override { return "SqueezeExcite"; }
  Variable forward(const Variable& x) override;

  int64_t channels() const { return channels_; }
  int64_t reduced() const { return reduced_; }
  SEActivation activation() const { return act_; }
  SEConv1x1& reduce() { return *reduce_; }
  SEConv1x1& expand() { return *expand_; }

 private:
  int64_t channels_, reduced_;
  SEActivation act_;
  std::shared_ptr<SEConv1x1> reduce_, expand_;
};

}  // namespace pneumo::nn
