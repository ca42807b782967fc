// Per-pixel arithmetic of the augmentation transforms, shared verbatim by the CPU reference (augment/) and
// the CUDA kernels (kernels/cuda/augment.cu) so both round exactly as OpenCV 4.x does.
// Convention: every float/double operation that OpenCV performs as separate multiply and add is written
// with the *_rn helpers, which on the device forbid fused multiply-add (nvcc contracts a*b+c by default).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/dtype.h"

namespace pneumo::augmath {

PNEUMO_HD double dmul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
PNEUMO_HD double dadd(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
PNEUMO_HD float fmul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
PNEUMO_HD float fadd(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
// cvRound: round half to even (the default rounding mode on both sides).
PNEUMO_HD int round_even(double v) {
#if defined(__CUDA_ARCH__)
  return __double2int_rn(v);
#else
  return static_cast<int>(std::nearbyint(v));
#endif
}
PNEUMO_HD int round_even_f(float v) {
#if defined(__CUDA_ARCH__)
  return __float2int_rn(v);
#else
  return static_cast<int>(std::nearbyint(v));
#endif
}
PNEUMO_HD int floor_f(float v) {
#if defined(__CUDA_ARCH__)
  return __float2int_rd(v);
#else
  return static_cast<int>(std::floor(v));
#endif
}
PNEUMO_HD int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }
PNEUMO_HD uint8_t saturate_u8(int v) { return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v)); }

// ---- warpAffine (imgwarp.cpp, WarpAffineInvoker + remapBilinear/remapNearest, 8-bit) ------------------
// `inv` is the inverse (destination -> source) matrix. AB_BITS = 10; INTER_BITS = 5.
// Returns the source position in 1/32 pixel (linear) or in pixels (nearest), floor-shifted like OpenCV.
PNEUMO_HD void warp_source_fixed(const double* inv, int x, int y, bool nearest, int& sx, int& sy) {
  const int round_delta = nearest ? 512 : 16;
  const int row_x = round_even(dmul(dadd(dmul(inv[1], static_cast<double>(y)), inv[2]), 1024.0)) + round_delta;
  const int row_y = round_even(dmul(dadd(dmul(inv[4], static_cast<double>(y)), inv[5]), 1024.0)) + round_delta;
  const int col_x = round_even(dmul(dmul(inv[0], static_cast<double>(x)), 1024.0));
  const int col_y = round_even(dmul(dmul(inv[3], static_cast<double>(x)), 1024.0));
  const int shift = nearest ? 10 : 5;
  sx = (row_x + col_x) >> shift;  // arithmetic shift = floor, as in OpenCV
  sy = (row_y + col_y) >> shift;
}

// Bilinear sample of channel c at a 1/32-pixel position with a constant 0 border; weights are exact
// integers (32 - f) * (32 - g) * 32 etc., the sum rounded by 2^15 (FixedPtCast<int, uchar, 15>).
PNEUMO_HD uint8_t warp_bilinear_sample(const uint8_t* src, int height, int width, int channels, int c, int X,
                                      int Y) {
  const int x0 = X >> 5, y0 = Y >> 5, fx = X & 31, fy = Y & 31;
  auto at = [&](int yy, int xx) -> int {
    return (xx >= 0 && xx < width && yy >= 0 && yy < height)
               ? src[(static_cast<int64_t>(yy) * width + xx) * channels + c]
               : 0;
  };
  const int sum = at(y0, x0) * ((32 - fy) * (32 - fx) * 32) + at(y0, x0 + 1) * ((32 - fy) * fx * 32) +
                  at(y0 + 1, x0) * (fy * (32 - fx) * 32) + at(y0 + 1, x0 + 1) * (fy * fx * 32);
  return saturate_u8((sum + (1 << 14)) >> 15);
}

// ---- resize INTER_LINEAR (resize.cpp, resizeGeneric_ with HResizeLinear / VResizeLinear, 8-bit) -------
// For destination index d of n_dst: source index s and 11-bit weights (w0 for s, w1 for s + 1).
// `clamp_fraction` is true for columns (OpenCV zeroes the fraction at the borders) and false for rows
// (rows are clamped instead, which is what the caller does with s and s + 1).
PNEUMO_HD void resize_linear_coefficients(int d, double scale, int n_src, bool clamp_fraction, int& s, int& w0,
                                          int& w1) {
  float f = static_cast<float>(dadd(dmul(static_cast<double>(d) + 0.5, scale), -0.5));
  s = floor_f(f);
  f = f - static_cast<float>(s);
  if (clamp_fraction) {
    if (s < 0) { f = 0.f; s = 0; }
    if (s >= n_src - 1) { f = 0.f; s = n_src - 1; }
  }
  w0 = round_even_f(fmul(1.f - f, 2048.f));
  w1 = round_even_f(fmul(f, 2048.f));
}
// Vertical combination of two horizontally interpolated rows (values scaled by 2048), as OpenCV's
// vectorised VResizeLinearVec_32s8u rounds it (bit-exact with OpenCV 4.6 on every width tested).
PNEUMO_HD uint8_t resize_vertical(int r0, int r1, int b0, int b1) {
  const int v = (((r0 >> 4) * b0) >> 16) + (((r1 >> 4) * b1) >> 16);
  return saturate_u8((v + 2) >> 2);
}

// ---- CLAHE interpolation (clahe.cpp, CLAHE_Interpolation_Body) ---------------------------------------
// Tile coordinates of a pixel along one axis: the two neighbouring tiles and the weight of the second.
PNEUMO_HD void clahe_axis(int p, float inv_tile, int tiles, int& t1, int& t2, float& a2) {
  const float tf = fadd(fmul(static_cast<float>(p), inv_tile), -0.5f);
  t1 = floor_f(tf);
  t2 = t1 + 1;
  a2 = tf - static_cast<float>(t1);
  t1 = t1 < 0 ? 0 : t1;
  t2 = t2 > tiles - 1 ? tiles - 1 : t2;
}
PNEUMO_HD uint8_t clahe_blend(int l11, int l12, int l21, int l22, float xa, float ya) {
  const float xa1 = 1.f - xa, ya1 = 1.f - ya;
  const float top = fadd(fmul(static_cast<float>(l11), xa1), fmul(static_cast<float>(l12), xa));
  const float bottom = fadd(fmul(static_cast<float>(l21), xa1), fmul(static_cast<float>(l22), xa));
  return saturate_u8(round_even_f(fadd(fmul(top, ya1), fmul(bottom, ya))));
}

// Division of a non-negative sum by n rounded half to even: cv2.blur (no ties occur for odd k*k) and
// filter2D with weights 1/n (OpenCV rounds the float result with rint).
PNEUMO_HD int div_round_half_even(int sum, int n) {
  int q = sum / n, r = sum - q * n;
  if (2 * r > n || (2 * r == n && (q & 1))) ++q;
  return q;
}

// BORDER_REFLECT_101 index (gfedcb|abcdefgh|gfedcba) for small overhangs.
PNEUMO_HD int reflect101(int i, int n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) {
    if (i < 0) i = -i;
    if (i >= n) i = 2 * n - 2 - i;
  }
  return i;
}

}  // namespace pneumo::augmath
