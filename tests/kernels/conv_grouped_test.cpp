// The direct AVX-512 grouped convolution (kernels/cpu/conv_grouped.h) against the float64 generic path
// (im2col + GEMM per group, which F64 always takes) on ResNeXt's group widths 4, 8, 16 and 32, stride 1
// and 2, padding, dilation and odd spatial sizes; forward, backward data and weight. Skips without AVX-512.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/conv_grouped.h"
#include "kernels/cpu/layer_kernels.h"

namespace pneumo::kernels::cpu {
namespace {

ConvShape shape(int64_t n, int64_t hw, int64_t c, int64_t groups, int64_t stride, int64_t pad, int64_t dil) {
  ConvShape cs;
  cs.n = n;
  cs.h = hw;
  cs.w = hw + 2;
  cs.c = cs.k = c;
  cs.r = cs.s = 3;
  cs.groups = groups;
  cs.stride_h = cs.stride_w = stride;
  cs.pad_top = cs.pad_bottom = cs.pad_left = cs.pad_right = pad;
  cs.dilation_h = cs.dilation_w = dil;
  cs.oh = (cs.h + 2 * pad - dil * 2 - 1) / stride + 1;
  cs.ow = (cs.w + 2 * pad - dil * 2 - 1) / stride + 1;
  return cs;
}

TEST(ConvGroupedDirect, MatchesFloat64GenericPath) {
  struct P {
    int64_t c, groups, hw, stride, pad, dil;
  };
  const P cases[] = {{128, 32, 7, 1, 1, 1}, {256, 32, 6, 2, 1, 1}, {512, 32, 5, 1, 1, 1},
                     {1024, 32, 3, 2, 1, 1}, {128, 64, 6, 1, 2, 2}, {256, 16, 5, 1, 0, 1}};
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  int ran = 0;
  for (const P& p : cases) {
    const ConvShape cs = shape(2, p.hw, p.c, p.groups, p.stride, p.pad, p.dil);
    if (!grouped_direct_applies(cs)) continue;
    ++ran;
    const int64_t cg = cs.c_per_group(), nx = cs.n * cs.h * cs.w * cs.c, ny = cs.n * cs.oh * cs.ow * cs.k,
                  nw = cs.k * 9 * cg;
    std::vector<float> x(nx), w(nw), dy(ny), y(ny), dx(nx), dw(nw);
    for (auto& v : x) v = u(rng);
    for (auto& v : w) v = u(rng);
    for (auto& v : dy) v = u(rng);
    std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end()), dyd(dy.begin(), dy.end()), yd(ny), dxd(nx),
        dwd(nw);
    grouped_direct_forward(cs, x.data(), w.data(), y.data());
    grouped_direct_backward_data(cs, dy.data(), w.data(), dx.data());
    grouped_direct_backward_weight(cs, dy.data(), x.data(), dw.data());
    conv2d_backward_weight(DType::F64, cs, dyd.data(), xd.data(), dwd.data());
    conv2d_forward(DType::F64, cs, xd.data(), wd.data(), yd.data());
    conv2d_backward_data(DType::F64, cs, dyd.data(), wd.data(), dxd.data());
    // Each output sums at most 9 * cg products of magnitude <= 1: bound the float error by that count.
    const double bound = 1e-6 * 9 * static_cast<double>(cg);
    for (int64_t i = 0; i < ny; ++i) ASSERT_NEAR(y[i], yd[i], bound) << "forward c " << p.c << " at " << i;
    for (int64_t i = 0; i < nx; ++i) ASSERT_NEAR(dx[i], dxd[i], bound) << "backward data c " << p.c << " at " << i;
    // The weight gradient sums one product per output pixel: bound by that count.
    const double wbound = 1e-6 * static_cast<double>(cs.n * cs.oh * cs.ow);
    for (int64_t i = 0; i < nw; ++i) ASSERT_NEAR(dw[i], dwd[i], wbound) << "backward weight c " << p.c << " at " << i;
    // The dispatching entry points take the same path for F32.
    std::vector<float> y2(ny), dx2(nx), dw2(nw);
    conv2d_backward_weight(DType::F32, cs, dy.data(), x.data(), dw2.data());
    EXPECT_EQ(dw, dw2);
    conv2d_forward(DType::F32, cs, x.data(), w.data(), y2.data());
    conv2d_backward_data(DType::F32, cs, dy.data(), w.data(), dx2.data());
    EXPECT_EQ(y, y2);
    EXPECT_EQ(dx, dx2);
  }
  if (ran == 0) GTEST_SKIP() << "no AVX-512F on this CPU";
}

TEST(ConvGroupedDirect, OnlyForItsShapes) {
  ConvShape cs = shape(1, 4, 128, 32, 1, 1, 1);
  cs.k = 256;  // k != c: the generic path
  EXPECT_FALSE(grouped_direct_applies(cs));
  EXPECT_FALSE(grouped_direct_applies(shape(1, 4, 64, 16, 1, 1, 1)));    // c not a multiple of 128
  EXPECT_FALSE(grouped_direct_applies(shape(1, 4, 128, 128, 1, 1, 1)));  // depthwise
  EXPECT_FALSE(grouped_direct_applies(shape(1, 4, 384, 32, 1, 1, 1)));   // 12 channels per group
  EXPECT_FALSE(grouped_direct_applies(shape(1, 4, 128, 1, 1, 1, 1)));    // not grouped
}

}  // namespace
}  // namespace pneumo::kernels::cpu
