// CPU optimiser kernels: a parallel loop per tensor around the shared element update.
#include "kernels/cpu/optim_kernels.h"

#include "kernels/check.h"
#include "kernels/cpu/profile.h"

namespace pneumo::kernels::cpu {

void optimizer_step(const OptimTensor* tensors, int count, const OptimHyper& hyper,
                    const OptimCapturable* capturable) {
  PNEUMO_CPU_SCOPE("optimizer_step");
  PNEUMO_CHECK(hyper.algorithm >= 0 && hyper.algorithm <= 2, "optimizer_step: algorithm ", hyper.algorithm);
  for (int k = 0; k < count; ++k)
    PNEUMO_CHECK(hyper.algorithm == 2 || (tensors[k].state1 != nullptr && tensors[k].state2 != nullptr),
                 "optimizer_step: Adam tensor ", k, " lacks its state");
  // One parallel region for all tensors, no barrier between them (they are independent): a region per
  // tensor cost a fork and a join for each of a network's ~300 tensors.
#pragma omp parallel
  for (int k = 0; k < count; ++k) {
    OptimTensor t = tensors[k];
    OptimHyper h = hyper;
    if (capturable) capturable_scalars(*capturable, h, t);
    const bool has_s1 = t.state1 != nullptr, has_s2 = t.state2 != nullptr;
#pragma omp for schedule(static) nowait
    for (int64_t i = 0; i < t.numel; ++i) {
      float s1 = has_s1 ? t.state1[i] : 0.0f, s2 = has_s2 ? t.state2[i] : 0.0f;
      optim_update_element(h, t, t.param[i], t.grad[i], s1, s2);
      if (has_s1) t.state1[i] = s1;
      if (has_s2) t.state2[i] = s2;
    }
  }
  if (capturable)
    for (int k = 0; k < count; ++k) capturable->steps[tensors[k].slot] += 1;
}

double multi_tensor_sum_squares(const float* const* tensors, const int64_t* sizes, int count) {
  PNEUMO_CPU_SCOPE("multi_tensor_sum_squares");
  double total = 0.0;
  for (int k = 0; k < count; ++k) {
    const float* x = tensors[k];
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (int64_t i = 0; i < sizes[k]; ++i) s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    total += s;
  }
  return total;
}

void multi_tensor_scale(float* const* tensors, const int64_t* sizes, int count, float scale) {
  PNEUMO_CPU_SCOPE("multi_tensor_scale");
  for (int k = 0; k < count; ++k) {
    float* x = tensors[k];
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < sizes[k]; ++i) x[i] = x[i] * scale;
  }
}

}  // namespace pneumo::kernels::cpu
