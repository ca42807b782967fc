// The multi-tensor bf16 weight cast on CUDA (kernels/cuda/optim_kernels.cu multi_tensor_cast_bf16) against
// its CPU twin, bit for bit; and a network's bf16 forward + backward with the weights cast once
// (nn::WeightCastScope) against the per-weight casts. Skips without a GPU (fails under PNEUMO_REQUIRE_GPU=1).
#include <gtest/gtest.h>

#include <cstring>

#include "nn/models/registry.h"
#include "nn/weight_cast.h"
#include "support/checkers.h"
#include "tensor/cuda_runtime.h"
#include "tensor/multi_tensor_ops.h"
#include "tests/nn/bf16_bits.h"
#include "tests/nn/network_compare.h"

namespace pneumo {
namespace {

TEST(MultiTensorCastGpu, BitIdenticalToTheCpuTwin) {
  PNEUMO_REQUIRE_CUDA();
  std::vector<Tensor> cpu_src, gpu_src;
  uint64_t seed = 21;
  for (Shape s : {Shape{1}, Shape{5}, Shape{8}, Shape{65536}, Shape{65539}, Shape{3, 131073}, Shape{64, 3, 3, 64}}) {
    cpu_src.push_back(Tensor::normal(s, 0, 10, seed++));
    gpu_src.push_back(cpu_src.back().to(Device::cuda()));
  }
  // A misaligned source (offset 1 float): the kernel's scalar path.
  Tensor big = Tensor::normal({1001}, 0, 1, 99);
  cpu_src.push_back(big.slice(1, 1001));
  gpu_src.push_back(big.to(Device::cuda()).slice(1, 1001));
  const auto c = ops::cast_bf16_multi(cpu_src);
  const auto g = ops::cast_bf16_multi(gpu_src);
  cuda::synchronize();
  ASSERT_EQ(c.size(), g.size());
  for (size_t k = 0; k < c.size(); ++k) {
    SCOPED_TRACE(shape_str(cpu_src[k].shape()));
    EXPECT_TRUE(g[k].device().is_cuda());
    EXPECT_EQ(test::bf16_bits(g[k]), test::bf16_bits(c[k]));
    EXPECT_EQ(test::bf16_bits(g[k]), test::bf16_bits(gpu_src[k].to(DType::BF16))) << "and to the per-tensor CUDA cast";
  }
}

TEST(WeightCastScopeGpu, NetworkSameAsPerWeightCasts) {
  PNEUMO_REQUIRE_CUDA();
  nn::models::ModelOptions opt;
  opt.drop_connect_rate = 0.0;
  auto m = nn::models::create_model("tiny_unet_se", opt);
  m->to(Device::cuda());
  m->train();
  Tensor input = Tensor::normal({2, 64, 64, 3}, 0, 1, 31);
  Tensor proj = test::projection_for(*m, input.to(Device::cuda()), 32);  // the probe runs where the model is
  m->train();
  test::NetworkRun per_weight = test::run_network(*m, input, proj, Device::cuda(), DType::BF16);
  test::NetworkRun once;
  {
    nn::WeightCastScope scope(*m, DType::BF16, true);
    EXPECT_GT(scope.size(), 0u);
    once = test::run_network(*m, input, proj, Device::cuda(), DType::BF16);
  }
  cuda::synchronize();
  // Same weights bit for bit, same (cached) algorithms: the forward is identical. Gradients too, up to a
  // non-deterministic cuDNN fallback (printed on stderr when one is used), hence a bound, not equality:
  // a wrong or stale copy moves them by O(1).
  EXPECT_EQ(test::max_normalized_error(once.seg, per_weight.seg), 0.0);
  const test::NetworkErrors e = test::compare_runs(once, per_weight);
  ASSERT_TRUE(e.names_match);
  EXPECT_LE(e.grads_l2, 1e-3);
}

}  // namespace
}  // namespace pneumo
