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

void check_network(const std::string& name, DType dtype, double fwd_tol, double grad_tol, int64_t size = 64) {
  SCOPED_TRACE(name + " " + dtype_name(dtype));
  ModelOptions opt;
  opt.drop_connect_rate = 0.0;  // same Philox masks on both backends, but keep the comparison deterministic
  auto cpu = create_model(name, opt);
  auto gpu = create_model(name, opt);
  for (auto& kv : cpu->state_dict()) gpu->set_tensor(kv.first, kv.second);
  gpu->to(Device::cuda());
  cpu->train();
  gpu->train();
  Tensor input = Tensor::normal({2, size, size, 3}, 0, 1, test::fresh_seed());
  Tensor proj = Tensor::normal({2, size, size, 1}, 0, 1, test::fresh_seed());
  RunResult c = run_once(*cpu, input, proj, Device::cpu(), DType::F32);
  RunResult g = run_once(*gpu, input, proj, Device::cuda(), dtype);
  cuda::synchronize();
  double e_seg = normalized_error(g.seg, c.seg), e_in = normalized_error(g.input_grad, c.input_grad);
  double e_param = 0;
  std::string worst;
  ASSERT_EQ(g.grads.size(), c.grads.size());
  for (size_t i = 0; i < c.grads.size(); ++i) {
    double e = normalized_error(g.grads[i].second, c.grads[i].second);
    if (e > e_param) e_param = e, worst = c.grads[i].first;
  }
  std::printf("%-18s %-5s seg %.2e  input grad %.2e  worst param grad %.2e (%s)\n", name.c_str(),
              dtype_name(dtype), e_seg, e_in, e_param, worst.c_str());
  EXPECT_LE(e_seg, fwd_tol);
  if (c.cls.defined()) {
    EXPECT_LE(normalized_error(g.cls, c.cls), fwd_tol);
  }
  EXPECT_LE(e_in, grad_tol);
  EXPECT_LE(e_param, grad_tol) << worst;
}

// float32: cuDNN/cuBLAS in float32 (no TF32) vs the CPU oracle.
TEST(ModelsGpu, TinyNetworksFloat32) {
  PNEUMO_REQUIRE_CUDA();
  for (const char* n : {"tiny_unet_se", "tiny_unet_ef", "tiny_deeplab_se", "tiny_cls_ef"}) check_network(n, DType::F32, 1e-4, 1e-3);
}
TEST(ModelsGpu, TinyNetworksBFloat16) {
  PNEUMO_REQUIRE_CUDA();
  for (const char* n : {"tiny_unet_se", "tiny_unet_ef", "tiny_deeplab_se", "tiny_cls_ef"}) check_network(n, DType::BF16, 5e-2, 1e-1);
}
TEST(ModelsGpu, FullNetworksFloat32) {
  PNEUMO_REQUIRE_CUDA();
  for (const char* n : {"unet_se50", "unet_se101", "unet_ef3", "unet_ef5", "deeplab_se50", "cls_ef3"})
    check_network(n, DType::F32, 1e-3, 1e-2);
}
TEST(ModelsGpu, FullNetworksBFloat16) {
  PNEUMO_REQUIRE_CUDA();
  for (const char* n : {"unet_se50", "unet_se101", "unet_ef3", "unet_ef5", "deeplab_se50", "cls_ef3"})
    check_network(n, DType::BF16, 1e-1, 2e-1);
}

}  // namespace
}  // namespace pneumo::nn::models
