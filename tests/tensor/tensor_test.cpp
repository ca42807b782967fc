// Tensor basics: creation, views along the batch dimension, copies, dtype conversions, Philox, printing,
// and the errors bad calls get.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/check.h"
#include "kernels/philox.h"
#include "support/checkers.h"
#include "tensor/allocator.h"
#include "tensor/generator.h"
#include "tensor/tensor.h"

using namespace pneumo;

TEST(Tensor, CreationShapeAndFill) {
  Tensor t = Tensor::full({2, 3, 4, 5}, 1.5);
  EXPECT_EQ(t.numel(), 120);
  EXPECT_EQ(t.dim(), 4);
  EXPECT_EQ(t.size(-1), 5);
  EXPECT_EQ(t.nbytes(), 480u);
  for (float v : t.to_vector()) EXPECT_EQ(v, 1.5f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u) << "CPU storage must be 64-byte aligned";
  Tensor z = Tensor::zeros({0, 3});
  EXPECT_EQ(z.numel(), 0);
  EXPECT_THROW(Tensor::empty({2, -1}), Error);
  EXPECT_THROW(Tensor().raw_data(), Error);
  EXPECT_THROW(t.size(4), Error);
}

TEST(Tensor, SliceSharesStorageAlongBatch) {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5, 6, 7}, {4, 2});
  Tensor s = t.slice(1, 3);
  EXPECT_EQ(s.shape(), (Shape{2, 2}));
  EXPECT_TRUE(s.shares_storage(t));
  EXPECT_EQ(s.to_vector(), (std::vector<float>{2, 3, 4, 5}));
  s.fill_(-1);
  EXPECT_EQ(t.to_vector(), (std::vector<float>{0, 1, -1, -1, -1, -1, 6, 7}));
  EXPECT_EQ(t[3].to_vector(), (std::vector<float>{6, 7}));
  EXPECT_EQ(t[3].shape(), (Shape{2}));
  EXPECT_THROW(t.slice(2, 5), Error);
}

TEST(Tensor, ReshapeInfersAndChecks) {
  Tensor t = Tensor::zeros({2, 3, 4});
  EXPECT_EQ(t.reshape({-1, 4}).shape(), (Shape{6, 4}));
  EXPECT_TRUE(t.reshape({24}).shares_storage(t));
  EXPECT_THROW(t.reshape({5, -1}), Error);
  EXPECT_THROW(t.reshape({-1, -1}), Error);
  EXPECT_THROW(t.reshape({25}), Error);
}

TEST(Tensor, CloneAndCopyAreDeep) {
  Tensor a = Tensor::from_vector({1, 2, 3}, {3});
  Tensor b = a.clone();
  b.fill_(0);
  EXPECT_EQ(a.to_vector(), (std::vector<float>{1, 2, 3}));
  Tensor c = Tensor::empty({3});
  c.copy_from(a);
  EXPECT_EQ(c.to_vector(), a.to_vector());
  EXPECT_THROW(c.copy_from(Tensor::zeros({4})), Error);
}

TEST(Tensor, BFloat16RoundsToNearestEven) {
  // 1 + 2^-8 is exactly halfway between two bf16 values (1 and 1 + 2^-7): ties go to the even one (1).
  float halfway = 1.0f + std::ldexp(1.0f, -8);
  EXPECT_EQ(bf16_bits_to_float(float_to_bf16_bits(halfway)), 1.0f);
  float above = 1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20);
  EXPECT_EQ(bf16_bits_to_float(float_to_bf16_bits(above)), 1.0f + std::ldexp(1.0f, -7));
  EXPECT_TRUE(std::isnan(bf16_bits_to_float(float_to_bf16_bits(NAN))));
  EXPECT_TRUE(std::isinf(bf16_bits_to_float(float_to_bf16_bits(INFINITY))));
}

TEST(Tensor, Float16ConversionsMatchIeee) {
  EXPECT_EQ(f16_bits_to_float(float_to_f16_bits(1.0f)), 1.0f);
  EXPECT_EQ(float_to_f16_bits(65504.0f), 0x7bffu);                   // largest half
  EXPECT_EQ(float_to_f16_bits(65520.0f), 0x7c00u);                   // rounds to inf
  EXPECT_EQ(f16_bits_to_float(0x0001u), std::ldexp(1.0f, -24));      // smallest subnormal
  EXPECT_EQ(float_to_f16_bits(std::ldexp(1.0f, -25)), 0x0000u);       // halfway to 0: ties to even
  EXPECT_EQ(float_to_f16_bits(std::ldexp(3.0f, -26)), 0x0001u);       // 0.75 ulp rounds up
  EXPECT_EQ(float_to_f16_bits(-2.0f), 0xc000u);
  // Every half value survives half -> float -> half.
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu)) continue;  // NaNs
    ASSERT_EQ(float_to_f16_bits(f16_bits_to_float(static_cast<uint16_t>(h))), h) << h;
  }
}

TEST(Tensor, CastsBetweenAllDtypes) {
  std::vector<float> vals{0, 1, 2, 3, 100, 250};
  Tensor f = Tensor::from_vector(vals, {6});
  for (DType dt : {DType::F32, DType::F64, DType::BF16, DType::F16, DType::U8, DType::I32, DType::I64}) {
    Tensor back = f.to(dt).to(DType::F32);
    EXPECT_EQ(back.to_vector(), vals) << dtype_name(dt);
  }
  // uint8 saturates and rounds.
  Tensor u = Tensor::from_vector({-3.f, 2.5f, 3.5f, 300.f}, {4}).to(DType::U8);
  EXPECT_EQ(u.to_vector(), (std::vector<float>{0, 2, 4, 255}));
  Tensor i64 = Tensor::from_vector_f64({-5, 7}, {2}, DType::I64);
  EXPECT_EQ(i64.to(DType::I32).to_vector(), (std::vector<float>{-5, 7}));
}

TEST(Tensor, PhiloxIsReproducibleAndWellSpread) {
  Tensor a = Tensor::uniform({1000}, -1, 1, 42, 3);
  Tensor b = Tensor::uniform({1000}, -1, 1, 42, 3);
  Tensor c = Tensor::uniform({1000}, -1, 1, 42, 4);
  EXPECT_EQ(a.to_vector(), b.to_vector());
  EXPECT_NE(a.to_vector(), c.to_vector());
  Tensor n = Tensor::normal({100000}, 2.f, 3.f, 7);
  double m = 0, v = 0;
  for (float x : n.to_vector()) m += x;
  m /= 100000;
  for (float x : n.to_vector()) v += (x - m) * (x - m);
  v /= 100000;
  EXPECT_NEAR(m, 2.0, 0.05);
  EXPECT_NEAR(std::sqrt(v), 3.0, 0.05);
  for (float x : a.to_vector()) {
    EXPECT_GE(x, -1.f);
    EXPECT_LE(x, 1.f);
  }
  // Known-answer test: Philox4x32-10 of counter 0 / key 0 (Random123's published vector).
  Philox4 r = philox4x32_10(0, 0, 0);
  EXPECT_EQ(r.v[0], 0x6627e8d5u);
  EXPECT_EQ(r.v[1], 0xe169c58du);
  EXPECT_EQ(r.v[2], 0xbc57ac4cu);
  EXPECT_EQ(r.v[3], 0x9b00dbd8u);
}

TEST(Tensor, GeneratorAdvancesOffsets) {
  Generator g(5);
  EXPECT_EQ(g.next_offset(), 0u);
  EXPECT_EQ(g.next_offset(), 1u);
  g.manual_seed(9);
  EXPECT_EQ(g.seed(), 9u);
  EXPECT_EQ(g.offset(), 0u);
}

TEST(Tensor, PrintIsReadable) {
  Tensor t = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  std::string s = t.str();
  EXPECT_NE(s.find("[2, 2]"), std::string::npos);
  EXPECT_NE(s.find("float32"), std::string::npos);
  EXPECT_NE(s.find("[3, 4]"), std::string::npos);
  Tensor big = Tensor::zeros({100, 100});
  EXPECT_NE(big.str().find("more rows"), std::string::npos);
}

TEST(Tensor, PoisonFillsNewAllocations) {
  set_poison_allocations(true);
  Tensor t = Tensor::empty({4});
  set_poison_allocations(false);
  for (float v : t.to_vector()) EXPECT_TRUE(std::isnan(v));
}

TEST(Tensor, ErrorsNameShapesAndPlace) {
  try {
    Tensor::zeros({2, 3}).reshape({7});
    FAIL() << "no throw";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("[2, 3]"), std::string::npos) << m;
    EXPECT_NE(m.find("tensor.cpp"), std::string::npos) << m;
  }
  EXPECT_THROW(Device::parse("tpu"), Error);
  EXPECT_EQ(Device::parse("cuda:1").index, 1);
}

TEST(Tensor, CudaRoundSizeClasses) {
  EXPECT_EQ(cuda_memory::round_size(1), 512u);
  EXPECT_EQ(cuda_memory::round_size(513), 1024u);
  EXPECT_EQ(cuda_memory::round_size((1u << 20) + 1), 2u << 20);
  EXPECT_EQ(cuda_memory::round_size(5u << 20), 6u << 20);
}

// increment_: the on-device counter step (BatchNorm's num_batches_tracked), I64 and I32 only.
TEST(Tensor, IncrementAddsOneToIntegerCountersOnly) {
  Tensor c = Tensor::scalar(41, DType::I64);
  c.increment_();
  EXPECT_EQ(c.item(), 42.0);
  Tensor v = Tensor::from_vector({-1, 0, 1000}, {3}, DType::I32);
  v.increment_();
  EXPECT_EQ(v.to_vector_f64(), (std::vector<double>{0, 1, 1001}));
  Tensor big = Tensor::from_vector_f64({9007199254740992.0}, {1}, DType::I64);  // 2^53: + 1 is not a double
  big.increment_();
  EXPECT_EQ(static_cast<const int64_t*>(big.raw_data())[0], int64_t(9007199254740993));
  Tensor f = Tensor::zeros({2});
  EXPECT_THROW(f.increment_(), Error);
}
