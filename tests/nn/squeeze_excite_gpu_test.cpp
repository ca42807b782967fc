// The fused squeeze-excite CUDA kernels against the CPU oracle (float32 and bfloat16, both activations,
// odd channel counts that take the scalar path, many pixel splits), bit-reproducibility, and the module's
// bfloat16 path with float32 master weights.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functions.h"
#include "nn/squeeze_excite.h"
#include "support/checkers.h"

using namespace pneumo;
using ag::Variable;
using V = std::vector<Variable>;

namespace {
// relu_safe: the ReLU's kink is a true discontinuity of the gradient; bfloat16 rounding of the inputs moves
// each pre-activation z1 by ~1e-3, which can flip a unit near 0 on one side only. Small W1 (|W1 pooled|
// < ~0.12 for these shapes) and |b1| in [0.25, 0.5] keep every |z1| >= ~0.13, far from the kink.
std::vector<Tensor> se_inputs(int64_t N, int64_t H, int64_t W, int64_t C, int64_t R, uint64_t seed, bool relu_safe) {
  Tensor w1 = Tensor::uniform({R, 1, 1, C}, relu_safe ? -0.05f : -0.5f, relu_safe ? 0.05f : 0.5f, seed, 1);
  Tensor b1 = Tensor::uniform({R}, -0.5, 0.5, seed, 2);
  if (relu_safe) {
    auto v = Tensor::uniform({R}, -1, 1, seed, 2).to_vector();
    for (float& b : v) b = (b < 0 ? -1.0f : 1.0f) * (0.25f + 0.25f * std::fabs(b));
    b1 = Tensor::from_vector(v, {R});
  }
  return {Tensor::normal({N, H, W, C}, 0, 1, seed), w1, b1, Tensor::uniform({C, 1, 1, R}, -0.5, 0.5, seed, 3),
          Tensor::uniform({C}, -0.5, 0.5, seed, 4)};
}
}  // namespace

TEST(SqueezeExciteGpu, MatchesCpuFloat32AndBfloat16) {
  PNEUMO_REQUIRE_CUDA();
  struct Dims {
    int64_t N, H, W, C, R;
  };
  for (auto act : {nn::SEActivation::ReLU, nn::SEActivation::Swish}) {
    auto fn = [act](const V& v) { return nn::squeeze_excite(v[0], v[1], v[2], v[3], v[4], act); };
    for (Dims d : {Dims{2, 5, 7, 64, 16}, Dims{3, 3, 3, 6, 3}, Dims{1, 33, 31, 260, 20}, Dims{2, 64, 64, 32, 8},
                   Dims{4, 16, 16, 256, 16}}) {
      SCOPED_TRACE(testing::Message() << "act " << int(act) << " N" << d.N << " H" << d.H << " W" << d.W << " C"
                                      << d.C << " R" << d.R);
      auto in = se_inputs(d.N, d.H, d.W, d.C, d.R, test::fresh_seed(), act == nn::SEActivation::ReLU);
      test::compare_gpu_cpu(fn, in, {DType::F32});
      // bfloat16 activations and weights: inputs are rounded to 8 bits of mantissa before the GPU sees them,
      // and weight gradients sum N*H*W such products: 3e-2 for gradients (default 1e-2/2e-2 for outputs).
      test::GpuCheckOptions bf;
      bf.gpu_dtype = DType::BF16;
      bf.grad_tol = {3e-2, 3e-2};
      test::compare_gpu_cpu(fn, in, bf);
    }
  }
}

TEST(SqueezeExciteGpu, BackwardIsBitReproducible) {
  PNEUMO_REQUIRE_CUDA();
  auto in = se_inputs(4, 32, 32, 128, 8, 77, false);
  std::vector<std::vector<float>> first;
  for (int run = 0; run < 2; ++run) {
    V v;
    for (const Tensor& t : in) v.emplace_back(t.to(Device::cuda()), true);
    Variable y = nn::squeeze_excite(v[0], v[1], v[2], v[3], v[4], nn::SEActivation::Swish);
    y.backward(Tensor::normal(y.shape(), 0, 1, 5, 0, DType::F32, Device::cuda()));
    for (size_t i = 0; i < v.size(); ++i) {
      auto g = v[i].grad().to_vector();
      if (run == 0) first.push_back(g);
      else EXPECT_EQ(g, first[i]) << "input " << i;
    }
  }
}

TEST(SqueezeExciteGpu, ModuleBfloat16KeepsFloat32Masters) {
  PNEUMO_REQUIRE_CUDA();
  nn::SqueezeExcite se(64, 8, nn::SEActivation::ReLU);
  se.to(Device::cuda());
  Variable x(Tensor::normal({2, 8, 8, 64}, 0, 1, 3, 0, DType::BF16, Device::cuda()), true);
  Variable y = se(x);
  EXPECT_EQ(y.dtype(), DType::BF16);
  ag::sum(ag::cast(y, DType::F32)).backward();
  for (auto& [name, p] : se.named_parameters()) {
    EXPECT_EQ(p.dtype(), DType::F32) << name;
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_EQ(p.grad().dtype(), DType::F32) << name;
  }
}
