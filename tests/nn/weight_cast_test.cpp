// Weights cast to bf16 once per step (nn/weight_cast.h, ops::cast_bf16_multi) on the CPU: the multi-tensor
// cast is bit-identical to per-tensor Tensor::to(BF16) (rounding ties, NaN, infinities, odd sizes), its
// views are 16-byte aligned, and a layer under a WeightCastScope gives the same values and the same float32
// gradient as the per-weight cast while launching no per-weight cast (counted by the op profiler).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "autograd/functions.h"
#include "kernels/check.h"
#include "nn/weight_cast.h"
#include "tensor/multi_tensor_ops.h"
#include "tests/nn/bf16_bits.h"
#include "tensor/profile.h"

using namespace pneumo;

namespace {

std::vector<Tensor> awkward_tensors() {
  // Sizes around the 4-wide vector path and the 64K chunk; values with rounding ties and specials.
  std::vector<Tensor> ts;
  uint64_t seed = 11;
  for (Shape s : {Shape{1}, Shape{3}, Shape{7}, Shape{8}, Shape{65537}, Shape{16, 3, 3, 5}, Shape{0}, Shape{2, 33}})
    ts.push_back(Tensor::normal(s, 0, 3, seed++));
  std::vector<float> special = {1.0f + 1.0f / 256,  // a tie: rounds to even (1.0)
                                1.0f + 3.0f / 256,  // a tie: rounds up
                                std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                                std::numeric_limits<float>::quiet_NaN(), 3.0e38f, -0.0f, 1e-40f};
  ts.push_back(Tensor::from_vector(special, {static_cast<int64_t>(special.size())}));
  return ts;
}

}  // namespace

TEST(MultiTensorCast, BitIdenticalToPerTensorCastOnTheCpu) {
  const std::vector<Tensor> src = awkward_tensors();
  const std::vector<Tensor> out = ops::cast_bf16_multi(src);
  ASSERT_EQ(out.size(), src.size());
  for (size_t k = 0; k < src.size(); ++k) {
    SCOPED_TRACE(shape_str(src[k].shape()));
    EXPECT_EQ(out[k].dtype(), DType::BF16);
    EXPECT_EQ(out[k].shape(), src[k].shape());
    EXPECT_EQ(test::bf16_bits(out[k]), test::bf16_bits(src[k].to(DType::BF16)));
    if (k > 0) {
      EXPECT_TRUE(out[k].shares_storage(out[0])) << "one buffer for all copies";
    }
    if (out[k].numel() > 0) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(out[k].raw_data()) % 16, 0u);
    }
  }
  const std::vector<uint16_t> sp = test::bf16_bits(out.back());
  EXPECT_EQ(sp[0], 0x3f80) << "1 + 2^-8 is a tie and rounds to even";
  EXPECT_EQ(sp[1], 0x3f82) << "1 + 3 * 2^-8 is a tie and rounds up to even";
}

TEST(MultiTensorCast, RejectsWhatItCannotCast) {
  EXPECT_TRUE(ops::cast_bf16_multi({}).empty());
  try {
    ops::cast_bf16_multi({Tensor::full({2}, 1.0), Tensor::full({3}, 1.0, DType::F64)});
    FAIL() << "float64 input accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 1 is float64"), std::string::npos) << e.what();
  }
}

namespace {

struct LayerRun {
  std::vector<uint16_t> y;
  std::vector<float> grad;
  int64_t per_weight_casts = 0, multi_casts = 0;
};

// y = x * cast(w) in bf16 (a stand-in for a layer's weight use), loss = sum(float32(y) * float32(y)).
LayerRun run_layer(bool scope_on) {
  ag::Variable w(Tensor::normal({6, 37}, 0, 1, 5), true);
  Tensor x = Tensor::normal({6, 37}, 0, 1, 6).to(DType::BF16);
  const bool was = profile::timing();
  profile::set_timing(true);
  profile::reset();
  LayerRun r;
  {
    nn::WeightCastScope scope({w}, DType::BF16, scope_on);
    EXPECT_EQ(scope.size(), scope_on ? 1u : 0u);
    ag::Variable y = ag::mul(ag::Variable(x), nn::cast_for_forward(w, DType::BF16));
    r.y = test::bf16_bits(y.value());
    ag::Variable y32 = ag::cast(y, DType::F32);
    ag::sum(ag::mul(y32, y32)).backward();
  }
  for (const auto& row : profile::rows()) {
    if (row.op == "cast" && row.direction == "fwd" && row.shape == "[6, 37] float32") r.per_weight_casts += row.calls;
    if (row.op == "cast_bf16_multi") r.multi_casts += row.calls;
  }
  profile::set_timing(was);
  profile::reset();
  r.grad = w.grad().to_vector();
  return r;
}

}  // namespace

TEST(WeightCastScope, SameValuesAndGradientsWithoutPerWeightCasts) {
  const LayerRun per_weight = run_layer(false), once = run_layer(true);
  EXPECT_EQ(per_weight.per_weight_casts, 1);
  EXPECT_EQ(per_weight.multi_casts, 0);
  EXPECT_EQ(once.per_weight_casts, 0) << "the layer used the precast copy";
  EXPECT_EQ(once.multi_casts, 1);
  EXPECT_EQ(once.y, per_weight.y);
  ASSERT_EQ(once.grad.size(), per_weight.grad.size());
  EXPECT_EQ(0, std::memcmp(once.grad.data(), per_weight.grad.data(), once.grad.size() * sizeof(float)))
      << "the float32 master gradient must be bit-identical";
}

TEST(WeightCastScope, ReplacedWeightIsNotServedStale) {
  ag::Variable w(Tensor::full({5}, 1.0), true);
  nn::WeightCastScope scope({w}, DType::BF16, true);
  w.mutable_value() = Tensor::full({5}, 2.0);  // e.g. a checkpoint load inside the scope
  ag::Variable c = nn::cast_for_forward(w, DType::BF16);
  EXPECT_EQ(c.value().to(DType::F32).to_vector(), std::vector<float>(5, 2.0f));
}

TEST(WeightCastScope, ScopesNestAndEnd) {
  ag::Variable w(Tensor::full({4}, 3.0), true);
  {
    nn::WeightCastScope outer({w}, DType::BF16, true);
    {
      nn::WeightCastScope inner(std::vector<ag::Variable>{}, DType::BF16, true);  // an inner scope hides the outer one's copies
      EXPECT_EQ(inner.size(), 0u);
    }
    EXPECT_EQ(outer.size(), 1u);
  }
  // No scope: a plain cast (a new tensor, not a view of a multi-cast buffer).
  ag::Variable c = nn::cast_for_forward(w, DType::BF16);
  EXPECT_EQ(c.value().to(DType::F32).to_vector(), std::vector<float>(4, 3.0f));
}
