// Initialisers as torch.nn.init (see init.h for the fan convention). Draws are Philox at
// (generator.seed(), generator.next_offset()), made on the tensor's device in its dtype.
#include "nn/init.h"

#include <cmath>

#include "kernels/check.h"

namespace pneumo::nn::init {
namespace {
void check_floating(const char* op, const Tensor& t) {
  check_defined(op, t);
  PNEUMO_CHECK(is_floating(t.dtype()), op, ": needs a floating tensor, got ", dtype_name(t.dtype()));
}
}  // namespace

Fans compute_fans(const Shape& s) {
  PNEUMO_CHECK(s.size() == 2 || s.size() == 4, "init: fans need a [out, in] or KRSC [out, kh, kw, in/groups] weight, got ",
               shape_str(s));
  Fans f;
  if (s.size() == 2) {
    f.fan_in = s[1];
    f.fan_out = s[0];
  } else {
    const int64_t receptive = s[1] * s[2];
    f.fan_in = s[3] * receptive;
    f.fan_out = s[0] * receptive;
  }
  return f;
}

void uniform_(Tensor& t, double lo, double hi, Generator& generator) {
  check_floating("init::uniform_", t);
  t.copy_from(Tensor::uniform(t.shape(), static_cast<float>(lo), static_cast<float>(hi), generator.seed(),
                              generator.next_offset(), t.dtype(), t.device()));
}

void normal_(Tensor& t, double mean, double stddev, Generator& generator) {
  check_floating("init::normal_", t);
  t.copy_from(Tensor::normal(t.shape(), static_cast<float>(mean), static_cast<float>(stddev), generator.seed(),
                             generator.next_offset(), t.dtype(), t.device()));
}

void constant_(Tensor& t, double value) {
  check_floating("init::constant_", t);
  t.fill_(value);
}

void kaiming_normal_fan_out(Tensor& weight, Generator& generator) {
  const Fans f = compute_fans(weight.shape());
  normal_(weight, 0.0, std::sqrt(2.0 / static_cast<double>(f.fan_out)), generator);
}

void kaiming_uniform_fan_in(Tensor& weight, double a, Generator& generator) {
  const Fans f = compute_fans(weight.shape());
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double bound = gain * std::sqrt(3.0 / static_cast<double>(f.fan_in));
  uniform_(weight, -bound, bound, generator);
}

void conv_linear_default_(Tensor& weight, Tensor* bias, Generator& generator) {
  kaiming_uniform_fan_in(weight, std::sqrt(5.0), generator);
  if (bias && bias->defined()) {
    const Fans f = compute_fans(weight.shape());
    const double bound = f.fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(f.fan_in)) : 0.0;
    uniform_(*bias, -bound, bound, generator);
  }
}

void batch_norm_default_(Tensor& weight, Tensor& bias) {
  constant_(weight, 1.0);
  constant_(bias, 0.0);
}

}  // namespace pneumo::nn::init
