// The per-element optimiser update shared by the CPU loop and the CUDA multi-tensor kernel, so both
// backends run the same arithmetic in the same order (PyTorch 1.13 single-tensor semantics):
//  Adam   (algorithm 0): g += wd p; m = m b1 + (1-b1) g; v = v b2 + (1-b2) g g;
//                        p += -step_size * m / (sqrt(v) / sqrt(1 - b2^t) + eps), step_size = lr / (1 - b1^t)
//  AdamW  (algorithm 1): p *= 1 - lr wd first, then Adam without the L2 term.
//  SGD    (algorithm 2): g += wd p; buf = g on the first step, else buf = momentum buf + (1 - dampening) g;
//                        g = nesterov ? g + momentum buf : buf (momentum 0: no buffer); p += -lr g.
// Master weights, gradients and state are float32. Scalars that depend on the step are computed in double
// (as PyTorch does in Python) and rounded to float once: on the host, or, for a capturable step (a CUDA
// Graph replays it), by the kernel from the learning rate and step counts in device memory, with the same
// function (adam_step_scalars).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/dtype.h"

namespace pneumo::kernels {

enum class OptimAlgorithm : int32_t { Adam = 0, AdamW = 1, Sgd = 2 };

struct OptimHyper {
  int32_t algorithm = 0;
  float beta1 = 0.9f, one_minus_beta1 = 0.1f, beta2 = 0.999f, one_minus_beta2 = 0.001f, eps = 1e-8f;
  float weight_decay = 0.0f;  // Adam / SGD: added to the gradient; AdamW: folded into param_scale
  float lr = 0.0f;            // SGD
  float momentum = 0.0f, one_minus_dampening = 1.0f;
  int32_t nesterov = 0;
};

// One parameter tensor of a step; the CUDA kernel reads an array of these from device memory.
struct OptimTensor {
  float* param = nullptr;
  const float* grad = nullptr;
  float* state1 = nullptr;  // Adam exp_avg, SGD momentum buffer (may be null for SGD without momentum)
  float* state2 = nullptr;  // Adam exp_avg_sq
  int64_t numel = 0;
  float step_size = 0.0f;               // Adam: lr / (1 - beta1^step)
  float bias_correction2_sqrt = 1.0f;   // Adam: sqrt(1 - beta2^step)
  float param_scale = 1.0f;             // AdamW: 1 - lr * weight_decay
  int32_t first_step = 0;               // SGD: the momentum buffer starts as the gradient
  int32_t slot = 0;                     // the parameter's index in OptimCapturable::steps
};

// A capturable step: what changes between steps is read from memory the caller keeps (device memory on
// CUDA), not passed by value, so a captured launch stays right on every replay. The step counts advance
// after the update (steps[slot] += 1 for every tensor of the step).
struct OptimCapturable {
  const double* lr = nullptr;  // the learning rate
  int64_t* steps = nullptr;    // per parameter slot: steps taken before this one
  double beta1 = 0.9, beta2 = 0.999, weight_decay = 0.0;
  int32_t decoupled = 0;       // AdamW
};

// Adam/AdamW scalars of step number `step` (>= 1).
PNEUMO_HD void adam_step_scalars(double lr, double step, double beta1, double beta2, double weight_decay,
                                 bool decoupled, OptimTensor& t) {
  const double bias_correction1 = 1.0 - pow(beta1, step);
  const double bias_correction2 = 1.0 - pow(beta2, step);
  t.step_size = static_cast<float>(lr / bias_correction1);
  t.bias_correction2_sqrt = static_cast<float>(sqrt(bias_correction2));
  t.param_scale = decoupled ? static_cast<float>(1.0 - lr * weight_decay) : 1.0f;
}

// Fills the step-dependent scalars of `t` and `h` from capturable state.
PNEUMO_HD void capturable_scalars(const OptimCapturable& c, OptimHyper& h, OptimTensor& t) {
  const double lr = *c.lr;
  if (h.algorithm == 2) {
    h.lr = static_cast<float>(lr);
    return;
  }
  adam_step_scalars(lr, static_cast<double>(c.steps[t.slot] + 1), c.beta1, c.beta2, c.weight_decay,
                    c.decoupled != 0, t);
}

PNEUMO_HD void optim_update_element(const OptimHyper& h, const OptimTensor& t, float& p, float g, float& s1,
                                    float& s2) {
  if (h.algorithm == 2) {
    if (h.weight_decay != 0.0f) g = g + h.weight_decay * p;
    if (h.momentum != 0.0f) {
      s1 = t.first_step ? g : s1 * h.momentum + h.one_minus_dampening * g;
      g = h.nesterov ? g + h.momentum * s1 : s1;
    }
    p = p + (-h.lr) * g;
    return;
  }
  if (h.algorithm == 1) {
    p = p * t.param_scale;
  } else if (h.weight_decay != 0.0f) {
    g = g + h.weight_decay * p;
  }
  s1 = s1 * h.beta1 + h.one_minus_beta1 * g;
  s2 = s2 * h.beta2 + h.one_minus_beta2 * g * g;
  const float denom = sqrtf(s2) / t.bias_correction2_sqrt + h.eps;
  p = p + (-t.step_size) * (s1 / denom);
}

}  // namespace pneumo::kernels
