// GPU-vs-CPU tests of every op of tensor/ops.h and autograd/functions.h (rung 2 of the verification ladder):
// each op runs through pneumo::test::compare_gpu_cpu in float32 and bfloat16, forward and backward, on odd
// shapes, n = 1 and n = 1e6 + 3. Tensor-level tests add misaligned views (slice(1, ...) of a bigger tensor,
// which defeats the kernels' 16-byte vector path), bitwise determinism of reductions, and exact agreement
// of casts, fills and Philox draws. Every test begins with PNEUMO_REQUIRE_CUDA(): skipped without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "kernels/check.h"
#include "support/checkers.h"
#include "tensor/ops.h"

namespace pneumo {
namespace {

using ag::Variable;
using test::compare_gpu_cpu;
using test::GpuCheckOptions;
using VarList = std::vector<Variable>;

const DType kDTypes[] = {DType::F32, DType::BF16};

Tensor rand_cpu(const Shape& shape, float lo, float hi) { return Tensor::uniform(shape, lo, hi, test::fresh_seed()); }

GpuCheckOptions opts(DType dt, bool backward = true) {
  GpuCheckOptions o;
  o.gpu_dtype = dt;
  o.backward = backward;
  return o;
}

// Shapes every elementwise op is tried on: odd 4-D, a single element, NHWC with 64 channels, and 1e6 + 3.
std::vector<Shape> elementwise_shapes() { return {{3, 5, 7, 13}, {1}, {2, 8, 8, 64}, {1000003}}; }

// ---- binary ops with every broadcast mode ----------------------------------------------------------
using BinaryFn = Variable (*)(const Variable&, const Variable&);
struct NamedBinary {
  const char* name;
  BinaryFn fn;
};
const NamedBinary kBinaries[] = {{"add", ag::add}, {"sub", ag::sub}, {"mul", ag::mul}, {"div", ag::div}};

TEST(OpsGpu, BinarySameShape) {
  PNEUMO_REQUIRE_CUDA();
  for (const auto& op : kBinaries)
    for (DType dt : kDTypes)
      for (const Shape& s : elementwise_shapes()) {
        SCOPED_TRACE(std::string(op.name) + " " + dtype_name(dt) + " " + shape_str(s));
        // Divisors stay away from zero so bf16 rounding of the input cannot blow the quotient up.
        compare_gpu_cpu([&](const VarList& v) { return op.fn(v[0], v[1]); }, {rand_cpu(s, -2, 2), rand_cpu(s, 0.5f, 2)},
                        opts(dt));
      }
}

TEST(OpsGpu, BinaryBroadcastScalarAndChannel) {
  PNEUMO_REQUIRE_CUDA();
  const std::vector<Shape> shapes = {{3, 5, 7, 13}, {2, 8, 8, 64}, {4, 3, 3, 6}};
  for (const auto& op : kBinaries)
    for (DType dt : kDTypes)
      for (const Shape& s : shapes) {
        SCOPED_TRACE(std::string(op.name) + " " + dtype_name(dt) + " " + shape_str(s));
        auto f = [&](const VarList& v) { return op.fn(v[0], v[1]); };
        compare_gpu_cpu(f, {rand_cpu(s, -2, 2), rand_cpu({s.back()}, 0.5f, 2)}, opts(dt));  // b per channel
        // Scalar operands: elementwise forward, then the gradients through a sum of positive terms. (With the
        // checker's random projection the scalar's gradient is a sum of n terms of mixed sign whose result
        // can be far smaller than its rounding error in bf16, which no fixed tolerance handles.)
        auto sum_f = [&](const VarList& v) { return ag::sum(op.fn(v[0], v[1])); };
        compare_gpu_cpu(f, {rand_cpu(s, -2, 2), rand_cpu({1}, 0.5f, 2)}, opts(dt, false));  // b scalar
        compare_gpu_cpu(f, {rand_cpu({1}, 0.5f, 2), rand_cpu(s, 0.5f, 2)}, opts(dt, false));  // a scalar
        compare_gpu_cpu(sum_f, {rand_cpu(s, 0.5f, 2), rand_cpu({1}, 0.5f, 2)}, opts(dt));
        compare_gpu_cpu(sum_f, {rand_cpu({1}, 0.5f, 2), rand_cpu(s, 0.5f, 2)}, opts(dt));
      }
}

TEST(OpsGpu, AffineAndScale) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes)
    for (const Shape& s : elementwise_shapes()) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(s));
      compare_gpu_cpu([](const VarList& v) { return ag::affine(v[0], -1.75, 0.3); }, {rand_cpu(s, -2, 2)}, opts(dt));
      compare_gpu_cpu([](const VarList& v) { return ag::scale(v[0], 0.125); }, {rand_cpu(s, -2, 2)}, opts(dt));
    }
}

// ---- unary ops ---------------------------------------------------------------------------------------
struct NamedUnary {
  ops::UnaryOp op;
  float lo, hi;  // input range: positive for log and sqrt
};
const NamedUnary kUnaries[] = {
    {ops::UnaryOp::Neg, -3, 3},     {ops::UnaryOp::Exp, -3, 3},     {ops::UnaryOp::Log, 0.1f, 4},
    {ops::UnaryOp::Sqrt, 0.1f, 4},  {ops::UnaryOp::Abs, -3, 3},     {ops::UnaryOp::Relu, -3, 3},
    {ops::UnaryOp::Sigmoid, -6, 6}, {ops::UnaryOp::Tanh, -3, 3},    {ops::UnaryOp::Swish, -6, 6},
};

// In 16-bit, sigmoid and tanh backward work from x in float32 (ops::unary_backward), so they need no wider
// tolerance than the other ops; the saturated range is checked on its own below.
TEST(OpsGpu, UnaryForwardAndBackward) {
  PNEUMO_REQUIRE_CUDA();
  for (const auto& u : kUnaries)
    for (DType dt : kDTypes)
      for (const Shape& s : elementwise_shapes()) {
        SCOPED_TRACE(std::string(ops::unary_name(u.op)) + " " + dtype_name(dt) + " " + shape_str(s));
        compare_gpu_cpu([&](const VarList& v) { return ag::unary(u.op, v[0]); }, {rand_cpu(s, u.lo, u.hi)},
                        opts(dt));
      }
}

// Saturated sigmoid/tanh in bf16: the gradient's relative error against the float64 formula at the same
// (bf16) inputs stays at bf16 rounding. Computed from a stored bf16 y it would not: near y = 1, 1 - y rounds
// to 0 or a multiple of 2^-8 (sigmoid(6): 0.00247 becomes 0.0039, 58% off).
TEST(OpsGpu, SaturatedSigmoidAndTanhGradientsInBFloat16) {
  PNEUMO_REQUIRE_CUDA();
  for (ops::UnaryOp op : {ops::UnaryOp::Sigmoid, ops::UnaryOp::Tanh}) {
    SCOPED_TRACE(ops::unary_name(op));
    const float lo = op == ops::UnaryOp::Sigmoid ? 3.f : 1.5f, hi = op == ops::UnaryOp::Sigmoid ? 8.f : 4.f;
    Tensor x = rand_cpu({4099}, lo, hi).to(DType::BF16);
    Variable xv(x.to(Device::cuda()), true);
    Variable y = ag::unary(op, xv);
    ag::sum(ag::cast(y, DType::F32)).backward();
    std::vector<double> xs = x.to_vector_f64(), g = xv.grad().cpu().to_vector_f64();
    double worst = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      const double ch = std::cosh(xs[i]);
      const double want = op == ops::UnaryOp::Sigmoid ? 1 / ((1 + std::exp(-xs[i])) * (1 + std::exp(xs[i]))) : 1 / (ch * ch);
      worst = std::max(worst, std::fabs(g[i] - want) / want);
    }
    EXPECT_LE(worst, 1e-2);
  }
}

TEST(OpsGpu, NamedUnaryWrappers) {
  PNEUMO_REQUIRE_CUDA();
  using Fn = Variable (*)(const Variable&);
  struct Named {
    Fn fn;
    ops::UnaryOp op;
  };
  const Named fns[] = {{ag::neg, ops::UnaryOp::Neg},         {ag::exp, ops::UnaryOp::Exp},   {ag::abs, ops::UnaryOp::Abs},
                       {ag::relu, ops::UnaryOp::Relu},       {ag::sigmoid, ops::UnaryOp::Sigmoid},
                       {ag::tanh, ops::UnaryOp::Tanh},       {ag::swish, ops::UnaryOp::Swish}};
  for (const Named& f : fns)
    for (DType dt : kDTypes)
      compare_gpu_cpu([&](const VarList& v) { return f.fn(v[0]); }, {rand_cpu({3, 5, 7, 13}, -2, 2)},
                      opts(dt));
  for (DType dt : kDTypes) {
    compare_gpu_cpu([](const VarList& v) { return ag::log(v[0]); }, {rand_cpu({3, 5, 7, 13}, 0.2f, 3)}, opts(dt));
    compare_gpu_cpu([](const VarList& v) { return ag::sqrt(v[0]); }, {rand_cpu({3, 5, 7, 13}, 0.2f, 3)}, opts(dt));
  }
}

// ---- reductions and their reverse broadcasts ---------------------------------------------------------
TEST(OpsGpu, SumAndMean) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes)
    for (const Shape& s : elementwise_shapes()) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(s));
      // Positive inputs: a sum of mixed signs cancels and makes relative tolerances meaningless in bf16.
      compare_gpu_cpu([](const VarList& v) { return ag::sum(v[0]); }, {rand_cpu(s, 0.1f, 1)}, opts(dt));
      compare_gpu_cpu([](const VarList& v) { return ag::mean(v[0]); }, {rand_cpu(s, -1, 1)}, opts(dt));
    }
}

TEST(OpsGpu, SumChannelsSumHwMeanHw) {
  PNEUMO_REQUIRE_CUDA();
  const std::vector<Shape> shapes = {{3, 5, 7, 13}, {1, 1, 1, 1}, {2, 8, 8, 64}, {2, 3, 3, 300}, {1, 31, 33, 8},
                                     {2, 64, 64, 64}};
  for (DType dt : kDTypes)
    for (const Shape& s : shapes) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(s));
      compare_gpu_cpu([](const VarList& v) { return ag::sum_channels(v[0]); }, {rand_cpu(s, 0.1f, 1)}, opts(dt));
      compare_gpu_cpu([](const VarList& v) { return ag::sum_hw(v[0]); }, {rand_cpu(s, 0.1f, 1)}, opts(dt));
      compare_gpu_cpu([](const VarList& v) { return ag::mean_hw(v[0]); }, {rand_cpu(s, -1, 1)}, opts(dt));
    }
}

TEST(OpsGpu, SumChannelsOfMatrices) {
  PNEUMO_REQUIRE_CUDA();
  // [rows, C] with C wide (more than one tile of 256 units), C = 1, and many rows of few channels.
  const std::vector<Shape> shapes = {{3, 5000}, {7, 2049}, {100003, 1}, {65536, 3}, {1, 1}};
  for (DType dt : kDTypes)
    for (const Shape& s : shapes) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(s));
      compare_gpu_cpu([](const VarList& v) { return ag::sum_channels(v[0]); }, {rand_cpu(s, 0.1f, 1)}, opts(dt));
    }
}

TEST(OpsGpu, ExpandOps) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes) {
    for (const Shape& s : {Shape{3, 5, 7, 13}, Shape{2, 8, 8, 64}}) {
      Tensor v = rand_cpu({s.back()}, -1, 1), nc = rand_cpu({s[0], s.back()}, -1, 1), sc = rand_cpu({1}, -1, 1);
      compare_gpu_cpu([&](const VarList& x) { return ag::Variable(ops::expand_channels(x[0].value(), s, 0.3)); }, {v},
                      opts(dt, false));
      compare_gpu_cpu([&](const VarList& x) { return ag::Variable(ops::expand_hw(x[0].value(), s, 1.0 / 3.0)); }, {nc},
                      opts(dt, false));
      compare_gpu_cpu([&](const VarList& x) { return ag::Variable(ops::expand_scalar(x[0].value(), s, -2.0)); }, {sc},
                      opts(dt, false));
    }
  }
}

// ---- matmul (cuBLAS) -------------------------------------------------------------------------------
TEST(OpsGpu, MatmulAllTransposes) {
  PNEUMO_REQUIRE_CUDA();
  struct Case {
    int64_t m, k, n;
  };
  const Case cases[] = {{37, 19, 23}, {1, 1, 1}, {1, 300, 7}, {256, 512, 128}, {129, 65, 257}};
  for (DType dt : kDTypes)
    for (const Case& c : cases)
      for (int t = 0; t < 4; ++t) {
        const bool ta = t & 1, tb = t & 2;
        SCOPED_TRACE(std::string(dtype_name(dt)) + " m" + std::to_string(c.m) + " k" + std::to_string(c.k) + " n" +
                     std::to_string(c.n) + (ta ? " A^T" : "") + (tb ? " B^T" : ""));
        Tensor a = rand_cpu(ta ? Shape{c.k, c.m} : Shape{c.m, c.k}, -1, 1);
        Tensor b = rand_cpu(tb ? Shape{c.n, c.k} : Shape{c.k, c.n}, -1, 1);
        GpuCheckOptions o = opts(dt);
        if (dt == DType::F32) o.tol = o.grad_tol = {2e-5, 2e-5};  // long dot products in a different order
        compare_gpu_cpu([&](const VarList& v) { return ag::matmul(v[0], v[1], ta, tb); }, {a, b}, o);
      }
}

// ---- layout ops ------------------------------------------------------------------------------------
TEST(OpsGpu, ConcatAndSplitChannels) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes) {
    // Odd channel counts give 2- and 6-byte rows (narrow copy paths); 16 and 32 give 16-byte rows.
    compare_gpu_cpu([](const VarList& v) { return ag::concat_channels({v[0], v[1], v[2]}); },
                    {rand_cpu({3, 5, 7, 3}, -1, 1), rand_cpu({3, 5, 7, 13}, -1, 1), rand_cpu({3, 5, 7, 1}, -1, 1)},
                    opts(dt));
    compare_gpu_cpu([](const VarList& v) { return ag::concat_channels({v[0], v[1]}); },
                    {rand_cpu({2, 16, 16, 16}, -1, 1), rand_cpu({2, 16, 16, 32}, -1, 1)}, opts(dt));
    compare_gpu_cpu(
        [](const VarList& v) {
          std::vector<Variable> parts = ag::split_channels(v[0], {3, 5, 9});
          return ag::concat_channels({ag::mul(parts[2], parts[2]), parts[0]});
        },
        {rand_cpu({3, 5, 7, 17}, -1, 1)}, opts(dt));
  }
}

TEST(OpsGpu, ReshapeAndCastInGraph) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes) {
    compare_gpu_cpu([](const VarList& v) { return ag::sum_channels(ag::reshape(ag::exp(v[0]), {-1, 13})); },
                    {rand_cpu({3, 5, 7, 13}, -1, 1)}, opts(dt));
    // A float32 island inside a bf16 graph (and a no-op cast in float32).
    compare_gpu_cpu(
        [](const VarList& v) {
          Variable product = ag::mul(ag::cast(v[0], DType::F32), ag::cast(v[1], DType::F32));
          return ag::tanh(ag::cast(product, v[0].dtype()));
        },
        {rand_cpu({4, 33}, -1, 1), rand_cpu({4, 33}, -1, 1)}, opts(dt));
  }
}

// ---- misaligned views (scalar paths) -----------------------------------------------------------------
// big[1:] of a [5, ...] tensor whose rows are not a multiple of 16 bytes: the data pointer is misaligned.
struct Views {
  Tensor cpu, gpu;
};
Views misaligned(const Shape& row_shape, DType dt, float lo, float hi) {
  Shape s = row_shape;
  s.insert(s.begin(), 5);
  Tensor big = rand_cpu(s, lo, hi).to(dt);  // the CPU reference sees the same (rounded) values as the GPU
  Views v;
  v.cpu = big.to(DType::F32).slice(1, 5);
  v.gpu = big.to(Device::cuda()).slice(1, 5);
  return v;
}

void expect_close_gpu(const Tensor& gpu, const Tensor& cpu, DType dt, const std::string& what) {
  cuda::synchronize();
  std::string m = test::close_message(gpu, cpu, test::tolerance_for(dt));
  EXPECT_TRUE(m.empty()) << what << " (" << dtype_name(dt) << "): " << m;
}

TEST(OpsGpu, MisalignedViewsTakeTheScalarPath) {
  PNEUMO_REQUIRE_CUDA();
  set_poison_allocations(true);
  const Shape row = {7, 13};  // 91 elements: 364 bytes (f32) or 182 bytes (bf16) per row
  for (DType dt : kDTypes) {
    Views a = misaligned(row, dt, 0.5f, 2), b = misaligned(row, dt, 0.5f, 2);
    ASSERT_NE(reinterpret_cast<uintptr_t>(a.gpu.raw_data()) % 16, 0u);
    for (int op = 0; op < 4; ++op)
      expect_close_gpu(ops::binary(ops::BinaryOp(op), a.gpu, b.gpu), ops::binary(ops::BinaryOp(op), a.cpu, b.cpu), dt,
                       std::string("binary ") + ops::binary_name(ops::BinaryOp(op)));
    Tensor ch_cpu = rand_cpu({13}, 0.5f, 2);
    expect_close_gpu(ops::mul(a.gpu, ch_cpu.to(Device::cuda(), dt)), ops::mul(a.cpu, ch_cpu), dt, "mul per channel");
    expect_close_gpu(ops::affine(a.gpu, 0.7, -0.2), ops::affine(a.cpu, 0.7, -0.2), dt, "affine");
    for (const auto& u : kUnaries) {
      Tensor yc = ops::unary(u.op, a.cpu), yg = ops::unary(u.op, a.gpu);
      expect_close_gpu(yg, yc, dt, std::string("unary ") + ops::unary_name(u.op));
      // The CPU backward gets the GPU's (rounded) y, so both sides see identical inputs.
      expect_close_gpu(ops::unary_backward(u.op, a.gpu, yg, b.gpu),
                       ops::unary_backward(u.op, a.cpu, yg.to(Device::cpu()).to(DType::F32), b.cpu), dt,
                       std::string("unary_backward ") + ops::unary_name(u.op));
    }
    expect_close_gpu(ops::sum(a.gpu), ops::sum(a.cpu), dt, "sum");
    expect_close_gpu(ops::sum_channels(a.gpu), ops::sum_channels(a.cpu), dt, "sum_channels");
    Views x4 = misaligned({3, 5, 13}, dt, 0.1f, 1);
    expect_close_gpu(ops::sum_hw(x4.gpu), ops::sum_hw(x4.cpu), dt, "sum_hw");
    // add_ into a misaligned view: compare against the CPU doing the same.
    Tensor acc_gpu = a.gpu, acc_cpu = a.cpu.clone();
    ops::add_(acc_gpu, b.gpu, -0.5);
    ops::add_(acc_cpu, b.cpu, -0.5);
    expect_close_gpu(acc_gpu, acc_cpu, dt, "add_");
    // fill_ of a misaligned view leaves the neighbours alone.
    Tensor whole = Tensor::zeros({5, 7, 13}, dt, Device::cuda());
    whole.slice(1, 4).fill_(1.5);
    std::vector<float> w = whole.to_vector();
    for (size_t i = 0; i < w.size(); ++i) ASSERT_EQ(w[i], (i >= 91 && i < 4 * 91) ? 1.5f : 0.0f) << "element " << i;
  }
  set_poison_allocations(false);
}

// ---- determinism ------------------------------------------------------------------------------------
std::vector<uint8_t> bytes_of(const Tensor& t) {
  Tensor c = t.cpu();
  const uint8_t* p = static_cast<const uint8_t*>(c.raw_data());
  return std::vector<uint8_t>(p, p + c.nbytes());
}

TEST(OpsGpu, ReductionsAreBitwiseDeterministic) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kDTypes) {
    Tensor x = rand_cpu({4, 256, 256, 64}, -1, 1).to(Device::cuda(), dt);
    Tensor flat = rand_cpu({1000003}, -1, 1).to(Device::cuda(), dt);
    const auto s1 = bytes_of(ops::sum(flat)), c1 = bytes_of(ops::sum_channels(x)), h1 = bytes_of(ops::sum_hw(x));
    for (int rep = 0; rep < 3; ++rep) {
      EXPECT_EQ(bytes_of(ops::sum(flat)), s1);
      EXPECT_EQ(bytes_of(ops::sum_channels(x)), c1);
      EXPECT_EQ(bytes_of(ops::sum_hw(x)), h1);
    }
    // And they agree with the CPU oracle on the large NHWC case.
    Tensor xc = x.to(Device::cpu()).to(DType::F32);
    expect_close_gpu(ops::sum_channels(x), ops::sum_channels(xc), dt, "sum_channels [4,256,256,64]");
    expect_close_gpu(ops::sum_hw(x), ops::sum_hw(xc), dt, "sum_hw [4,256,256,64]");
  }
}

// ---- casts, fills, random draws: exact agreement -------------------------------------------------------
const DType kCudaDTypes[] = {DType::F32, DType::BF16, DType::F16, DType::U8, DType::I32, DType::I64};

TEST(OpsGpu, CastRoundTripsForAllDTypePairs) {
  PNEUMO_REQUIRE_CUDA();
  // Integers 0..200 are exact in every dtype, so every round trip must return them unchanged.
  std::vector<float> ints(1001);
  for (size_t i = 0; i < ints.size(); ++i) ints[i] = static_cast<float>((i * 37) % 201);
  Tensor base = Tensor::from_vector(ints, {static_cast<int64_t>(ints.size())});
  for (DType a : kCudaDTypes)
    for (DType b : kCudaDTypes) {
      SCOPED_TRACE(std::string(dtype_name(a)) + " -> " + dtype_name(b));
      Tensor x = base.to(a).to(Device::cuda());
      Tensor y = x.to(b);
      ASSERT_EQ(y.dtype(), b);
      ASSERT_TRUE(y.is_cuda());
      EXPECT_EQ(y.to(a).to_vector(), x.to_vector());
      EXPECT_EQ(bytes_of(y), bytes_of(base.to(a).to(b)));  // and bit-identical to the CPU cast
    }
}

TEST(OpsGpu, CastsOfFractionsMatchTheCpuBitForBit) {
  PNEUMO_REQUIRE_CUDA();
  // Random values, halves (round-to-even ties for U8), bf16/f16 tie cases, f16 subnormals and overflow.
  std::vector<float> v = {0.5f, 1.5f, 2.5f, -0.5f, 254.5f, 255.5f, 300.f, -7.9f, 7.9f, 1e-6f, 6e-5f, 6e4f,
                          1.0f + 1.0f / 256.0f, 1.0f + 3.0f / 256.0f, 1.0f + 1.0f / 2048.0f, -3.25f, 0.0f, -0.0f};
  std::vector<float> r = rand_cpu({4099}, -100, 100).to_vector();
  v.insert(v.end(), r.begin(), r.end());
  Tensor x = Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
  for (DType src : {DType::F32, DType::BF16, DType::F16})
    for (DType dst : kCudaDTypes) {
      SCOPED_TRACE(std::string(dtype_name(src)) + " -> " + dtype_name(dst));
      Tensor xs = x.to(src);
      EXPECT_EQ(bytes_of(xs.to(Device::cuda()).to(dst)), bytes_of(xs.to(dst)));
      // A view starting one element in: misaligned, so the scalar path.
      const int64_t len = xs.numel();
      EXPECT_EQ(bytes_of(xs.to(Device::cuda()).slice(1, len).to(dst)), bytes_of(xs.slice(1, len).to(dst)));
    }
}

TEST(OpsGpu, HalfOverflowAndNonFiniteCastsMatchTheCpu) {
  PNEUMO_REQUIRE_CUDA();
  const float inf = INFINITY;
  Tensor x = Tensor::from_vector({7e4f, -7e4f, 65504.f, 65519.f, 65520.f, inf, -inf, 3e38f, 1e-8f, -1e-8f}, {10});
  for (DType dst : {DType::BF16, DType::F16})
    EXPECT_EQ(bytes_of(x.to(Device::cuda()).to(dst)), bytes_of(x.to(dst))) << dtype_name(dst);
}

TEST(OpsGpu, F64OnCudaIsAClearError) {
  PNEUMO_REQUIRE_CUDA();
  Tensor x = Tensor::zeros({3}, DType::F32, Device::cuda());
  try {
    x.to(DType::F64);
    ADD_FAILURE() << "F64 cast on CUDA did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("CPU"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Tensor::zeros({3}, DType::F64, Device::cuda()), Error);
}

TEST(OpsGpu, FillMatchesTheCpuForEveryDType) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : kCudaDTypes)
    for (double value : {0.0, 1.5, -7.0, 3.6, 255.7, 1e-3}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + std::to_string(value));
      for (int64_t n : {int64_t(1), int64_t(17), int64_t(100003)})
        EXPECT_EQ(bytes_of(Tensor::full({n}, value, dt, Device::cuda())), bytes_of(Tensor::full({n}, value, dt)));
    }
}

TEST(OpsGpu, IncrementMatchesTheCpu) {
  PNEUMO_REQUIRE_CUDA();
  for (DType dt : {DType::I64, DType::I32})
    for (int64_t n : {int64_t(1), int64_t(100003)}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + std::to_string(n));
      Tensor cpu = Tensor::uniform({n}, -1000, 1000, 3).to(dt), gpu = cpu.to(Device::cuda());
      cpu.increment_().increment_();
      gpu.increment_().increment_();
      EXPECT_EQ(bytes_of(gpu), bytes_of(cpu));
    }
  EXPECT_THROW(Tensor::zeros({3}, DType::F32, Device::cuda()).increment_(), Error);
}

TEST(OpsGpu, PhiloxDrawsMatchTheCpu) {
  PNEUMO_REQUIRE_CUDA();
  for (uint64_t seed : {uint64_t(0), uint64_t(1992), uint64_t(0x123456789abcdefULL)})
    for (uint64_t offset : {uint64_t(0), uint64_t(7), uint64_t(1) << 40})
      for (int64_t n : {int64_t(1), int64_t(1000003)}) {
        SCOPED_TRACE("seed " + std::to_string(seed) + " offset " + std::to_string(offset) + " n " + std::to_string(n));
        // Uniform: bit-identical in f32 and bf16.
        for (DType dt : {DType::F32, DType::BF16})
          EXPECT_EQ(bytes_of(Tensor::uniform({n}, -0.3f, 2.5f, seed, offset, dt, Device::cuda())),
                    bytes_of(Tensor::uniform({n}, -0.3f, 2.5f, seed, offset, dt)));
        // Normal: log/cos in double on both sides; equal to 1e-6.
        std::vector<float> g = Tensor::normal({n}, 0.5f, 2.0f, seed, offset, DType::F32, Device::cuda()).to_vector();
        std::vector<float> c = Tensor::normal({n}, 0.5f, 2.0f, seed, offset, DType::F32).to_vector();
        ASSERT_EQ(g.size(), c.size());
        size_t bad = 0;
        for (size_t i = 0; i < g.size(); ++i)
          if (!(std::fabs(g[i] - c[i]) <= 1e-6 * std::max(1.0f, std::fabs(c[i])))) ++bad;
        EXPECT_EQ(bad, 0u) << "normal draws differ beyond 1e-6";
      }
}

TEST(OpsGpu, Float16Ops) {
  PNEUMO_REQUIRE_CUDA();
  const Shape s = {3, 5, 7, 13};
  for (const auto& op : kBinaries)
    compare_gpu_cpu([&](const VarList& v) { return op.fn(v[0], v[1]); }, {rand_cpu(s, -2, 2), rand_cpu({13}, 0.5f, 2)},
                    opts(DType::F16));
  for (const auto& u : kUnaries)
    compare_gpu_cpu([&](const VarList& v) { return ag::unary(u.op, v[0]); }, {rand_cpu(s, u.lo, u.hi)},
                    opts(DType::F16));
  compare_gpu_cpu([](const VarList& v) { return ag::sum_hw(v[0]); }, {rand_cpu(s, 0.1f, 1)}, opts(DType::F16));
  compare_gpu_cpu([](const VarList& v) { return ag::matmul(v[0], v[1], false, true); },
                  {rand_cpu({37, 19}, -1, 1), rand_cpu({23, 19}, -1, 1)}, opts(DType::F16));
}

TEST(OpsGpu, EmptyTensorsAreFine) {
  PNEUMO_REQUIRE_CUDA();
  Tensor e = Tensor::zeros({0, 4}, DType::F32, Device::cuda());
  EXPECT_EQ(ops::add(e, e).numel(), 0);
  EXPECT_EQ(ops::unary(ops::UnaryOp::Exp, e).numel(), 0);
  EXPECT_EQ(ops::sum(e).item(), 0.0);
  std::vector<float> sc = ops::sum_channels(e).to_vector();
  EXPECT_EQ(sc, std::vector<float>(4, 0.0f));
}

}  // namespace
}  // namespace pneumo
