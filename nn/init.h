// Parameter initialisers, as torch.nn.init, drawing from a Generator (one Philox offset per call, so the same
// seed gives the same weights on either backend). Fans follow PyTorch for our layouts: a conv weight
// [out, kh, kw, in/groups] has fan_in = kh*kw*in/groups and fan_out = out*kh*kw; a linear weight [out, in]
// has fan_in = in, fan_out = out. Each function overwrites the tensor in place (any device, floating dtype).
#pragma once
#include <cstdint>

#include "tensor/generator.h"
#include "tensor/tensor.h"

namespace pneumo::nn::init {

struct Fans {
  int64_t fan_in = 0, fan_out = 0;
};
Fans compute_fans(const Shape& weight_shape);  // 2-D [out, in] or 4-D KRSC

void uniform_(Tensor& t, double lo, double hi, Generator& generator);
void normal_(Tensor& t, double mean, double stddev, Generator& generator);
void constant_(Tensor& t, double value);

// torch.nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"): std = sqrt(2 / fan_out).
void kaiming_normal_fan_out(Tensor& weight, Generator& generator);
// torch.nn.init.kaiming_uniform_(w, a, mode="fan_in", nonlinearity="leaky_relu"):
// bound = sqrt(6 / ((1 + a^2) * fan_in)).
void kaiming_uniform_fan_in(Tensor& weight, double a, Generator& generator);

// PyTorch's reset_parameters() for nn.Conv2d and nn.Linear: kaiming_uniform(a = sqrt(5)) on the weight
// (bound 1/sqrt(fan_in)) and, when bias is given (non-null and defined), uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void conv_linear_default_(Tensor& weight, Tensor* bias, Generator& generator);
// nn.BatchNorm2d: weight 1, bias 0.
void batch_norm_default_(Tensor& weight, Tensor& bias);

}  // namespace pneumo::nn::init
