// Test-only: one forward + backward of a network under a fixed scalar loss, and the scale-free errors
// between two such runs. Shared by the CPU precision test (float32 vs float64) and the GPU-vs-CPU test.
// Loss: sum(seg * proj) + sum(cls), evaluated in float32 (float64 for a float64 run).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/functions.h"
#include "nn/models/network.h"
#include "nn/models/registry.h"

namespace pneumo::test {

// max |a - r| / max |r| over the tensor; 1e30 on a shape mismatch or a non-finite value.
inline double max_normalized_error(const Tensor& actual, const Tensor& reference) {
  if (actual.shape() != reference.shape()) return 1e30;
  std::vector<double> a = actual.to_vector_f64(), r = reference.to_vector_f64();
  double diff = 0, scale = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return 1e30;
    diff = std::max(diff, std::fabs(a[i] - r[i]));
    scale = std::max(scale, std::fabs(r[i]));
  }
  return diff / scale;
}

// A second network `name` with the same parameters and buffers as `src` (then moved/cast by the caller).
inline std::shared_ptr<nn::models::Network> copy_of(const nn::models::Network& src, const std::string& name,
                                                    const nn::models::ModelOptions& opt) {
  auto m = nn::models::create_model(name, opt);
  for (auto& kv : src.state_dict()) m->set_tensor(kv.first, kv.second);
  return m;
}

// A N(0, 1) projection shaped like the network's segmentation output (DeepLab's is not the input's size),
// from an eval-mode probe (running statistics untouched); undefined for a classifier. Leaves `m` in eval.
inline Tensor projection_for(nn::models::Network& m, const Tensor& input, uint64_t seed) {
  ag::NoGradGuard ng;
  m.eval();
  nn::models::NetworkOutput probe = m.run(ag::Variable(input));
  return probe.seg.defined() ? Tensor::normal(probe.seg.shape(), 0, 1, seed) : Tensor();
}

struct NetworkRun {
  Tensor seg, cls, input_grad;                        // CPU, float64
  std::vector<std::pair<std::string, Tensor>> grads;  // every parameter gradient, CPU float64
};

// Runs `m` (already on `device`, parameters in their dtype) on input/proj (CPU float32 or float64 tensors)
// with activations of `dtype`.
inline NetworkRun run_network(nn::models::Network& m, const Tensor& input, const Tensor& proj, Device device,
                              DType dtype) {
  const DType loss_dtype = dtype == DType::F64 ? DType::F64 : DType::F32;
  m.zero_grad();
  ag::Variable x(input.to(dtype).to(device), true);
  nn::models::NetworkOutput out = m.run(x);
  ag::Variable loss;
  if (out.seg.defined())
    loss = ag::sum(ag::mul(ag::cast(out.seg, loss_dtype), ag::Variable(proj.to(loss_dtype).to(device))));
  if (out.cls.defined()) {
    ag::Variable c = ag::sum(ag::cast(out.cls, loss_dtype));
    loss = loss.defined() ? ag::add(loss, c) : c;
  }
  loss.backward();
  auto host = [](const Tensor& t) { return t.cpu().to(DType::F64); };
  NetworkRun r;
  if (out.seg.defined()) r.seg = host(out.seg.value());
  if (out.cls.defined()) r.cls = host(out.cls.value());
  r.input_grad = host(x.grad());
  for (auto& kv : m.named_parameters())
    if (kv.second.grad().defined()) r.grads.emplace_back(kv.first, host(kv.second.grad()));
  return r;
}

struct NetworkErrors {
  double seg = 0, cls = 0, input_grad = 0;
  double grads_l2 = 0;    // all parameter gradients as one vector: |a - r|_2 / |r|_2
  double worst_grad = 0;  // worst single gradient tensor, max-normalised (ill-posed near zero: report only)
  // grads_l2 split by kind, to tell where an error comes from: conv/linear weights (cuDNN/cuBLAS weight
  // gradients), squeeze-excite parameters, and the 1-D rest (BatchNorm parameters, biases).
  double l2_weights = 0, l2_se = 0, l2_vectors = 0;
  // The bounded per-group metric: per group (0 weights, 1 SE, 2 BN/bias), the worst single tensor's error
  // relative to the norm of the WHOLE gradient, max_t |a_t - r_t|_2 / |r|_2: every tensor is checked, and a
  // tensor whose gradient is near zero cannot blow the metric up (bench/model_precision_torch.py prints it).
  double group_worst[3] = {0, 0, 0};
  std::string group_worst_name[3];
  std::string worst_name;
  size_t grad_count = 0;
  bool names_match = true;
};

inline NetworkErrors compare_runs(const NetworkRun& a, const NetworkRun& ref) {
  NetworkErrors e;
  if (ref.seg.defined()) e.seg = a.seg.defined() ? max_normalized_error(a.seg, ref.seg) : 1e30;
  if (ref.cls.defined()) e.cls = a.cls.defined() ? max_normalized_error(a.cls, ref.cls) : 1e30;
  e.input_grad = max_normalized_error(a.input_grad, ref.input_grad);
  e.grad_count = ref.grads.size();
  if (a.grads.size() != ref.grads.size()) {
    e.names_match = false;
    e.grads_l2 = 1e30;
    return e;
  }
  double diff2 = 0, ref2 = 0, kd[3] = {0, 0, 0}, kr[3] = {0, 0, 0};
  std::vector<double> tensor_d2(ref.grads.size(), 0);
  std::vector<int> tensor_kind(ref.grads.size(), 0);
  for (size_t i = 0; i < ref.grads.size(); ++i) {
    if (a.grads[i].first != ref.grads[i].first || a.grads[i].second.shape() != ref.grads[i].second.shape()) {
      e.names_match = false;
      e.grads_l2 = 1e30;
      return e;
    }
    const double m = max_normalized_error(a.grads[i].second, ref.grads[i].second);
    if (m > e.worst_grad) e.worst_grad = m, e.worst_name = ref.grads[i].first;
    const std::string& n = ref.grads[i].first;
    const int kind = n.find(".se.") != std::string::npos ? 1 : (ref.grads[i].second.dim() >= 2 ? 0 : 2);
    std::vector<double> x = a.grads[i].second.to_vector_f64(), r = ref.grads[i].second.to_vector_f64();
    double d = 0, q = 0;
    for (size_t k = 0; k < x.size(); ++k) {
      if (!std::isfinite(x[k])) d = 1e300;
      d += (x[k] - r[k]) * (x[k] - r[k]);
      q += r[k] * r[k];
    }
    diff2 += d, ref2 += q, kd[kind] += d, kr[kind] += q;
    tensor_d2[i] = d, tensor_kind[i] = kind;
  }
  auto ratio = [](double d, double q) { return std::min(1e30, std::sqrt(d / std::max(q, 1e-300))); };
  e.grads_l2 = ratio(diff2, ref2);
  e.l2_weights = ratio(kd[0], kr[0]);
  e.l2_se = ratio(kd[1], kr[1]);
  e.l2_vectors = ratio(kd[2], kr[2]);
  for (size_t i = 0; i < ref.grads.size(); ++i) {
    const double r = ratio(tensor_d2[i], ref2);
    const int k = tensor_kind[i];
    if (r > e.group_worst[k]) e.group_worst[k] = r, e.group_worst_name[k] = ref.grads[i].first;
  }
  return e;
}

// Bounds on NetworkErrors. The max-normalised per-tensor worst is not bounded: it is ill-posed for
// gradients near zero; the per-group bounds use group_worst (relative to the whole gradient's norm) instead.
struct ErrorBounds {
  double forward;     // seg and cls
  double input_grad;
  double grads_l2;
  double group[3] = {1e29, 1e29, 1e29};  // group_worst: weights, SE, BN/bias (1e29: only finiteness, 1e30)
};

inline bool within(const NetworkErrors& e, const ErrorBounds& b) {
  return e.names_match && e.seg <= b.forward && e.cls <= b.forward && e.input_grad <= b.input_grad &&
         e.grads_l2 <= b.grads_l2 && e.group_worst[0] <= b.group[0] && e.group_worst[1] <= b.group[1] &&
         e.group_worst[2] <= b.group[2];
}

// A discrete event -- a ReLU input or a max-pool near-tie that rounds the other way -- now and then moves
// one draw's gradients by ~1e-2 (seen in about 1 of 20 float32-vs-float64 draws of the tiny SE UNet, eval),
// while a defect shows on every draw: the CPU float32-vs-float64 test (ModelPrecision) judges its bounds on the
// better of two independent draws. The GPU network tests do not (issue 12): one draw, bounds from measurement.
template <typename Draw>
NetworkErrors better_of_two_draws(Draw draw, const ErrorBounds& b) {
  NetworkErrors e = draw();
  if (within(e, b) || !e.names_match) return e;
  std::printf("  outside the bounds on this draw (a rounding flip, or a defect): a second draw decides\n");
  return draw();
}

inline void print_errors(const std::string& label, const NetworkErrors& e) {
  std::printf("%-32s seg %.1e cls %.1e input grad %.1e | %zu param grads: L2 %.1e (weights %.1e, SE %.1e, "
              "BN/bias %.1e), worst %.1e (%s)\n",
              label.c_str(), e.seg, e.cls, e.input_grad, e.grad_count, e.grads_l2, e.l2_weights, e.l2_se, e.l2_vectors,
              e.worst_grad, e.worst_name.c_str());
  std::printf("%-32s worst tensor / |whole gradient|: weights %.1e (%s), SE %.1e (%s), BN/bias %.1e (%s)\n", "",
              e.group_worst[0], e.group_worst_name[0].c_str(), e.group_worst[1], e.group_worst_name[1].c_str(),
              e.group_worst[2], e.group_worst_name[2].c_str());
}

}  // namespace pneumo::test
