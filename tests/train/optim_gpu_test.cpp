// The multi-tensor CUDA optimiser step and clipping against the CPU loop: many tensors across chunk
// boundaries, a misaligned view that takes the scalar path, state saved on the GPU and resumed on the CPU.
#include <gtest/gtest.h>

#include <cstdio>

#include "support/checkers.h"
#include "train/optim.h"

using namespace pneumo;
using ag::Variable;

namespace {

const std::vector<int64_t> kSizes = {70000, 3, 131073, 65536, 1, 4097};

std::vector<Variable> params_on(Device dev, uint64_t seed) {
  std::vector<Variable> ps;
  for (size_t i = 0; i < kSizes.size(); ++i)
    ps.emplace_back(Tensor::normal({kSizes[i]}, 0, 1, seed, i).to(dev), true);
  // A view starting one element in: not 16-byte aligned.
  Tensor big = Tensor::normal({1001}, 0, 1, seed, 99).to(dev);
  ps.emplace_back(big.slice(1, 1001), true);
  return ps;
}

void set_grads(std::vector<Variable>& ps, uint64_t seed, int step) {
  for (size_t i = 0; i < ps.size(); ++i) {
    Tensor g = Tensor::normal(ps[i].shape(), 0, 1.0f + step, seed + 1000 + step, i);
    ps[i].mutable_grad() = g.to(ps[i].device());
  }
}

std::unique_ptr<train::Optimizer> make(const std::string& name, const std::vector<Variable>& ps) {
  auto named = train::name_parameters(ps);
  if (name == "adam") return std::make_unique<train::Adam>(named, train::AdamOptions{1e-2, 0.9, 0.999, 1e-8, 0.01});
  if (name == "adamw") return std::make_unique<train::AdamW>(named, train::AdamOptions{1e-2, 0.9, 0.999, 1e-8, 0.05});
  return std::make_unique<train::Sgd>(named, train::SgdOptions{1e-2, 0.9, 0.1, 1e-3, false});
}

}  // namespace

TEST(OptimGpu, MultiTensorStepMatchesCpu) {
  PNEUMO_REQUIRE_CUDA();
  for (std::string name : {"adam", "adamw", "sgd"}) {
    SCOPED_TRACE(name);
    const uint64_t seed = test::fresh_seed();
    auto cpu = params_on(Device::cpu(), seed);
    auto gpu = params_on(Device::cuda(), seed);
    auto oc = make(name, cpu), og = make(name, gpu);
    for (int step = 0; step < 5; ++step) {
      set_grads(cpu, seed, step);
      set_grads(gpu, seed, step);
      oc->step();
      og->step();
    }
    // Same arithmetic; nvcc contracts a*b+c into fma where gcc does not: a few ulps after 5 steps.
    for (size_t i = 0; i < cpu.size(); ++i)
      PNEUMO_EXPECT_CLOSE(gpu[i].value(), cpu[i].value(), (test::Tolerance{1e-6, 1e-6}));
  }
}

TEST(OptimGpu, ClipGradNormMatchesCpu) {
  PNEUMO_REQUIRE_CUDA();
  for (double max_norm : {1.0, 1e6}) {
    auto cpu = params_on(Device::cpu(), 5);
    auto gpu = params_on(Device::cuda(), 5);
    set_grads(cpu, 5, 0);
    set_grads(gpu, 5, 0);
    const double nc = train::clip_grad_norm(cpu, max_norm), ng = train::clip_grad_norm(gpu, max_norm);
    EXPECT_NEAR(ng, nc, 1e-5 * nc);
    for (size_t i = 0; i < cpu.size(); ++i)
      PNEUMO_EXPECT_CLOSE(gpu[i].grad(), cpu[i].grad(), (test::Tolerance{1e-5, 1e-5}));
  }
}

TEST(OptimGpu, StateSavedOnGpuResumesOnCpu) {
  PNEUMO_REQUIRE_CUDA();
  auto gpu = params_on(Device::cuda(), 8);
  train::Adam og(gpu, {1e-2});
  for (int step = 0; step < 3; ++step) {
    set_grads(gpu, 8, step);
    og.step();
  }
  const std::string path = testing::TempDir() + "pneumo_optim_gpu.safetensors";
  og.save(path);
  std::vector<Variable> cpu;
  for (auto& p : gpu) cpu.emplace_back(p.value().cpu(), true);
  train::Adam oc(cpu, {});
  oc.load(path);
  set_grads(cpu, 8, 3);
  set_grads(gpu, 8, 3);
  oc.step();
  og.step();
  for (size_t i = 0; i < cpu.size(); ++i)
    PNEUMO_EXPECT_CLOSE(gpu[i].value(), cpu[i].value(), (test::Tolerance{1e-6, 1e-6}));
  std::remove(path.c_str());
}
