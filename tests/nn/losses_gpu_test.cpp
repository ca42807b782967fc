// The fused loss kernels on CUDA against the CPU oracle (float32 and bfloat16 logits, odd sizes that take
// the scalar path, a 1024x1024 dice), the dice clamp's zero gradient, and bit-reproducibility.
#include <gtest/gtest.h>

#include "nn/losses.h"
#include "support/checkers.h"

using namespace pneumo;
using ag::Variable;
using V = std::vector<Variable>;

namespace {
Tensor mask(const Shape& s, uint64_t seed) {
  auto u = Tensor::uniform(s, 0, 1, seed).to_vector();
  for (float& v : u) v = v < 0.3f ? 1.0f : 0.0f;
  return Tensor::from_vector(u, s);
}
}  // namespace

TEST(LossesGpu, MatchCpuFloat32AndBfloat16) {
  PNEUMO_REQUIRE_CUDA();
  auto bce = [](const V& v) { return nn::bce_with_logits(v[0], v[1].value()); };
  auto focal = [](const V& v) { return nn::focal_loss(v[0], v[1].value()); };
  auto dice = [](const V& v) { return nn::soft_dice_loss(v[0], v[1].value()); };
  for (Shape s : {Shape{4, 64, 64, 1}, Shape{3, 37, 41, 1}, Shape{16, 1}, Shape{2, 1024, 1024, 1}}) {
    SCOPED_TRACE(shape_str(s));
    const uint64_t seed = test::fresh_seed();
    std::vector<Tensor> in{Tensor::normal(s, 0, 3, seed), mask(s, seed + 1)};
    for (DType dt : {DType::F32, DType::BF16}) {
      test::GpuCheckOptions o;
      o.gpu_dtype = dt;
      test::compare_gpu_cpu(bce, in, o);
      test::compare_gpu_cpu(focal, in, o);
      test::compare_gpu_cpu(dice, in, o);
    }
    // Soft targets, float32 only (bfloat16 would round the targets themselves).
    std::vector<Tensor> soft{in[0], Tensor::uniform(s, 0, 1, seed + 2)};
    test::compare_gpu_cpu(bce, soft, {DType::F32});
    test::compare_gpu_cpu(focal, soft, {DType::F32});
    test::compare_gpu_cpu(dice, soft, {DType::F32});
  }
}

TEST(LossesGpu, DiceSaturatedGradientIsZeroAndSumsAreReproducible) {
  PNEUMO_REQUIRE_CUDA();
  Variable x(Tensor::full({2, 8, 8, 1}, 30.0, DType::F32, Device::cuda()), true);
  Variable loss = nn::soft_dice_loss(x, Tensor::full({2, 8, 8, 1}, 1.0, DType::F32, Device::cuda()));
  loss.backward();
  for (float g : x.grad().to_vector()) EXPECT_EQ(g, 0.0f);

  Tensor logits = Tensor::normal({4, 512, 512, 1}, 0, 2, 9, 0, DType::F32, Device::cuda());
  Tensor t = mask({4, 512, 512, 1}, 10).to(Device::cuda());
  const double a = nn::soft_dice_loss(Variable(logits), t).value().item();
  const double b = nn::soft_dice_loss(Variable(logits), t).value().item();
  EXPECT_EQ(a, b);
  const double c = nn::focal_loss(Variable(logits), t).value().item();
  const double d = nn::focal_loss(Variable(logits), t).value().item();
  EXPECT_EQ(c, d);
}
