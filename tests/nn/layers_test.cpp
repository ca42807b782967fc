// The other layers on the CPU: max pool (ceil_mode, padding), global average pool, Linear, Dropout and
// drop-connect (Philox masks, recomputed in backward), nearest x2 and bilinear resizing (align_corners both
// ways, up and down), concat, activations, initialisers, module names. Forward against formulas written here,
// gradients by float64 finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/check.h"
#include "nn/functional.h"
#include "nn/init.h"
#include "nn/layers.h"
#include "support/checkers.h"
#include "tensor/layer_ops.h"

namespace pneumo {
namespace {

using ag::Variable;
namespace F = nn::F;

const test::Tolerance kF32 = test::tolerance_for(DType::F32);

// ---- max pool ----
Tensor naive_max_pool(const Tensor& x, int64_t k, int64_t s, int64_t p, int64_t oh, int64_t ow) {
  const Shape xs = x.shape();
  const std::vector<double> v = x.to_vector_f64();
  std::vector<double> y;
  for (int64_t n = 0; n < xs[0]; ++n)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j)
        for (int64_t c = 0; c < xs[3]; ++c) {
          double best = -std::numeric_limits<double>::infinity();
          for (int64_t a = i * s - p; a < i * s - p + k; ++a)
            for (int64_t b = j * s - p; b < j * s - p + k; ++b)
              if (a >= 0 && a < xs[1] && b >= 0 && b < xs[2]) best = std::max(best, v[((n * xs[1] + a) * xs[2] + b) * xs[3] + c]);
          y.push_back(best);
        }
  return Tensor::from_vector_f64(y, {xs[0], oh, ow, xs[3]});
}

TEST(MaxPool, OutputSizesFollowPyTorchCeilMode) {
  // (size, kernel, stride, pad, ceil) -> out; PyTorch's values (torch.nn.MaxPool2d on those sizes).
  struct Row { int64_t in, k, s, p; bool ceil; int64_t out; };
  for (const Row& r : {Row{10, 3, 2, 0, true, 5}, Row{10, 3, 2, 0, false, 4}, Row{11, 3, 2, 0, true, 5},
                       Row{112, 3, 2, 0, true, 56}, Row{128, 3, 2, 0, true, 64}, Row{6, 3, 2, 1, true, 4},
                       Row{5, 2, 2, 1, true, 3}, Row{256, 3, 2, 1, false, 128}}) {
    EXPECT_EQ(F::max_pool2d_output_shape({1, r.in, r.in, 1}, r.k, r.s, r.p, r.ceil)[1], r.out)
        << r.in << " k" << r.k << " s" << r.s << " p" << r.p << " ceil " << r.ceil;
  }
  EXPECT_THROW(F::max_pool2d_output_shape({1, 8, 8, 1}, 3, 2, 2, false), Error);  // pad > kernel / 2
}

TEST(MaxPool, ForwardMatchesFormulaAndGradcheck) {
  struct Case { int64_t h, w, k, s, p; bool ceil; };
  for (const Case& c : {Case{10, 10, 3, 2, 0, true}, Case{11, 9, 3, 2, 0, true}, Case{9, 8, 3, 2, 1, false},
                        Case{7, 7, 2, 2, 0, false}, Case{6, 7, 3, 1, 1, true}}) {
    SCOPED_TRACE(::testing::Message() << c.h << "x" << c.w << " k" << c.k << " s" << c.s << " p" << c.p);
    Tensor x = Tensor::normal({2, c.h, c.w, 3}, 0, 1, 17);
    Variable y = F::max_pool2d(Variable(x), c.k, c.s, c.p, c.ceil);
    PNEUMO_EXPECT_CLOSE(y.value(), naive_max_pool(x, c.k, c.s, c.p, y.shape()[1], y.shape()[2]), kF32);
    // Distinct values (a permutation scaled by 0.01) keep finite differences away from ties.
    const int64_t n = c.h * c.w * 2;
    std::vector<double> perm(n);
    for (int64_t i = 0; i < n; ++i) perm[i] = 0.01 * static_cast<double>((i * 7919) % n);
    test::expect_gradcheck([c](const std::vector<Variable>& v) { return F::max_pool2d(v[0], c.k, c.s, c.p, c.ceil); },
                           {Tensor::from_vector_f64(perm, {1, c.h, c.w, 2})});
  }
}

TEST(MaxPool, GradientGoesToTheFirstMaximum) {
  Variable x(Tensor::from_vector({1, 5, 5, 1, 0, 0, 0, 0, 0}, {1, 3, 3, 1}), true);
  Variable y = F::max_pool2d(x, 2, 1, 0, false);  // windows share the tied 5s
  y.backward(Tensor::full(y.shape(), 1.0));
  EXPECT_EQ(x.grad().to_vector(), std::vector<float>({0, 2, 0, 1, 1, 0, 0, 0, 0}));
  nn::MaxPool2d m(3, 2, 0, true);
  EXPECT_EQ(m.type_name(), "MaxPool2d");
  EXPECT_EQ(m.forward(Variable(Tensor::zeros({1, 112, 112, 2}))).shape(), Shape({1, 56, 56, 2}));
}

// ---- pooling / linear ----
TEST(GlobalAvgPool, MeanOverSpaceAndGradcheck) {
  Tensor x = Tensor::normal({2, 3, 5, 4}, 0, 1, 5);
  Variable y = F::global_avg_pool(Variable(x));
  ASSERT_EQ(y.shape(), Shape({2, 1, 1, 4}));
  const std::vector<double> v = x.to_vector_f64();
  std::vector<double> ref(8, 0);
  for (int64_t i = 0; i < x.numel(); ++i) ref[(i / 60) * 4 + i % 4] += v[i] / 15;
  PNEUMO_EXPECT_CLOSE(y.value(), Tensor::from_vector_f64(ref, {2, 1, 1, 4}), kF32);
  test::expect_gradcheck([](const std::vector<Variable>& v) { return F::global_avg_pool(v[0]); },
                         {Tensor::normal({2, 3, 5, 4}, 0, 1, 6, 0, DType::F64)});
  EXPECT_EQ(nn::GlobalAvgPool().type_name(), "AdaptiveAvgPool2d");
}

TEST(Linear, FormulaBothInputShapesAndGradcheck) {
  Generator gen(9);
  nn::Linear lin(6, 3, true, &gen);
  EXPECT_EQ(lin.type_name(), "Linear");
  EXPECT_EQ(lin.weight().shape(), Shape({3, 6}));
  const double bound = 1.0 / std::sqrt(6.0);
  for (double v : lin.weight().value().to_vector_f64()) EXPECT_LE(std::fabs(v), bound);
  for (double v : lin.bias().value().to_vector_f64()) EXPECT_LE(std::fabs(v), bound);
  Tensor x = Tensor::normal({4, 1, 1, 6}, 0, 1, 3);
  const std::vector<double> xv = x.to_vector_f64(), wv = lin.weight().value().to_vector_f64(),
                            bv = lin.bias().value().to_vector_f64();
  std::vector<double> ref(12);
  for (int n = 0; n < 4; ++n)
    for (int o = 0; o < 3; ++o) {
      ref[n * 3 + o] = bv[o];
      for (int i = 0; i < 6; ++i) ref[n * 3 + o] += xv[n * 6 + i] * wv[o * 6 + i];
    }
  PNEUMO_EXPECT_CLOSE(lin.forward(Variable(x)).value(), Tensor::from_vector_f64(ref, {4, 3}), kF32);
  PNEUMO_EXPECT_CLOSE(lin.forward(Variable(x.reshape({4, 6}))).value(), Tensor::from_vector_f64(ref, {4, 3}), kF32);
  test::expect_gradcheck([](const std::vector<Variable>& v) { return F::linear(v[0], v[1], v[2]); },
                         {Tensor::normal({3, 1, 1, 5}, 0, 1, 1, 0, DType::F64), Tensor::normal({2, 5}, 0, 1, 2, 0, DType::F64),
                          Tensor::normal({2}, 0, 1, 3, 0, DType::F64)});
  EXPECT_THROW(lin.forward(Variable(Tensor::zeros({4, 2, 2, 6}))), Error);
  EXPECT_THROW(lin.forward(Variable(Tensor::zeros({4, 5}))), Error);
}

// ---- dropout / drop-connect ----
TEST(Dropout, KeepsAboutOneMinusPScaledAndIsReproducible) {
  Tensor x = Tensor::full({100000}, 2.0);
  Generator gen(77);
  Variable y = F::dropout(Variable(x), 0.3, true, gen);
  int64_t kept = 0;
  for (float v : y.value().to_vector()) {
    ASSERT_TRUE(v == 0.f || std::fabs(v - 2.0f / 0.7f) < 1e-6f) << v;
    kept += v != 0.f;
  }
  EXPECT_NEAR(kept / 100000.0, 0.7, 0.006);  // 4 standard deviations of a binomial
  Generator again(77);
  EXPECT_EQ(F::dropout(Variable(x), 0.3, true, again).value().to_vector(), y.value().to_vector());
  EXPECT_NE(F::dropout(Variable(x), 0.3, true, gen).value().to_vector(), y.value().to_vector());  // offset advanced
  // Evaluation and p == 0: the input itself.
  Variable xv(x);
  EXPECT_TRUE(F::dropout(xv, 0.3, false, gen).value().shares_storage(x));
  EXPECT_TRUE(F::dropout(xv, 0.0, true, gen).value().shares_storage(x));
  EXPECT_THROW(F::dropout(xv, 1.0, true, gen), Error);
}

TEST(Dropout, BackwardUsesTheForwardMask) {
  Tensor x = Tensor::normal({3, 4, 5, 6}, 0, 1, 4, 0, DType::F64);
  Generator gen(5);
  Variable xv(x, true);
  Variable y = F::dropout(xv, 0.5, true, gen);
  Tensor g = Tensor::normal(x.shape(), 0, 1, 6, 0, DType::F64);
  y.backward(g);
  const std::vector<double> yv = y.value().to_vector_f64(), xs = x.to_vector_f64(), gv = g.to_vector_f64(),
                            dx = xv.grad().to_vector_f64();
  for (size_t i = 0; i < yv.size(); ++i) EXPECT_DOUBLE_EQ(dx[i], yv[i] == 0 ? 0.0 : gv[i] * 2.0) << i;
  // Gradient check with a fresh generator per call, so each evaluation draws the same mask.
  test::expect_gradcheck([](const std::vector<Variable>& v) {
    Generator fixed(11);
    return F::dropout(v[0], 0.4, true, fixed);
  }, {x});
  nn::Dropout module(0.5, &gen);
  EXPECT_EQ(module.type_name(), "Dropout");
  module.eval();
  EXPECT_EQ(module.forward(Variable(x)).value().to_vector_f64(), x.to_vector_f64());
}

TEST(DropConnect, DropsWholeSamples) {
  Tensor x = Tensor::full({4000, 2, 2, 3}, 1.0);
  Generator gen(8);
  Variable y = F::drop_connect(Variable(x), 0.2, true, gen);
  const std::vector<float> v = y.value().to_vector();
  int64_t kept = 0;
  for (int64_t n = 0; n < 4000; ++n) {
    const float first = v[n * 12];
    ASSERT_TRUE(first == 0.f || std::fabs(first - 1.25f) < 1e-6f);
    for (int64_t i = 1; i < 12; ++i) ASSERT_EQ(v[n * 12 + i], first) << "sample " << n;
    kept += first != 0.f;
  }
  EXPECT_NEAR(kept / 4000.0, 0.8, 0.026);  // 4 standard deviations
  test::expect_gradcheck([](const std::vector<Variable>& v) {
    Generator fixed(3);
    return F::drop_connect(v[0], 0.5, true, fixed);
  }, {Tensor::normal({6, 2, 3, 2}, 0, 1, 9, 0, DType::F64)});
  EXPECT_TRUE(F::drop_connect(Variable(x), 0.2, false, gen).value().shares_storage(x));
}

// ---- resizing ----
TEST(UpsampleNearest2x, FormulaAndGradcheck) {
  Tensor x = Tensor::normal({2, 3, 4, 5}, 0, 1, 2);
  Variable y = F::upsample_nearest2x(Variable(x));
  ASSERT_EQ(y.shape(), Shape({2, 6, 8, 5}));
  const std::vector<double> xv = x.to_vector_f64(), yv = y.value().to_vector_f64();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < 6; ++i)
      for (int64_t j = 0; j < 8; ++j)
        for (int64_t c = 0; c < 5; ++c)
          ASSERT_EQ(yv[((n * 6 + i) * 8 + j) * 5 + c], xv[((n * 3 + i / 2) * 4 + j / 2) * 5 + c]);
  test::expect_gradcheck([](const std::vector<Variable>& v) { return F::upsample_nearest2x(v[0]); },
                         {Tensor::normal({1, 3, 2, 2}, 0, 1, 3, 0, DType::F64)});
  EXPECT_EQ(nn::Upsample2x().type_name(), "Upsample");
}

// PyTorch's upsample_bilinear2d, written out per element.
Tensor naive_bilinear(const Tensor& x, int64_t oh, int64_t ow, bool align) {
  const Shape s = x.shape();
  const std::vector<double> v = x.to_vector_f64();
  auto source = [&](int64_t o, int64_t in, int64_t out, int64_t& i0, int64_t& i1, double& l1) {
    double src;
    if (align)
      src = out > 1 ? o * double(in - 1) / double(out - 1) : 0.0;
    else
      src = std::max(0.0, (o + 0.5) * double(in) / double(out) - 0.5);
    i0 = std::min<int64_t>(int64_t(std::floor(src)), in - 1);
    i1 = i0 + (i0 < in - 1 ? 1 : 0);
    l1 = src - i0;
  };
  std::vector<double> y;
  for (int64_t n = 0; n < s[0]; ++n)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j)
        for (int64_t c = 0; c < s[3]; ++c) {
          int64_t y0, y1, x0, x1;
          double ly, lx;
          source(i, s[1], oh, y0, y1, ly);
          source(j, s[2], ow, x0, x1, lx);
          auto at = [&](int64_t a, int64_t b) { return v[((n * s[1] + a) * s[2] + b) * s[3] + c]; };
          y.push_back((1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1)));
        }
  return Tensor::from_vector_f64(y, {s[0], oh, ow, s[3]});
}

TEST(ResizeBilinear, FormulaBothAlignModesUpAndDown) {
  struct Case { int64_t h, w, oh, ow; };
  for (bool align : {true, false})
    for (const Case& c : {Case{5, 7, 13, 16}, Case{13, 16, 5, 7}, Case{4, 4, 8, 8}, Case{6, 6, 6, 6}, Case{3, 5, 1, 1},
                          Case{1, 1, 4, 3}, Case{96, 96, 256, 256}}) {
      SCOPED_TRACE(::testing::Message() << c.h << "x" << c.w << " -> " << c.oh << "x" << c.ow << " align " << align);
      Tensor x = Tensor::normal({2, c.h, c.w, 3}, 0, 1, 21);
      PNEUMO_EXPECT_CLOSE(F::resize_bilinear(Variable(x), c.oh, c.ow, align).value(), naive_bilinear(x, c.oh, c.ow, align),
                          kF32);
    }
  // Same size without align_corners is the identity.
  Tensor x = Tensor::normal({1, 5, 6, 2}, 0, 1, 2);
  EXPECT_EQ(F::resize_bilinear(Variable(x), 5, 6, false).value().to_vector(), x.to_vector());
}

TEST(ResizeBilinear, Gradcheck) {
  for (bool align : {true, false}) {
    SCOPED_TRACE(align);
    test::expect_gradcheck([align](const std::vector<Variable>& v) { return F::resize_bilinear(v[0], 7, 9, align); },
                           {Tensor::normal({2, 3, 4, 2}, 0, 1, 1, 0, DType::F64)});
    test::expect_gradcheck([align](const std::vector<Variable>& v) { return F::resize_bilinear(v[0], 3, 2, align); },
                           {Tensor::normal({1, 7, 5, 2}, 0, 1, 2, 0, DType::F64)});
  }
}

// ---- concat / activations ----
TEST(Concat, JoinsChannelsAndGradcheck) {
  Tensor a = Tensor::normal({2, 3, 3, 2}, 0, 1, 1), b = Tensor::normal({2, 3, 3, 3}, 0, 1, 2);
  Variable y = F::concat({Variable(a), Variable(b)});
  ASSERT_EQ(y.shape(), Shape({2, 3, 3, 5}));
  const std::vector<float> yv = y.value().to_vector(), av = a.to_vector(), bv = b.to_vector();
  for (int64_t p = 0; p < 18; ++p) {
    for (int c = 0; c < 2; ++c) ASSERT_EQ(yv[p * 5 + c], av[p * 2 + c]);
    for (int c = 0; c < 3; ++c) ASSERT_EQ(yv[p * 5 + 2 + c], bv[p * 3 + c]);
  }
  test::expect_gradcheck([](const std::vector<Variable>& v) { return F::concat({v[0], v[1]}); },
                         {Tensor::normal({1, 2, 2, 2}, 0, 1, 3, 0, DType::F64), Tensor::normal({1, 2, 2, 1}, 0, 1, 4, 0, DType::F64)});
}

TEST(Activations, ModulesFollowFormulas) {
  Tensor x = Tensor::normal({2, 3, 3, 4}, 0, 2, 5);
  const std::vector<double> xv = x.to_vector_f64();
  std::vector<double> relu, sig, swish;
  for (double v : xv) {
    relu.push_back(std::max(v, 0.0));
    sig.push_back(1 / (1 + std::exp(-v)));
    swish.push_back(v / (1 + std::exp(-v)));
  }
  nn::ReLU r;
  nn::Sigmoid s;
  nn::Swish w;
  EXPECT_EQ(r.type_name(), "ReLU");
  EXPECT_EQ(s.type_name(), "Sigmoid");
  EXPECT_EQ(w.type_name(), "MemoryEfficientSwish");
  PNEUMO_EXPECT_CLOSE(r.forward(Variable(x)).value(), Tensor::from_vector_f64(relu, x.shape()), kF32);
  PNEUMO_EXPECT_CLOSE(s.forward(Variable(x)).value(), Tensor::from_vector_f64(sig, x.shape()), kF32);
  PNEUMO_EXPECT_CLOSE(w.forward(Variable(x)).value(), Tensor::from_vector_f64(swish, x.shape()), kF32);
  test::expect_gradcheck([](const std::vector<Variable>& v) { return F::swish(v[0]); },
                         {Tensor::normal({2, 2, 2, 3}, 0, 2, 6, 0, DType::F64)});
  test::expect_gradcheck([](const std::vector<Variable>& v) { return F::relu(v[0]); },
                         {ag::random_away_from({2, 2, 2, 3}, -2, 2, {0.0}, 1e-3, 7)});
  test::expect_gradcheck([](const std::vector<Variable>& v) { return F::sigmoid(v[0]); },
                         {Tensor::normal({2, 2, 2, 3}, 0, 2, 8, 0, DType::F64)});
}

// ---- padding helpers (the CUDA path of asymmetric convolution) ----
TEST(PadCrop, PadWritesZerosAndCropInvertsIt) {
  Tensor x = Tensor::normal({2, 3, 4, 5}, 0, 1, 3);
  Tensor p = layer_ops::pad_hw(x, 1, 2, 0, 3);
  ASSERT_EQ(p.shape(), Shape({2, 6, 7, 5}));
  const std::vector<float> pv = p.to_vector(), xv = x.to_vector();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < 6; ++i)
      for (int64_t j = 0; j < 7; ++j)
        for (int64_t c = 0; c < 5; ++c) {
          const bool inside = i >= 1 && i < 4 && j < 4;
          const float want = inside ? xv[((n * 3 + i - 1) * 4 + j) * 5 + c] : 0.f;
          ASSERT_EQ(pv[((n * 6 + i) * 7 + j) * 5 + c], want);
        }
  EXPECT_EQ(layer_ops::crop_hw(p, 1, 2, 0, 3).to_vector(), xv);
  EXPECT_THROW(layer_ops::crop_hw(x, 2, 1, 0, 0), Error);
}

// ---- initialisers ----
TEST(Init, FansAndKaimingNormalFanOut) {
  EXPECT_EQ(nn::init::compute_fans({64, 3, 3, 32}).fan_in, 3 * 3 * 32);
  EXPECT_EQ(nn::init::compute_fans({64, 3, 3, 32}).fan_out, 64 * 3 * 3);
  EXPECT_EQ(nn::init::compute_fans({10, 20}).fan_in, 20);
  EXPECT_EQ(nn::init::compute_fans({10, 20}).fan_out, 10);
  EXPECT_THROW(nn::init::compute_fans({10}), Error);
  Generator gen(1);
  Tensor w = Tensor::empty({64, 3, 3, 16});
  nn::init::kaiming_normal_fan_out(w, gen);
  double mean = 0, sq = 0;
  const std::vector<double> v = w.to_vector_f64();
  for (double e : v) {
    mean += e / v.size();
    sq += e * e / v.size();
  }
  const double expected = std::sqrt(2.0 / (64 * 9));
  EXPECT_NEAR(std::sqrt(sq - mean * mean), expected, 0.03 * expected);
  EXPECT_NEAR(mean, 0.0, 0.05 * expected);
  Tensor w2 = Tensor::empty({64, 3, 3, 16});
  Generator gen2(1);
  nn::init::kaiming_normal_fan_out(w2, gen2);
  EXPECT_EQ(w2.to_vector(), w.to_vector());  // reproducible from the seed
  Tensor bw = Tensor::empty({5}), bb = Tensor::empty({5});
  nn::init::batch_norm_default_(bw, bb);
  EXPECT_EQ(bw.to_vector(), std::vector<float>(5, 1.f));
  EXPECT_EQ(bb.to_vector(), std::vector<float>(5, 0.f));
}

}  // namespace
}  // namespace pneumo
