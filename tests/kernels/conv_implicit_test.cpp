// The implicit-GEMM convolution (kernels/cpu/conv_implicit.h) against the float64 generic path (im2col +
// GEMM, which F64 always takes): 3x3 "same" convs at the decoder's channel counts (every register tile
// shape, partial strips and tiles, the 16-channel blocked and the plain padded layouts), dilation, unpadded
// and one-sided padding, 5x3 kernels, odd sizes; forward, backward data and weight; thread-count
// independence. Skips without AVX-512.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/conv_implicit.h"
#include "kernels/cpu/layer_kernels.h"

namespace pneumo::kernels::cpu {
namespace {

struct P {
  int64_t n, h, w, c, k, r, s, pt, pb, pl, pr, dil;
};

ConvShape shape(const P& p) {
  ConvShape cs;
  cs.n = p.n;
  cs.h = p.h;
  cs.w = p.w;
  cs.c = p.c;
  cs.k = p.k;
  cs.r = p.r;
  cs.s = p.s;
  cs.pad_top = p.pt;
  cs.pad_bottom = p.pb;
  cs.pad_left = p.pl;
  cs.pad_right = p.pr;
  cs.dilation_h = cs.dilation_w = p.dil;
  cs.oh = p.h + p.pt + p.pb - p.dil * (p.r - 1);
  cs.ow = p.w + p.pl + p.pr - p.dil * (p.s - 1);
  return cs;
}

struct Result {
  std::vector<float> y, dx, dw;
};

Result run_f32(const ConvShape& cs, const std::vector<float>& x, const std::vector<float>& w,
               const std::vector<float>& dy) {
  Result r{std::vector<float>(dy.size()), std::vector<float>(x.size()), std::vector<float>(w.size())};
  implicit_conv_forward(cs, x.data(), w.data(), r.y.data());
  implicit_conv_backward_data(cs, dy.data(), w.data(), r.dx.data());
  implicit_conv_backward_weight(cs, dy.data(), x.data(), r.dw.data());
  return r;
}

TEST(ConvImplicit, MatchesFloat64GenericPath) {
  const P cases[] = {
      {2, 9, 11, 16, 16, 3, 3, 1, 1, 1, 1, 1},    // decoder's last block: 16-wide tiles both ways
      {2, 8, 8, 32, 32, 3, 3, 1, 1, 1, 1, 1},     // 32-wide tiles
      {1, 7, 13, 48, 20, 3, 3, 1, 1, 1, 1, 1},    // partial strips (48 = 32 + 16, 20 = 16 + 4)
      {2, 6, 5, 24, 40, 3, 3, 0, 0, 0, 0, 1},     // unpadded (valid) convolution
      {1, 10, 9, 64, 32, 3, 3, 2, 2, 2, 2, 2},    // dilation 2 (DeepLab's ASPP)
      {1, 7, 8, 16, 64, 5, 3, 2, 1, 0, 2, 1},     // 5x3 taps, uneven padding
      {1, 4, 4, 300, 24, 3, 3, 1, 1, 1, 1, 1},    // channels split into two GEMM depth blocks
      {1, 3, 5, 400, 24, 3, 3, 1, 1, 1, 1, 1},    // 16-channel blocked layout split 208 + 192
      {2, 5, 6, 128, 70, 3, 3, 1, 1, 1, 1, 1},    // 6x64 weight-gradient tiles, partial last tile and strip
      {2, 17, 3, 8, 8, 3, 3, 1, 1, 1, 1, 1},      // narrow image: tiles straddle many rows
  };
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  int ran = 0;
  for (const P& p : cases) {
    const ConvShape cs = shape(p);
    if (!implicit_conv_applies(cs)) continue;
    ++ran;
    const int64_t nx = cs.n * cs.h * cs.w * cs.c, ny = cs.n * cs.oh * cs.ow * cs.k, nw = cs.k * cs.r * cs.s * cs.c;
    std::vector<float> x(nx), w(nw), dy(ny);
    for (auto& v : x) v = u(rng);
    for (auto& v : w) v = u(rng);
    for (auto& v : dy) v = u(rng);
    std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end()), dyd(dy.begin(), dy.end()), yd(ny), dxd(nx),
        dwd(nw);
    conv2d_forward(DType::F64, cs, xd.data(), wd.data(), yd.data());
    conv2d_backward_data(DType::F64, cs, dyd.data(), wd.data(), dxd.data());
    conv2d_backward_weight(DType::F64, cs, dyd.data(), xd.data(), dwd.data());
    const Result r = run_f32(cs, x, w, dy);
    const std::string at = "case c " + std::to_string(p.c) + " k " + std::to_string(p.k) + " " +
                           std::to_string(p.r) + "x" + std::to_string(p.s) + " dil " + std::to_string(p.dil);
    // Each output sums taps * channels products of magnitude <= 1: bound the float error by that count.
    const double fbound = 1e-6 * cs.r * cs.s * cs.c, dbound = 1e-6 * cs.r * cs.s * cs.k;
    for (int64_t i = 0; i < ny; ++i) ASSERT_NEAR(r.y[i], yd[i], fbound) << at << " forward at " << i;
    for (int64_t i = 0; i < nx; ++i) ASSERT_NEAR(r.dx[i], dxd[i], dbound) << at << " backward data at " << i;
    const double wbound = 1e-6 * static_cast<double>(cs.n * cs.oh * cs.ow);
    for (int64_t i = 0; i < nw; ++i) ASSERT_NEAR(r.dw[i], dwd[i], wbound) << at << " backward weight at " << i;
    // The dispatching entry points take this path for F32.
    std::vector<float> y2(ny), dx2(nx), dw2(nw);
    conv2d_forward(DType::F32, cs, x.data(), w.data(), y2.data());
    conv2d_backward_data(DType::F32, cs, dy.data(), w.data(), dx2.data());
    conv2d_backward_weight(DType::F32, cs, dy.data(), x.data(), dw2.data());
    EXPECT_EQ(r.y, y2) << at;
    EXPECT_EQ(r.dx, dx2) << at;
    EXPECT_EQ(r.dw, dw2) << at;
  }
  if (ran == 0) GTEST_SKIP() << "no AVX-512F on this CPU";
}

// Large enough for the threaded paths (work items, strip runs): 1 and 2 threads give identical bits.
TEST(ConvImplicit, DoesNotDependOnThreadCount) {
  const ConvShape cs = shape({2, 40, 36, 32, 48, 3, 3, 1, 1, 1, 1, 1});
  if (!implicit_conv_applies(cs)) GTEST_SKIP() << "no AVX-512F on this CPU";
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(cs.n * cs.h * cs.w * cs.c), w(cs.k * 9 * cs.c), dy(cs.n * cs.oh * cs.ow * cs.k);
  for (auto& v : x) v = u(rng);
  for (auto& v : w) v = u(rng);
  for (auto& v : dy) v = u(rng);
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  const Result one = run_f32(cs, x, w, dy);
  omp_set_num_threads(2);
  const Result two = run_f32(cs, x, w, dy);
  omp_set_num_threads(before);
  EXPECT_EQ(one.y, two.y);
  EXPECT_EQ(one.dx, two.dx);
  EXPECT_EQ(one.dw, two.dw);
}

TEST(ConvImplicit, OnlyForItsShapes) {
  ConvShape cs = shape({1, 8, 8, 16, 16, 3, 3, 1, 1, 1, 1, 1});
  if (!implicit_conv_applies(cs)) GTEST_SKIP() << "no AVX-512F on this CPU";
  ConvShape strided = cs;
  strided.stride_h = strided.stride_w = 2;
  strided.oh = strided.ow = 4;
  EXPECT_FALSE(implicit_conv_applies(strided));
  ConvShape grouped = cs;
  grouped.groups = 2;
  EXPECT_FALSE(implicit_conv_applies(grouped));
  EXPECT_FALSE(implicit_conv_applies(shape({1, 8, 8, 16, 16, 1, 1, 0, 0, 0, 0, 1})));  // 1x1: one GEMM
  EXPECT_FALSE(implicit_conv_applies(shape({1, 8, 8, 3, 16, 3, 3, 1, 1, 1, 1, 1})));   // 3 input channels
  EXPECT_FALSE(implicit_conv_applies(shape({1, 8, 8, 16, 1, 3, 3, 1, 1, 1, 1, 1})));   // 1 output channel
  EXPECT_FALSE(implicit_conv_applies(shape({1, 8, 8, 16, 16, 3, 3, 3, 1, 1, 1, 1})));  // pad beyond the taps' reach
}

}  // namespace
}  // namespace pneumo::kernels::cpu
