// The CPU reference of every augmentation transform, on 8-bit Images, reproducing OpenCV 4.x arithmetic
// bit for bit where albumentations 0.3.0 calls OpenCV (verified against OpenCV 4.6 on fixtures under
// tests/fixtures/augment; docs/augmentations.md lists each fact, its source and every deviation).
// Convention: geometric transforms take any channel count; photometric ones take 1-channel images only.
// Every function here is deterministic: random parameters are drawn elsewhere (augment/pipeline.h).
#pragma once
#include <array>
#include <cstdint>

#include "augment/image.h"

namespace pneumo::aug {

using Lut = std::array<uint8_t, 256>;

// ---- geometry -------------------------------------------------------------------------------------
// cv2.resize(src, (out_width, out_height), INTER_LINEAR) for 8-bit: 11-bit fixed-point weights,
// replicated borders, and OpenCV's vectorised vertical rounding ((((r0>>4)*b0)>>16 + ((r1>>4)*b1)>>16 + 2)>>2).
Image resize_linear(const Image& src, int out_height, int out_width);
// cv2.resize(..., INTER_NEAREST): source index floor(d * src / dst), clamped.
Image resize_nearest(const Image& src, int out_height, int out_width);

// A 2x3 affine matrix in OpenCV's order [m0 m1 m2; m3 m4 m5], mapping source to destination.
struct Affine {
  double m[6] = {1, 0, 0, 0, 1, 0};
};
// albumentations 0.3 F.shift_scale_rotate: cv2.getRotationMatrix2D((w/2, h/2), angle_deg, scale), then
// m2 += dx * width, m5 += dy * height.
Affine shift_scale_rotate_matrix(double angle_deg, double scale, double dx, double dy, int height, int width);
// cv2.invertAffineTransform (warpAffine without WARP_INVERSE_MAP inverts the matrix this way).
Affine invert_affine(const Affine& a);
// cv2.warpAffine(src, M, (w, h), INTER_LINEAR or INTER_NEAREST, BORDER_CONSTANT, value 0) with OpenCV's
// fixed point: source coordinates in 1/1024 (rounded), bilinear weights in 1/32 steps, 15-bit result.
Image warp_affine(const Image& src, const Affine& forward, bool nearest);

// np.ascontiguousarray(img[:, ::-1])
Image hflip(const Image& src);

// ---- photometric (1 channel) --------------------------------------------------------------------------
Image apply_lut(const Image& src, const Lut& lut);
// albumentations 0.3 F.gamma_transform for uint8: LUT[i] = uint8(trunc((i/255) ** (1/gamma) * 255)).
Lut gamma_lut(double gamma);
// albumentations 0.3 F.brightness_contrast_adjust for uint8 (LUT form of PR #269): in float32,
// LUT[i] = trunc(clip(i * alpha + beta * mean(img), 0, 255)); mean over the whole image, in double.
Lut brightness_contrast_lut(double alpha, double beta, double image_mean);
double image_mean(const Image& src);

// cv::CLAHE (clahe.cpp) on a 1-channel 8-bit image: tiles over the image extended by BORDER_REFLECT_101 to a
// multiple of the grid, integer clip limit = max(int(clip_limit * tile_area / 256), 1), clipped counts
// redistributed evenly with the residual spread every 256/residual bins, LUT = round(cdf * (255/area)) in
// float, bilinear interpolation between tile centres in float with round-half-even.
Image clahe(const Image& src, double clip_limit, int tiles_x, int tiles_y);
// The tile look-up tables CLAHE interpolates: [tiles_y][tiles_x][256], and the tile size used.
struct ClaheTables {
  int tiles_x = 0, tiles_y = 0, tile_width = 0, tile_height = 0;
  std::vector<uint8_t> luts;  // tiles_y * tiles_x * 256
};
ClaheTables clahe_tables(const Image& src, double clip_limit, int tiles_x, int tiles_y);
// albumentations 0.3 F.clahe on a 3-channel image (the reference read gray PNGs as 3 equal channels):
// RGB -> Lab, CLAHE on L, Lab -> RGB. For a gray pixel a = b = 128, so this is CLAHE on the lightness
// L8 = 2.55 * L*(v) mapped back through the inverse. The forward table reproduces OpenCV's fixed-point
// RGB2Lab_b exactly (it must: CLAHE magnifies a 1-level change of its input); the inverse comes from the CIE
// formulas in double and is within 1 level of OpenCV's Lab2RGB_b (whose R, G, B differ by 1 for gray).
Lut gray_to_lightness_lut();
Lut lightness_to_gray_lut();
Image clahe_on_lightness(const Image& src, double clip_limit, int tiles_x, int tiles_y);

// cv2.blur(src, (k, k)): box mean with BORDER_REFLECT_101, rounded to nearest.
Image box_blur(const Image& src, int ksize);
// cv2.medianBlur(src, k) for 8-bit: median of the k x k window with BORDER_REPLICATE.
Image median_blur(const Image& src, int ksize);
// A motion-blur kernel: a k x k 0/1 mask holding cv2.line(kernel, (xs, ys), (xe, ye), 1, thickness=1),
// rasterised as OpenCV's 8-connected LineIterator (left to right). Row-major, k*k entries.
std::vector<uint8_t> motion_kernel(int ksize, int xs, int ys, int xe, int ye);
// cv2.filter2D(src, -1, kernel / kernel.sum()) for a 0/1 kernel with n ones: the sum of the covered
// pixels (BORDER_REFLECT_101) divided by n, rounded half to even (OpenCV rounds the float result with rint).
Image motion_blur(const Image& src, const std::vector<uint8_t>& kernel, int ksize);

}  // namespace pneumo::aug
