// CPU reference of the augmentation transforms: plain loops over pixels, the per-pixel arithmetic taken
// from kernels/augment_math.h so the CUDA kernels round identically. Each function names the OpenCV or
// albumentations 0.3.0 routine it reproduces; docs/augmentations.md gives the sources.
#include "augment/transforms.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/augment_math.h"
#include "kernels/check.h"

namespace pneumo::aug {

namespace am = pneumo::augmath;

namespace {

void check_image(const Image& img, const char* what) {
  PNEUMO_CHECK(img.height > 0 && img.width > 0 && img.channels > 0, what, ": empty image (", img.height, "x",
               img.width, "x", img.channels, ")");
  PNEUMO_CHECK(img.pixels.size() == static_cast<size_t>(img.height) * img.width * img.channels, what,
               ": pixel buffer holds ", img.pixels.size(), " bytes, expected ", img.height, "x", img.width, "x",
               img.channels);
}
void check_gray(const Image& img, const char* what) {
  check_image(img, what);
  PNEUMO_CHECK(img.channels == 1, what, ": needs a 1-channel image, got ", img.channels, " channels (",
               img.height, "x", img.width, ")");
}

}  // namespace

Image resize_linear(const Image& src, int out_height, int out_width) {
  check_image(src, "resize_linear");
  PNEUMO_CHECK(out_height > 0 && out_width > 0, "resize_linear: bad output size ", out_height, "x", out_width);
  if (out_height == src.height && out_width == src.width) return src;  // cv2.resize copies when sizes match
  const int C = src.channels;
  // OpenCV: inv_scale = dsize / ssize, scale = 1 / inv_scale (not ssize / dsize, which can differ by an ulp).
  const double scale_x = 1.0 / (static_cast<double>(out_width) / src.width);
  const double scale_y = 1.0 / (static_cast<double>(out_height) / src.height);
  std::vector<int> xs(out_width), xw0(out_width), xw1(out_width);
  for (int x = 0; x < out_width; ++x) am::resize_linear_coefficients(x, scale_x, src.width, true, xs[x], xw0[x], xw1[x]);
  // Horizontal pass on every source row (values scaled by 2048).
  std::vector<int> rows(static_cast<size_t>(src.height) * out_width * C);
  for (int y = 0; y < src.height; ++y) {
    const uint8_t* s = src.row(y);
    int* r = rows.data() + static_cast<size_t>(y) * out_width * C;
    for (int x = 0; x < out_width; ++x) {
      const int x1 = std::min(xs[x] + 1, src.width - 1);
      for (int c = 0; c < C; ++c) r[x * C + c] = s[xs[x] * C + c] * xw0[x] + s[x1 * C + c] * xw1[x];
    }
  }
  Image dst(out_height, out_width, C);
  for (int y = 0; y < out_height; ++y) {
    int sy, b0, b1;
    am::resize_linear_coefficients(y, scale_y, src.height, false, sy, b0, b1);
    const int* r0 = rows.data() + static_cast<size_t>(am::clamp_int(sy, 0, src.height - 1)) * out_width * C;
    const int* r1 = rows.data() + static_cast<size_t>(am::clamp_int(sy + 1, 0, src.height - 1)) * out_width * C;
    uint8_t* d = dst.row(y);
    for (int i = 0; i < out_width * C; ++i) d[i] = am::resize_vertical(r0[i], r1[i], b0, b1);
  }
  return dst;
}

Image resize_nearest(const Image& src, int out_height, int out_width) {
  check_image(src, "resize_nearest");
  PNEUMO_CHECK(out_height > 0 && out_width > 0, "resize_nearest: bad output size ", out_height, "x", out_width);
  if (out_height == src.height && out_width == src.width) return src;
  const int C = src.channels;
  const double fx = 1.0 / (static_cast<double>(out_width) / src.width);  // resizeNN: ifx = 1 / inv_scale_x
  const double fy = 1.0 / (static_cast<double>(out_height) / src.height);
  Image dst(out_height, out_width, C);
  for (int y = 0; y < out_height; ++y) {
    const int sy = std::min(static_cast<int>(std::floor(y * fy)), src.height - 1);
    for (int x = 0; x < out_width; ++x) {
      const int sx = std::min(static_cast<int>(std::floor(x * fx)), src.width - 1);
      for (int c = 0; c < C; ++c) dst.at(y, x, c) = src.at(sy, sx, c);
    }
  }
  return dst;
}

Affine shift_scale_rotate_matrix(double angle_deg, double scale, double dx, double dy, int height, int width) {
  // cv::getRotationMatrix2D takes the centre as Point2f; w/2 and h/2 are exact in float.
  const double cx = static_cast<float>(width / 2.0), cy = static_cast<float>(height / 2.0);
  const double angle = angle_deg * (3.14159265358979323846 / 180.0);
  const double alpha = std::cos(angle) * scale, beta = std::sin(angle) * scale;
  Affine a;
  a.m[0] = alpha;
  a.m[1] = beta;
  a.m[2] = (1 - alpha) * cx - beta * cy;
  a.m[3] = -beta;
  a.m[4] = alpha;
  a.m[5] = beta * cx + (1 - alpha) * cy;
  a.m[2] += dx * width;
  a.m[5] += dy * height;
  return a;
}

Affine invert_affine(const Affine& a) {
  const double* M = a.m;
  double D = M[0] * M[4] - M[1] * M[3];
  D = D != 0 ? 1. / D : 0;
  Affine r;
  r.m[0] = M[4] * D;
  r.m[1] = M[1] * -D;
  r.m[3] = M[3] * -D;
  r.m[4] = M[0] * D;
  r.m[2] = -r.m[0] * M[2] - r.m[1] * M[5];
  r.m[5] = -r.m[3] * M[2] - r.m[4] * M[5];
  return r;
}

Image warp_affine(const Image& src, const Affine& forward, bool nearest) {
  check_image(src, "warp_affine");
  const Affine inv = invert_affine(forward);
  const int H = src.height, W = src.width, C = src.channels;
  Image dst(H, W, C);
  for (int y = 0; y < H; ++y) {
    for (int x = 0; x < W; ++x) {
      int sx, sy;
      am::warp_source_fixed(inv.m, x, y, nearest, sx, sy);
      for (int c = 0; c < C; ++c) {
        if (nearest)
          dst.at(y, x, c) = (sx >= 0 && sx < W && sy >= 0 && sy < H) ? src.at(sy, sx, c) : 0;
        else
          dst.at(y, x, c) = am::warp_bilinear_sample(src.data(), H, W, C, c, sx, sy);
      }
    }
  }
  return dst;
}

Image hflip(const Image& src) {
  check_image(src, "hflip");
  Image dst(src.height, src.width, src.channels);
  for (int y = 0; y < src.height; ++y)
    for (int x = 0; x < src.width; ++x)
      for (int c = 0; c < src.channels; ++c) dst.at(y, x, c) = src.at(y, src.width - 1 - x, c);
  return dst;
}

Image apply_lut(const Image& src, const Lut& lut) {
  check_image(src, "apply_lut");
  Image dst(src.height, src.width, src.channels);
  for (size_t i = 0; i < src.pixels.size(); ++i) dst.pixels[i] = lut[src.pixels[i]];
  return dst;
}

Lut gamma_lut(double gamma) {
  PNEUMO_CHECK(gamma > 0 && std::isfinite(gamma), "gamma_lut: gamma must be positive, got ", gamma);
  Lut lut{};
  const double inv_gamma = 1.0 / gamma;
  for (int i = 0; i < 256; ++i) {
    const double v = std::pow(i / 255.0, inv_gamma) * 255;  // numpy: ((i / 255.0) ** invGamma) * 255
    lut[i] = static_cast<uint8_t>(std::min(255.0, std::max(0.0, std::trunc(v))));  // .astype("uint8")
  }
  return lut;
}

Lut brightness_contrast_lut(double alpha, double beta, double image_mean) {
  // numpy float32 arithmetic: lut = arange(256).astype(float32); lut *= alpha; lut += beta * mean.
  const float alpha_f = static_cast<float>(alpha);
  const float shift_f = static_cast<float>(beta * image_mean);
  Lut lut{};
  for (int i = 0; i < 256; ++i) {
    float v = static_cast<float>(i);
    if (alpha != 1) v = v * alpha_f;
    if (beta != 0) v = v + shift_f;
    v = std::min(255.f, std::max(0.f, v));
    lut[i] = static_cast<uint8_t>(v);  // np.clip(...).astype(uint8): truncation
  }
  return lut;
}

double image_mean(const Image& src) {
  check_image(src, "image_mean");
  uint64_t sum = 0;
  for (uint8_t p : src.pixels) sum += p;
  return static_cast<double>(sum) / static_cast<double>(src.pixels.size());
}

ClaheTables clahe_tables(const Image& src, double clip_limit, int tiles_x, int tiles_y) {
  check_gray(src, "clahe");
  PNEUMO_CHECK(tiles_x > 0 && tiles_y > 0, "clahe: bad tile grid ", tiles_x, "x", tiles_y);
  PNEUMO_CHECK(src.width >= tiles_x && src.height >= tiles_y, "clahe: image ", src.height, "x", src.width,
               " is smaller than the tile grid ", tiles_y, "x", tiles_x);
  const int H = src.height, W = src.width;
  // Extend by BORDER_REFLECT_101 at the bottom/right to a multiple of the grid (when not already one).
  const int ext_h = H % tiles_y ? H + tiles_y - H % tiles_y : H;
  const int ext_w = W % tiles_x ? W + tiles_x - W % tiles_x : W;
  ClaheTables t;
  t.tiles_x = tiles_x;
  t.tiles_y = tiles_y;
  t.tile_width = ext_w / tiles_x;
  t.tile_height = ext_h / tiles_y;
  const int area = t.tile_width * t.tile_height;
  const float lut_scale = 255.0f / static_cast<float>(area);
  int clip = 0;
  if (clip_limit > 0) clip = std::max(static_cast<int>(clip_limit * area / 256), 1);
  t.luts.assign(static_cast<size_t>(tiles_x) * tiles_y * 256, 0);
  for (int ty = 0; ty < tiles_y; ++ty) {
    for (int tx = 0; tx < tiles_x; ++tx) {
      int hist[256] = {0};
      for (int y = ty * t.tile_height; y < (ty + 1) * t.tile_height; ++y)
        for (int x = tx * t.tile_width; x < (tx + 1) * t.tile_width; ++x)
          ++hist[src.at(am::reflect101(y, H), am::reflect101(x, W))];
      if (clip > 0) {
        int clipped = 0;
        for (int i = 0; i < 256; ++i)
          if (hist[i] > clip) {
            clipped += hist[i] - clip;
            hist[i] = clip;
          }
        const int batch = clipped / 256;
        int residual = clipped - batch * 256;
        for (int i = 0; i < 256; ++i) hist[i] += batch;
        if (residual != 0) {
          const int step = std::max(256 / residual, 1);
          for (int i = 0; i < 256 && residual > 0; i += step, --residual) ++hist[i];
        }
      }
      uint8_t* lut = t.luts.data() + (static_cast<size_t>(ty) * tiles_x + tx) * 256;
      int sum = 0;
      for (int i = 0; i < 256; ++i) {
        sum += hist[i];
        lut[i] = am::saturate_u8(am::round_even_f(static_cast<float>(sum) * lut_scale));
      }
    }
  }
  return t;
}

Image clahe(const Image& src, double clip_limit, int tiles_x, int tiles_y) {
  const ClaheTables t = clahe_tables(src, clip_limit, tiles_x, tiles_y);
  const float inv_tw = 1.0f / static_cast<float>(t.tile_width), inv_th = 1.0f / static_cast<float>(t.tile_height);
  Image dst(src.height, src.width, 1);
  for (int y = 0; y < src.height; ++y) {
    int ty1, ty2;
    float ya;
    am::clahe_axis(y, inv_th, tiles_y, ty1, ty2, ya);
    for (int x = 0; x < src.width; ++x) {
      int tx1, tx2;
      float xa;
      am::clahe_axis(x, inv_tw, tiles_x, tx1, tx2, xa);
      const int v = src.at(y, x);
      auto L = [&](int ty, int tx) { return static_cast<int>(t.luts[(static_cast<size_t>(ty) * tiles_x + tx) * 256 + v]); };
      dst.at(y, x) = am::clahe_blend(L(ty1, tx1), L(ty1, tx2), L(ty2, tx1), L(ty2, tx2), xa, ya);
    }
  }
  return dst;
}

namespace {
double srgb_to_linear(double c) { return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4); }
double linear_to_srgb(double y) { return y <= 0.0031308 ? 12.92 * y : 1.055 * std::pow(y, 1.0 / 2.4) - 0.055; }
}  // namespace

Lut gray_to_lightness_lut() {
  // OpenCV's 8-bit RGB2Lab_b for R = G = B = v (color_lab.cpp, D65, sRGB): the gamma table holds
  // round(2040 * lin(v / 255)) (255 << 3), the Y row of the XYZ coefficients sums to exactly 4096 so Y is that
  // value, the cube-root table holds round(32768 * f(Y / 2040)) and L = descale(296 * fY - 1336934, 15)
  // (Lscale = (116 * 255 + 50) / 100, Lshift = -((16 * 255 * 2^15 + 50) / 100)). Equal to OpenCV 4.6 on
  // all 256 values (fixture test).
  Lut lut{};
  for (int i = 0; i < 256; ++i) {
    const int g = static_cast<int>(std::nearbyint(2040.0 * srgb_to_linear(i / 255.0)));
    const double t = g / 2040.0;
    const double f = t < 0.008856 ? t * 7.787 + 16.0 / 116.0 : std::cbrt(t);
    const int fy = static_cast<int>(std::nearbyint(32768.0 * f));
    lut[i] = am::saturate_u8((296 * fy - 1336934 + (1 << 14)) >> 15);
  }
  return lut;
}

Lut lightness_to_gray_lut() {
  Lut lut{};
  for (int i = 0; i < 256; ++i) {
    const double L = i * 100.0 / 255.0, fy = (L + 16.0) / 116.0;
    const double Y = fy > 6.0 / 29.0 ? fy * fy * fy : (fy - 16.0 / 116.0) / 7.787;
    lut[i] = am::saturate_u8(static_cast<int>(std::lround(255.0 * linear_to_srgb(std::max(0.0, Y)))));
  }
  return lut;
}

Image clahe_on_lightness(const Image& src, double clip_limit, int tiles_x, int tiles_y) {
  check_gray(src, "clahe_on_lightness");
  Image lightness = apply_lut(src, gray_to_lightness_lut());
  return apply_lut(clahe(lightness, clip_limit, tiles_x, tiles_y), lightness_to_gray_lut());
}

Image box_blur(const Image& src, int ksize) {
  check_gray(src, "box_blur");
  PNEUMO_CHECK(ksize >= 1 && ksize % 2 == 1, "box_blur: kernel size must be odd and positive, got ", ksize);
  const int r = ksize / 2, n = ksize * ksize;
  Image dst(src.height, src.width, 1);
  for (int y = 0; y < src.height; ++y)
    for (int x = 0; x < src.width; ++x) {
      int sum = 0;
      for (int dy = -r; dy <= r; ++dy)
        for (int dx = -r; dx <= r; ++dx)
          sum += src.at(am::reflect101(y + dy, src.height), am::reflect101(x + dx, src.width));
      dst.at(y, x) = static_cast<uint8_t>(am::div_round_half_even(sum, n));
    }
  return dst;
}

namespace {
// Median of 9 values with the 19 compare-exchange network (Paeth / OpenCV's medianBlur_SortNet for 3x3).
inline uint8_t median9(uint8_t* p) {
  auto s = [p](int a, int b) {
    if (p[a] > p[b]) std::swap(p[a], p[b]);
  };
  s(1, 2); s(4, 5); s(7, 8); s(0, 1); s(3, 4); s(6, 7); s(1, 2); s(4, 5); s(7, 8); s(0, 3);
  s(5, 8); s(4, 7); s(3, 6); s(1, 4); s(2, 5); s(4, 7); s(4, 2); s(6, 4); s(4, 2);
  return p[4];
}
}  // namespace

Image median_blur(const Image& src, int ksize) {
  check_gray(src, "median_blur");
  PNEUMO_CHECK(ksize >= 1 && ksize % 2 == 1, "median_blur: kernel size must be odd and positive, got ", ksize);
  const int r = ksize / 2, n = ksize * ksize;
  Image dst(src.height, src.width, 1);
  std::vector<uint8_t> window(n);
  for (int y = 0; y < src.height; ++y)
    for (int x = 0; x < src.width; ++x) {
      int k = 0;
      for (int dy = -r; dy <= r; ++dy)
        for (int dx = -r; dx <= r; ++dx)
          window[k++] = src.at(am::clamp_int(y + dy, 0, src.height - 1), am::clamp_int(x + dx, 0, src.width - 1));
      if (n == 9) {
        dst.at(y, x) = median9(window.data());
      } else {
        std::nth_element(window.begin(), window.begin() + n / 2, window.end());
        dst.at(y, x) = window[n / 2];
      }
    }
  return dst;
}

std::vector<uint8_t> motion_kernel(int ksize, int xs, int ys, int xe, int ye) {
  PNEUMO_CHECK(ksize >= 3, "motion_kernel: ksize must be >= 3, got ", ksize);
  for (int v : {xs, ys, xe, ye})
    PNEUMO_CHECK(v >= 0 && v < ksize, "motion_kernel: end point coordinate ", v, " outside 0..", ksize - 1);
  std::vector<uint8_t> k(static_cast<size_t>(ksize) * ksize, 0);
  // OpenCV LineIterator, 8-connected, left to right: step along the major axis every time, and along the
  // minor axis too whenever the error term is negative.
  if (xe < xs) {
    std::swap(xs, xe);
    std::swap(ys, ye);
  }
  const int dx = xe - xs, sy = ye >= ys ? 1 : -1, dy = std::abs(ye - ys);
  const bool y_major = dy > dx;
  const int dmaj = y_major ? dy : dx, dmin = y_major ? dx : dy;
  int x = xs, y = ys, err = dmaj - 2 * dmin;
  for (int i = 0; i <= dmaj; ++i) {
    k[static_cast<size_t>(y) * ksize + x] = 1;
    const bool minor = err < 0;
    err += -2 * dmin + (minor ? 2 * dmaj : 0);
    if (y_major) {
      y += sy;
      if (minor) x += 1;
    } else {
      x += 1;
      if (minor) y += sy;
    }
  }
  return k;
}

Image motion_blur(const Image& src, const std::vector<uint8_t>& kernel, int ksize) {
  check_gray(src, "motion_blur");
  PNEUMO_CHECK(ksize >= 1 && ksize % 2 == 1 && kernel.size() == static_cast<size_t>(ksize) * ksize,
               "motion_blur: kernel of ", kernel.size(), " entries does not match ksize ", ksize);
  int n = 0;
  for (uint8_t v : kernel) n += v != 0;
  PNEUMO_CHECK(n > 0, "motion_blur: empty kernel");
  const int r = ksize / 2;
  Image dst(src.height, src.width, 1);
  for (int y = 0; y < src.height; ++y)
    for (int x = 0; x < src.width; ++x) {
      int sum = 0;
      for (int i = 0; i < ksize; ++i)
        for (int j = 0; j < ksize; ++j)
          if (kernel[static_cast<size_t>(i) * ksize + j])
            sum += src.at(am::reflect101(y + i - r, src.height), am::reflect101(x + j - r, src.width));
      dst.at(y, x) = static_cast<uint8_t>(am::div_round_half_even(sum, n));
    }
  return dst;
}

}  // namespace pneumo::aug
