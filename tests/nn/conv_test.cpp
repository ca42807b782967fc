// Conv2d on the CPU: forward against a naive 7-loop formula (float64, written here independently of the
// kernels), float64 gradient checks for every geometry the networks use (stride, dilation, groups,
// depthwise, TF "same" asymmetric padding, 1x1 fast path), the real grouped/depthwise shapes of
// SE-ResNeXt50 and EfficientNet-B3, the Conv2d module (names, shapes, PyTorch default init) and errors.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/check.h"
#include "kernels/math_mode.h"
#include "nn/functional.h"
#include "nn/init.h"
#include "nn/layers.h"
#include "support/checkers.h"
#include "tensor/layer_ops.h"
#include "tensor/ops.h"

namespace pneumo {
namespace {

using ag::Variable;
namespace F = nn::F;

// y[n, oh, ow, k] = b[k] + sum_{r, s, c in group} x[n, oh*sh - pt + r*dh, ow*sw - pl + s*dw, c] * w[k, r, s, c'].
Tensor naive_conv(const Tensor& x, const Tensor& w, const Tensor& b, const F::Conv2dGeometry& g) {
  const Shape xs = x.shape(), ws = w.shape();
  const int64_t N = xs[0], H = xs[1], W = xs[2], C = xs[3], K = ws[0], R = ws[1], S = ws[2], Cg = ws[3];
  const int64_t OH = (H + g.pad_top + g.pad_bottom - (R - 1) * g.dilation_h - 1) / g.stride_h + 1;
  const int64_t OW = (W + g.pad_left + g.pad_right - (S - 1) * g.dilation_w - 1) / g.stride_w + 1;
  const int64_t Kg = K / g.groups;
  const std::vector<double> xv = x.to_vector_f64(), wv = w.to_vector_f64();
  const std::vector<double> bv = b.defined() ? b.to_vector_f64() : std::vector<double>(K, 0.0);
  std::vector<double> y(N * OH * OW * K);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow)
        for (int64_t k = 0; k < K; ++k) {
          double acc = bv[k];
          const int64_t group = k / Kg;
          for (int64_t r = 0; r < R; ++r)
            for (int64_t s = 0; s < S; ++s)
              for (int64_t c = 0; c < Cg; ++c) {
                const int64_t ih = oh * g.stride_h - g.pad_top + r * g.dilation_h;
                const int64_t iw = ow * g.stride_w - g.pad_left + s * g.dilation_w;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += xv[((n * H + ih) * W + iw) * C + group * Cg + c] * wv[((k * R + r) * S + s) * Cg + c];
              }
          y[((n * OH + oh) * OW + ow) * K + k] = acc;
        }
  return Tensor::from_vector_f64(y, {N, OH, OW, K});
}

struct ConvCase {
  const char* name;
  int64_t n, h, w, c, k, kernel;
  F::Conv2dGeometry g;
  bool bias;
};

F::Conv2dGeometry geom(int64_t stride, int64_t pad, int64_t dilation = 1, int64_t groups = 1) {
  return F::conv_geometry(stride, pad, dilation, groups);
}
F::Conv2dGeometry asym(int64_t stride, int64_t t, int64_t b, int64_t l, int64_t r, int64_t groups) {
  F::Conv2dGeometry g = F::conv_geometry(stride, 0, 1, groups);
  g.pad_top = t;
  g.pad_bottom = b;
  g.pad_left = l;
  g.pad_right = r;
  return g;
}

// Small cases for gradient checks: every code path of the CPU kernel (GEMM, 1x1 fast path, depthwise).
const ConvCase kSmallCases[] = {
    {"3x3_pad1_bias", 2, 5, 6, 3, 4, 3, geom(1, 1), true},
    {"3x3_stride2_odd", 1, 7, 6, 3, 2, 3, geom(2, 1), false},
    {"3x3_dilation2", 1, 7, 7, 2, 3, 3, geom(1, 2, 2), true},
    {"grouped_g2", 2, 5, 5, 4, 6, 3, geom(1, 1, 1, 2), false},
    {"grouped_g4_stride2", 1, 6, 7, 8, 8, 3, geom(2, 1, 1, 4), true},
    {"depthwise_3x3", 2, 5, 6, 3, 3, 3, geom(1, 1, 1, 3), false},
    {"depthwise_5x5_stride2", 1, 8, 7, 4, 4, 5, geom(2, 2, 1, 4), false},
    {"depthwise_multiplier2", 1, 5, 5, 2, 4, 3, geom(1, 1, 1, 2), true},
    {"depthwise_dilated", 1, 7, 7, 3, 3, 3, geom(1, 2, 2, 3), false},
    {"same_asymmetric_5x5_s2", 1, 8, 8, 3, 3, 5, asym(2, 1, 2, 1, 2, 3), false},
    {"same_asymmetric_3x3_s2_dense", 1, 6, 5, 3, 2, 3, asym(2, 0, 1, 0, 1, 1), true},
    {"pointwise_1x1", 2, 4, 5, 6, 3, 1, geom(1, 0), true},
    {"pointwise_1x1_grouped", 1, 4, 4, 4, 6, 1, geom(1, 0, 1, 2), false},
    {"pointwise_1x1_stride2", 1, 5, 5, 3, 4, 1, geom(2, 0), false},
    {"stem_7x7_s2", 1, 9, 8, 3, 2, 7, geom(2, 3), false},
};

class ConvSmall : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvSmall, ForwardMatchesNaiveFormula) {
  const ConvCase& c = GetParam();
  Tensor x = Tensor::normal({c.n, c.h, c.w, c.c}, 0, 1, 11, 0, DType::F64);
  Tensor w = Tensor::normal({c.k, c.kernel, c.kernel, c.c / c.g.groups}, 0, 1, 12, 0, DType::F64);
  Tensor b = c.bias ? Tensor::normal({c.k}, 0, 1, 13, 0, DType::F64) : Tensor();
  const Tensor ref = naive_conv(x, w, b, c.g);
  for (DType dt : {DType::F64, DType::F32}) {
    Variable y = F::conv2d(Variable(x.to(dt)), Variable(w.to(dt)), b.defined() ? Variable(b.to(dt)) : Variable(), c.g);
    EXPECT_EQ(y.shape(), ref.shape());
    EXPECT_EQ(y.shape(), F::conv2d_output_shape(x.shape(), w.shape(), c.g));
    PNEUMO_EXPECT_CLOSE(y.value(), ref, test::tolerance_for(dt));
  }
}

TEST_P(ConvSmall, GradcheckFloat64) {
  const ConvCase& c = GetParam();
  std::vector<Tensor> inputs{Tensor::normal({c.n, c.h, c.w, c.c}, 0, 1, 21, 0, DType::F64),
                             Tensor::normal({c.k, c.kernel, c.kernel, c.c / c.g.groups}, 0, 1, 22, 0, DType::F64)};
  if (c.bias) inputs.push_back(Tensor::normal({c.k}, 0, 1, 23, 0, DType::F64));
  const F::Conv2dGeometry g = c.g;
  const bool bias = c.bias;
  test::expect_gradcheck([g, bias](const std::vector<Variable>& v) {
    return F::conv2d(v[0], v[1], bias ? v[2] : Variable(), g);
  }, inputs);
}

INSTANTIATE_TEST_SUITE_P(Conv, ConvSmall, ::testing::ValuesIn(kSmallCases),
                         [](const ::testing::TestParamInfo<ConvCase>& i) { return std::string(i.param.name); });

// The real shapes (channels, kernel, stride, groups) of the encoders, at the spatial size of a 256x256 input
// (SE-ResNeXt50 layer1 runs at 1/4 = 64x64; EfficientNet-B3 stages at 1/2..1/16). Forward vs the naive
// formula in float32 (1e-5) — the gradients at these shapes are compared with PyTorch in
// layer_parity_test.cpp and with CUDA in layers_gpu_test.cpp.
const ConvCase kRealCases[] = {
    {"resnext50_layer1_g32_3x3", 1, 64, 64, 128, 128, 3, geom(1, 1, 1, 32), false},
    {"resnext50_layer2_g32_3x3_s2", 1, 64, 64, 256, 256, 3, geom(2, 1, 1, 32), false},
    {"effb3_stem_dw3x3_s1_40ch", 1, 128, 128, 40, 40, 3, asym(1, 1, 1, 1, 1, 40), false},
    {"effb3_stage2_dw3x3_s2_144ch", 1, 128, 128, 144, 144, 3, asym(2, 0, 1, 0, 1, 144), false},
    {"effb3_stage3_dw5x5_s2_192ch", 1, 64, 64, 192, 192, 5, asym(2, 1, 2, 1, 2, 192), false},
    {"effb3_stage3_dw5x5_s1_288ch", 1, 32, 32, 288, 288, 5, asym(1, 2, 2, 2, 2, 288), false},
};

class ConvReal : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvReal, ForwardMatchesNaiveFormula) {
  const ConvCase& c = GetParam();
  Tensor x = Tensor::normal({c.n, c.h, c.w, c.c}, 0, 1, 31, 0, DType::F32);
  const int64_t fan_in = c.kernel * c.kernel * c.c / c.g.groups;
  Tensor w = Tensor::normal({c.k, c.kernel, c.kernel, c.c / c.g.groups}, 0, 1.f / std::sqrt(float(fan_in)), 32, 0);
  Variable y = F::conv2d(Variable(x), Variable(w), Variable(), c.g);
  PNEUMO_EXPECT_CLOSE(y.value(), naive_conv(x, w, Tensor(), c.g), test::tolerance_for(DType::F32));
}

INSTANTIATE_TEST_SUITE_P(Conv, ConvReal, ::testing::ValuesIn(kRealCases),
                         [](const ::testing::TestParamInfo<ConvCase>& i) { return std::string(i.param.name); });

TEST(ConvSamePadding, MatchesTensorFlowRule) {
  // (input, kernel, stride) -> (before, after), worked out from TF's rule by hand.
  struct Row { int64_t in, k, s, before, after; };
  for (const Row& r : {Row{8, 5, 2, 1, 2}, Row{7, 3, 2, 1, 1}, Row{224, 3, 2, 0, 1}, Row{6, 3, 1, 1, 1},
                       Row{9, 5, 1, 2, 2}, Row{112, 5, 2, 1, 2}, Row{5, 1, 1, 0, 0}, Row{4, 7, 2, 2, 3}}) {
    const F::SamePadding p = F::tf_same_padding(r.in, r.k, r.s, 1);
    EXPECT_EQ(p.before, r.before) << r.in << " " << r.k << " " << r.s;
    EXPECT_EQ(p.after, r.after) << r.in << " " << r.k << " " << r.s;
  }
  EXPECT_EQ(F::tf_same_padding(10, 3, 1, 2).before, 2);  // dilated: effective kernel 5
}

TEST(ConvSamePadding, ModuleKeepsCeilOutputSize) {
  Generator gen(5);
  auto conv = nn::Conv2d::tf_same(6, 6, 5, 2, 1, 6, false, &gen);
  for (int64_t size : {7, 8, 9, 16, 17}) {
    Variable y = conv->forward(Variable(Tensor::normal({1, size, size + 1, 6}, 0, 1, 3)));
    EXPECT_EQ(y.shape(), Shape({1, (size + 1) / 2, (size + 2) / 2, 6}));
    F::Conv2dGeometry g = conv->geometry_for(size, size + 1);
    Tensor x = Tensor::normal({1, size, size + 1, 6}, 0, 1, 4);
    PNEUMO_EXPECT_CLOSE(conv->forward(Variable(x)).value(), naive_conv(x, conv->weight().value(), Tensor(), g),
                        test::tolerance_for(DType::F32));
  }
}

TEST(Conv2dModule, ParametersNamesShapesAndDefaultInit) {
  Generator gen(42);
  nn::Conv2d conv(64, 128, 3, 1, 1, 1, 32, true, &gen);
  EXPECT_EQ(conv.type_name(), "Conv2d");
  auto params = conv.named_parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].first, "weight");
  EXPECT_EQ(params[0].second.shape(), Shape({128, 3, 3, 2}));
  EXPECT_EQ(params[1].first, "bias");
  EXPECT_EQ(params[1].second.shape(), Shape({128}));
  // PyTorch's kaiming_uniform(a = sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
  const double bound = 1.0 / std::sqrt(3.0 * 3.0 * 2.0);
  for (const auto& p : params) {
    double sum2 = 0, maxabs = 0;
    for (double v : p.second.value().to_vector_f64()) {
      sum2 += v * v;
      maxabs = std::max(maxabs, std::fabs(v));
    }
    EXPECT_LE(maxabs, bound);
    if (p.first == "weight") {
      EXPECT_NEAR(std::sqrt(sum2 / p.second.numel()), bound / std::sqrt(3.0), 0.03 * bound);
    }
  }
  nn::Conv2d no_bias(3, 8, 7, 2, 3, 1, 1, false, &gen);
  EXPECT_EQ(no_bias.named_parameters().size(), 1u);
  EXPECT_THROW(no_bias.bias(), Error);
  // Same generator state -> same weights (Philox), different state -> different.
  Generator a(7), b(7);
  nn::Conv2d c1(4, 4, 3, 1, 1, 1, 1, true, &a), c2(4, 4, 3, 1, 1, 1, 1, true, &b), c3(4, 4, 3, 1, 1, 1, 1, true, &a);
  EXPECT_EQ(c1.weight().value().to_vector(), c2.weight().value().to_vector());
  EXPECT_NE(c1.weight().value().to_vector(), c3.weight().value().to_vector());
}

TEST(Conv2dModule, ForwardUsesItsGeometry) {
  Generator gen(1);
  nn::Conv2d conv(4, 6, 3, 2, 2, 2, 2, true, &gen);
  Tensor x = Tensor::normal({2, 9, 8, 4}, 0, 1, 9);
  PNEUMO_EXPECT_CLOSE(conv.forward(Variable(x)).value(),
                      naive_conv(x, conv.weight().value(), conv.bias().value(), F::conv_geometry(2, 2, 2, 2)),
                      test::tolerance_for(DType::F32));
}

TEST(ConvErrors, BadShapesThrowNamingThem) {
  Variable x(Tensor::zeros({1, 5, 5, 4}));
  auto message = [](const std::function<void()>& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::string m = message([&] { F::conv2d(x, Variable(Tensor::zeros({8, 3, 3, 3})), Variable(), geom(1, 1)); });
  EXPECT_NE(m.find("[8, 3, 3, 3]"), std::string::npos) << m;
  EXPECT_NE(m.find("[1, 5, 5, 4]"), std::string::npos) << m;
  m = message([&] { F::conv2d(x, Variable(Tensor::zeros({6, 3, 3, 1})), Variable(), geom(1, 1, 1, 3)); });
  EXPECT_NE(m.find("groups"), std::string::npos) << m;
  m = message([&] { F::conv2d(x, Variable(Tensor::zeros({8, 7, 7, 4})), Variable(), geom(1, 0)); });
  EXPECT_NE(m.find("smaller than the dilated kernel"), std::string::npos) << m;
  m = message([&] { F::conv2d(Variable(Tensor::zeros({5, 5, 4})), Variable(Tensor::zeros({8, 3, 3, 4})), Variable(), geom(1, 1)); });
  EXPECT_NE(m.find("NHWC"), std::string::npos) << m;
  m = message([&] { F::conv2d(x, Variable(Tensor::zeros({8, 3, 3, 4})), Variable(Tensor::zeros({7})), geom(1, 1)); });
  EXPECT_NE(m.find("bias"), std::string::npos) << m;
  m = message([&] { F::conv2d(x, Variable(Tensor::zeros({8, 3, 3, 4}, DType::F64)), Variable(), geom(1, 1)); });
  EXPECT_EQ(m, "no error");  // the weight is cast to the activation dtype (mixed precision)
  EXPECT_THROW(nn::Conv2d(6, 8, 3, 1, 1, 1, 4), Error);
}

// The data gradient added into a given gradient (autograd's lent sums): the result IS that tensor, holding its
// old values plus the data gradient -- the same float32/float64 addition whether the sum is formed in the
// convolution's pass (PNEUMO_DGRAD_ACCUMULATE) or after it, with symmetric and with asymmetric padding.
TEST(ConvBackwardData, AddsIntoAGivenGradient) {
  const bool was = kernels::dgrad_accumulate();
  const Shape xs{2, 7, 6, 8};
  for (bool in_pass : {false, true})
    for (DType dt : {DType::F32, DType::F64})
      for (const F::Conv2dGeometry& g : {geom(1, 1), asym(2, 0, 1, 0, 1, 2)}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + (in_pass ? " in the pass" : " after") + " groups " +
                     std::to_string(g.groups));
        kernels::set_dgrad_accumulate(in_pass);
        const Tensor w = Tensor::normal({4, 3, 3, 8 / g.groups}, 0, 1, 31).to(dt);
        const Shape ys = layer_ops::conv2d_forward(Tensor::zeros(xs, dt), w, g).shape();
        const Tensor dy = Tensor::normal(ys, 0, 1, 32).to(dt), before = Tensor::normal(xs, 0, 1, 33).to(dt);
        Tensor into = before.clone();
        const Tensor r = layer_ops::conv2d_backward_data(dy, w, xs, g, &into);
        EXPECT_TRUE(r.shares_storage(into));
        EXPECT_EQ(into.to_vector_f64(), ops::add(before, layer_ops::conv2d_backward_data(dy, w, xs, g)).to_vector_f64());
      }
  kernels::set_dgrad_accumulate(was);
  // A gradient to add into of another shape or dtype is named.
  const Tensor w = Tensor::normal({4, 3, 3, 8}, 0, 1, 34), dy = Tensor::normal({2, 7, 6, 4}, 0, 1, 35);
  Tensor wrong_shape = Tensor::zeros({2, 7, 6, 4}), wrong_dtype = Tensor::zeros(xs, DType::F64);
  try {
    layer_ops::conv2d_backward_data(dy, w, xs, geom(1, 1), &wrong_shape);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the gradient to add to is [2, 7, 6, 4]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(layer_ops::conv2d_backward_data(dy, w, xs, geom(1, 1), &wrong_dtype), Error);
}

}  // namespace
}  // namespace pneumo
