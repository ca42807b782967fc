// CUDA kernels of the augmentation transforms (see kernels/cuda/augment.h). One thread per output pixel
// for the per-pixel transforms; CLAHE builds its tile tables with one block per tile (shared-memory integer
// histogram, then one thread clips and accumulates exactly as the CPU loop does). All rounding comes from
// kernels/augment_math.h, whose *_rn helpers keep nvcc from fusing multiply-adds that OpenCV does not fuse.
#include "kernels/cuda/augment.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/augment_math.h"
#include "kernels/cuda/cuda_util.cuh"

namespace pneumo::kernels::cuda {

namespace am = pneumo::augmath;

namespace {

struct Matrix6 {
  double m[6];
};

__global__ void resize_linear_kernel(const uint8_t* __restrict__ src, int sh, int sw, int C, uint8_t* __restrict__ dst,
                                     int dh, int dw, double scale_x, double scale_y) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(dh) * dw) return;
  const int y = static_cast<int>(i / dw), x = static_cast<int>(i % dw);
  int sx, w0, w1, sy, b0, b1;
  am::resize_linear_coefficients(x, scale_x, sw, true, sx, w0, w1);
  am::resize_linear_coefficients(y, scale_y, sh, false, sy, b0, b1);
  const int sx1 = min(sx + 1, sw - 1);
  const uint8_t* r0 = src + static_cast<int64_t>(am::clamp_int(sy, 0, sh - 1)) * sw * C;
  const uint8_t* r1 = src + static_cast<int64_t>(am::clamp_int(sy + 1, 0, sh - 1)) * sw * C;
  for (int c = 0; c < C; ++c) {
    const int h0 = r0[sx * C + c] * w0 + r0[sx1 * C + c] * w1;
    const int h1 = r1[sx * C + c] * w0 + r1[sx1 * C + c] * w1;
    dst[i * C + c] = am::resize_vertical(h0, h1, b0, b1);
  }
}

__global__ void resize_nearest_kernel(const uint8_t* __restrict__ src, int sh, int sw, int C, uint8_t* __restrict__ dst,
                                      int dh, int dw, double fx, double fy) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(dh) * dw) return;
  const int y = static_cast<int>(i / dw), x = static_cast<int>(i % dw);
  const int sy = min(static_cast<int>(floor(am::dmul(static_cast<double>(y), fy))), sh - 1);
  const int sx = min(static_cast<int>(floor(am::dmul(static_cast<double>(x), fx))), sw - 1);
  for (int c = 0; c < C; ++c) dst[i * C + c] = src[(static_cast<int64_t>(sy) * sw + sx) * C + c];
}

__global__ void warp_affine_kernel(const uint8_t* __restrict__ src, int h, int w, int C, Matrix6 inv, bool nearest,
                                   uint8_t* __restrict__ dst) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(h) * w) return;
  const int y = static_cast<int>(i / w), x = static_cast<int>(i % w);
  int sx, sy;
  am::warp_source_fixed(inv.m, x, y, nearest, sx, sy);
  for (int c = 0; c < C; ++c) {
    if (nearest)
      dst[i * C + c] = (sx >= 0 && sx < w && sy >= 0 && sy < h) ? src[(static_cast<int64_t>(sy) * w + sx) * C + c] : 0;
    else
      dst[i * C + c] = am::warp_bilinear_sample(src, h, w, C, c, sx, sy);
  }
}

__global__ void hflip_kernel(const uint8_t* __restrict__ src, int h, int w, int C, uint8_t* __restrict__ dst) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(h) * w) return;
  const int64_t y = i / w;
  const int x = static_cast<int>(i % w);
  for (int c = 0; c < C; ++c) dst[i * C + c] = src[(y * w + (w - 1 - x)) * C + c];
}

__global__ void lut_kernel(const uint8_t* __restrict__ src, int64_t n, AugmentLut lut, uint8_t* __restrict__ dst) {
  __shared__ uint8_t table[256];
  for (int k = threadIdx.x; k < 256; k += blockDim.x) table[k] = lut.v[k];
  __syncthreads();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = table[src[i]];
}

__global__ void sum_kernel(const uint8_t* __restrict__ src, int64_t n, unsigned long long* sum) {
  unsigned long long local = 0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    local += src[i];
  for (int offset = 16; offset > 0; offset >>= 1) local += __shfl_down_sync(0xffffffffu, local, offset);
  if ((threadIdx.x & 31) == 0) atomicAdd(sum, local);  // integer: order does not matter
}

__global__ void brightness_contrast_kernel(const uint8_t* __restrict__ src, int64_t n, float alpha_f, bool use_alpha,
                                           double beta, bool use_beta, const unsigned long long* sum,
                                           uint8_t* __restrict__ dst) {
  __shared__ uint8_t table[256];
  const double mean = static_cast<double>(*sum) / static_cast<double>(n);
  const float shift_f = static_cast<float>(am::dmul(beta, mean));
  for (int k = threadIdx.x; k < 256; k += blockDim.x) {
    float v = static_cast<float>(k);
    if (use_alpha) v = am::fmul(v, alpha_f);
    if (use_beta) v = am::fadd(v, shift_f);
    v = fminf(255.f, fmaxf(0.f, v));
    table[k] = static_cast<uint8_t>(v);
  }
  __syncthreads();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = table[src[i]];
}

struct ClaheGeometry {
  int h, w, tiles_x, tiles_y, tile_w, tile_h, clip;
  float lut_scale, inv_tw, inv_th;
};

// One block per tile: integer histogram in shared memory, then thread 0 clips, redistributes and
// accumulates in the CPU's order.
__global__ void clahe_tables_kernel(const uint8_t* __restrict__ src, ClaheGeometry g, AugmentLut pre, bool use_pre,
                                    uint8_t* __restrict__ tile_luts) {
  __shared__ int hist[256];
  const int tx = blockIdx.x % g.tiles_x, ty = blockIdx.x / g.tiles_x;
  for (int k = threadIdx.x; k < 256; k += blockDim.x) hist[k] = 0;
  __syncthreads();
  const int area = g.tile_w * g.tile_h;
  for (int k = threadIdx.x; k < area; k += blockDim.x) {
    const int y = am::reflect101(ty * g.tile_h + k / g.tile_w, g.h);
    const int x = am::reflect101(tx * g.tile_w + k % g.tile_w, g.w);
    uint8_t v = src[static_cast<int64_t>(y) * g.w + x];
    if (use_pre) v = pre.v[v];
    atomicAdd(&hist[v], 1);
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  if (g.clip > 0) {
    int clipped = 0;
    for (int i = 0; i < 256; ++i)
      if (hist[i] > g.clip) {
        clipped += hist[i] - g.clip;
        hist[i] = g.clip;
      }
    const int batch = clipped / 256;
    int residual = clipped - batch * 256;
    for (int i = 0; i < 256; ++i) hist[i] += batch;
    if (residual != 0) {
      const int step = max(256 / residual, 1);
      for (int i = 0; i < 256 && residual > 0; i += step, --residual) ++hist[i];
    }
  }
  uint8_t* lut = tile_luts + static_cast<int64_t>(blockIdx.x) * 256;
  int sum = 0;
  for (int i = 0; i < 256; ++i) {
    sum += hist[i];
    lut[i] = am::saturate_u8(am::round_even_f(am::fmul(static_cast<float>(sum), g.lut_scale)));
  }
}

__global__ void clahe_apply_kernel(const uint8_t* __restrict__ src, ClaheGeometry g, AugmentLut pre, bool use_pre,
                                   AugmentLut post, bool use_post, const uint8_t* __restrict__ tile_luts,
                                   uint8_t* __restrict__ dst) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(g.h) * g.w) return;
  const int y = static_cast<int>(i / g.w), x = static_cast<int>(i % g.w);
  int ty1, ty2, tx1, tx2;
  float ya, xa;
  am::clahe_axis(y, g.inv_th, g.tiles_y, ty1, ty2, ya);
  am::clahe_axis(x, g.inv_tw, g.tiles_x, tx1, tx2, xa);
  int v = src[i];
  if (use_pre) v = pre.v[v];
  auto L = [&](int ty, int tx) { return static_cast<int>(tile_luts[(static_cast<int64_t>(ty) * g.tiles_x + tx) * 256 + v]); };
  uint8_t out = am::clahe_blend(L(ty1, tx1), L(ty1, tx2), L(ty2, tx1), L(ty2, tx2), xa, ya);
  if (use_post) out = post.v[out];
  dst[i] = out;
}

__global__ void box_blur_kernel(const uint8_t* __restrict__ src, int h, int w, int k, uint8_t* __restrict__ dst) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(h) * w) return;
  const int y = static_cast<int>(i / w), x = static_cast<int>(i % w), r = k / 2;
  int sum = 0;
  for (int dy = -r; dy <= r; ++dy) {
    const uint8_t* row = src + static_cast<int64_t>(am::reflect101(y + dy, h)) * w;
    for (int dx = -r; dx <= r; ++dx) sum += row[am::reflect101(x + dx, w)];
  }
  dst[i] = static_cast<uint8_t>(am::div_round_half_even(sum, k * k));
}

__global__ void median_blur_kernel(const uint8_t* __restrict__ src, int h, int w, int k, uint8_t* __restrict__ dst) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(h) * w) return;
  const int y = static_cast<int>(i / w), x = static_cast<int>(i % w), r = k / 2, n = k * k;
  uint8_t win[25];
  int m = 0;
  for (int dy = -r; dy <= r; ++dy)
    for (int dx = -r; dx <= r; ++dx)
      win[m++] = src[static_cast<int64_t>(am::clamp_int(y + dy, 0, h - 1)) * w + am::clamp_int(x + dx, 0, w - 1)];
  // Partial selection sort up to the middle element.
  for (int a = 0; a <= n / 2; ++a)
    for (int b = a + 1; b < n; ++b)
      if (win[b] < win[a]) {
        const uint8_t t = win[a];
        win[a] = win[b];
        win[b] = t;
      }
  dst[i] = win[n / 2];
}

__global__ void motion_blur_kernel(const uint8_t* __restrict__ src, int h, int w, AugmentMotionKernel kern, int k,
                                   int count, uint8_t* __restrict__ dst) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(h) * w) return;
  const int y = static_cast<int>(i / w), x = static_cast<int>(i % w), r = k / 2;
  int sum = 0;
  for (int a = 0; a < k; ++a)
    for (int b = 0; b < k; ++b)
      if (kern.v[a * k + b]) sum += src[static_cast<int64_t>(am::reflect101(y + a - r, h)) * w + am::reflect101(x + b - r, w)];
  dst[i] = static_cast<uint8_t>(am::div_round_half_even(sum, count));
}

struct Normalize3 {
  float mean[3], inv[3];
};
__global__ void normalize_kernel(const uint8_t* __restrict__ src, int64_t n, Normalize3 p, float* __restrict__ dst) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const float v = static_cast<float>(src[i]);
  for (int c = 0; c < 3; ++c) dst[i * 3 + c] = am::fmul(v - p.mean[c], p.inv[c]);
}

unsigned grid_stride_blocks(int64_t n) { return static_cast<unsigned>(std::min<int64_t>(blocks_exact(n), 1024)); }

void check_size(int h, int w, int c, const char* what) {
  PNEUMO_CHECK(h > 0 && w > 0 && c > 0, what, ": bad image size ", h, "x", w, "x", c);
}

}  // namespace

void augment_resize_linear_u8(const uint8_t* src, int src_h, int src_w, int channels, uint8_t* dst, int dst_h,
                              int dst_w, cudaStream_t stream) {
  check_size(src_h, src_w, channels, "augment_resize_linear_u8");
  check_size(dst_h, dst_w, channels, "augment_resize_linear_u8");
  if (src_h == dst_h && src_w == dst_w) {  // cv2.resize copies
    PNEUMO_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(src_h) * src_w * channels, cudaMemcpyDeviceToDevice, stream));
    return;
  }
  const double scale_x = 1.0 / (static_cast<double>(dst_w) / src_w), scale_y = 1.0 / (static_cast<double>(dst_h) / src_h);
  resize_linear_kernel<<<blocks_exact(int64_t(dst_h) * dst_w), kThreads, 0, stream>>>(src, src_h, src_w, channels, dst,
                                                                                   dst_h, dst_w, scale_x, scale_y);
  PNEUMO_LAUNCH_CHECK("augment_resize_linear_u8");
}

void augment_resize_nearest_u8(const uint8_t* src, int src_h, int src_w, int channels, uint8_t* dst, int dst_h,
                               int dst_w, cudaStream_t stream) {
  check_size(src_h, src_w, channels, "augment_resize_nearest_u8");
  check_size(dst_h, dst_w, channels, "augment_resize_nearest_u8");
  if (src_h == dst_h && src_w == dst_w) {
    PNEUMO_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(src_h) * src_w * channels, cudaMemcpyDeviceToDevice, stream));
    return;
  }
  const double fx = 1.0 / (static_cast<double>(dst_w) / src_w), fy = 1.0 / (static_cast<double>(dst_h) / src_h);
  resize_nearest_kernel<<<blocks_exact(int64_t(dst_h) * dst_w), kThreads, 0, stream>>>(src, src_h, src_w, channels, dst,
                                                                                    dst_h, dst_w, fx, fy);
  PNEUMO_LAUNCH_CHECK("augment_resize_nearest_u8");
}

void augment_warp_affine_u8(const uint8_t* src, int h, int w, int channels, const double inverse[6], bool nearest,
                            uint8_t* dst, cudaStream_t stream) {
  check_size(h, w, channels, "augment_warp_affine_u8");
  Matrix6 m;
  for (int k = 0; k < 6; ++k) m.m[k] = inverse[k];
  warp_affine_kernel<<<blocks_exact(int64_t(h) * w), kThreads, 0, stream>>>(src, h, w, channels, m, nearest, dst);
  PNEUMO_LAUNCH_CHECK("augment_warp_affine_u8");
}

void augment_hflip_u8(const uint8_t* src, int h, int w, int channels, uint8_t* dst, cudaStream_t stream) {
  check_size(h, w, channels, "augment_hflip_u8");
  hflip_kernel<<<blocks_exact(int64_t(h) * w), kThreads, 0, stream>>>(src, h, w, channels, dst);
  PNEUMO_LAUNCH_CHECK("augment_hflip_u8");
}

void augment_lut_u8(const uint8_t* src, int64_t n, const AugmentLut& lut, uint8_t* dst, cudaStream_t stream) {
  if (n <= 0) return;
  lut_kernel<<<grid_stride_blocks(n), kThreads, 0, stream>>>(src, n, lut, dst);
  PNEUMO_LAUNCH_CHECK("augment_lut_u8");
}

void augment_sum_u8(const uint8_t* src, int64_t n, unsigned long long* sum, cudaStream_t stream) {
  PNEUMO_CUDA_CHECK(cudaMemsetAsync(sum, 0, sizeof(unsigned long long), stream));
  if (n <= 0) return;
  sum_kernel<<<grid_stride_blocks(n), kThreads, 0, stream>>>(src, n, sum);
  PNEUMO_LAUNCH_CHECK("augment_sum_u8");
}

void augment_brightness_contrast_u8(const uint8_t* src, int64_t n, double alpha, double beta,
                                    const unsigned long long* sum, uint8_t* dst, cudaStream_t stream) {
  if (n <= 0) return;
  brightness_contrast_kernel<<<grid_stride_blocks(n), kThreads, 0, stream>>>(
      src, n, static_cast<float>(alpha), alpha != 1, beta, beta != 0, sum, dst);
  PNEUMO_LAUNCH_CHECK("augment_brightness_contrast_u8");
}

void augment_clahe_u8(const uint8_t* src, int h, int w, double clip_limit, int tiles_x, int tiles_y,
                      const AugmentLut* pre, const AugmentLut* post, uint8_t* tile_luts, uint8_t* dst,
                      cudaStream_t stream) {
  check_size(h, w, 1, "augment_clahe_u8");
  PNEUMO_CHECK(tiles_x > 0 && tiles_y > 0 && w >= tiles_x && h >= tiles_y, "augment_clahe_u8: image ", h, "x", w,
               " and tile grid ", tiles_y, "x", tiles_x, " do not fit");
  ClaheGeometry g;
  g.h = h;
  g.w = w;
  g.tiles_x = tiles_x;
  g.tiles_y = tiles_y;
  g.tile_w = (w % tiles_x ? w + tiles_x - w % tiles_x : w) / tiles_x;
  g.tile_h = (h % tiles_y ? h + tiles_y - h % tiles_y : h) / tiles_y;
  const int area = g.tile_w * g.tile_h;
  g.clip = clip_limit > 0 ? std::max(static_cast<int>(clip_limit * area / 256), 1) : 0;
  g.lut_scale = 255.0f / static_cast<float>(area);
  g.inv_tw = 1.0f / static_cast<float>(g.tile_w);
  g.inv_th = 1.0f / static_cast<float>(g.tile_h);
  AugmentLut identity{};
  clahe_tables_kernel<<<tiles_x * tiles_y, kThreads, 0, stream>>>(src, g, pre ? *pre : identity, pre != nullptr, tile_luts);
  PNEUMO_LAUNCH_CHECK("augment_clahe_u8 (tables)");
  clahe_apply_kernel<<<blocks_exact(int64_t(h) * w), kThreads, 0, stream>>>(
      src, g, pre ? *pre : identity, pre != nullptr, post ? *post : identity, post != nullptr, tile_luts, dst);
  PNEUMO_LAUNCH_CHECK("augment_clahe_u8 (apply)");
}

void augment_box_blur_u8(const uint8_t* src, int h, int w, int ksize, uint8_t* dst, cudaStream_t stream) {
  check_size(h, w, 1, "augment_box_blur_u8");
  PNEUMO_CHECK(ksize >= 1 && ksize % 2 == 1 && ksize <= 31, "augment_box_blur_u8: bad kernel size ", ksize);
  box_blur_kernel<<<blocks_exact(int64_t(h) * w), kThreads, 0, stream>>>(src, h, w, ksize, dst);
  PNEUMO_LAUNCH_CHECK("augment_box_blur_u8");
}

void augment_median_blur_u8(const uint8_t* src, int h, int w, int ksize, uint8_t* dst, cudaStream_t stream) {
  check_size(h, w, 1, "augment_median_blur_u8");
  PNEUMO_CHECK(ksize == 3 || ksize == 5, "augment_median_blur_u8: kernel size 3 or 5 supported, got ", ksize);
  median_blur_kernel<<<blocks_exact(int64_t(h) * w), kThreads, 0, stream>>>(src, h, w, ksize, dst);
  PNEUMO_LAUNCH_CHECK("augment_median_blur_u8");
}

void augment_motion_blur_u8(const uint8_t* src, int h, int w, const AugmentMotionKernel& kernel, int ksize,
                            uint8_t* dst, cudaStream_t stream) {
  check_size(h, w, 1, "augment_motion_blur_u8");
  PNEUMO_CHECK(ksize >= 3 && ksize <= 7 && ksize % 2 == 1, "augment_motion_blur_u8: bad kernel size ", ksize);
  int count = 0;
  for (int k = 0; k < ksize * ksize; ++k) count += kernel.v[k] != 0;
  PNEUMO_CHECK(count > 0, "augment_motion_blur_u8: empty kernel");
  motion_blur_kernel<<<blocks_exact(int64_t(h) * w), kThreads, 0, stream>>>(src, h, w, kernel, ksize, count, dst);
  PNEUMO_LAUNCH_CHECK("augment_motion_blur_u8");
}

void augment_normalize_u8_to_f32(const uint8_t* src, int64_t pixels, const float mean[3], const float stddev[3],
                                 float* dst, cudaStream_t stream) {
  if (pixels <= 0) return;
  Normalize3 p;
  for (int c = 0; c < 3; ++c) {
    p.mean[c] = mean[c] * 255.0f;
    p.inv[c] = 1.0f / (stddev[c] * 255.0f);
  }
  normalize_kernel<<<blocks_exact(pixels), kThreads, 0, stream>>>(src, pixels, p, dst);
  PNEUMO_LAUNCH_CHECK("augment_normalize_u8_to_f32");
}

}  // namespace pneumo::kernels::cuda
