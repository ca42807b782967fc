// Standalone GPU check of the augmentation kernels, outside the CMake build (it needs neither the tensor
// runtime nor GoogleTest, so it runs before/without the CUDA core): every kernel and the raw pipeline entry
// point against the CPU reference, plus GPU throughput. tests/augment/augment_gpu_test.cpp is the gtest twin.
// Build and run from the repository root (pick your GPU's arch):
//   nvcc -std=c++17 -O2 -arch=sm_90 --expt-relaxed-constexpr -I. -DPNEUMO_WITH_CUDA=1 \
//     tests/augment/augment_standalone_gpu_check.cu augment/pipeline_cuda_raw.cu kernels/cuda/augment.cu \
//     augment/transforms.cpp augment/pipeline.cpp kernels/check.cpp -o augcheck
//   ./augcheck [image.raw mask.raw]   (1024x1024 8-bit raw gray image and 0/255 mask; default: synthetic)
#include <cuda_runtime.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>
#include <vector>
#include "augment/pipeline.h"
#include "augment/pipeline_cuda.h"
#include "augment/transforms.h"
#include "kernels/cuda/augment.h"
using namespace pneumo::aug;
namespace kc = pneumo::kernels::cuda;
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e), __LINE__); exit(2);} } while (0)
static int failures = 0;
struct Dev { uint8_t* p = nullptr; size_t n = 0; explicit Dev(size_t n_) : n(n_) { CK(cudaMalloc(&p, n ? n : 1)); CK(cudaMemset(p, 171, n)); } ~Dev() { cudaFree(p); } };
Dev up(const Image& im) { Dev d(im.size()); CK(cudaMemcpy(d.p, im.data(), im.size(), cudaMemcpyHostToDevice)); return d; }
Image down(const Dev& d, int h, int w, int c = 1) { CK(cudaDeviceSynchronize()); Image im(h, w, c); CK(cudaMemcpy(im.data(), d.p, im.size(), cudaMemcpyDeviceToHost)); return im; }
void cmp(const Image& g, const Image& c, int tol, const std::string& what) {
  int mx = 0; long nd = 0;
  if (g.size() != c.size()) { printf("FAIL %s size\n", what.c_str()); ++failures; return; }
  for (size_t i = 0; i < g.size(); ++i) { int d = std::abs(int(g.pixels[i]) - int(c.pixels[i])); if (d) { ++nd; mx = std::max(mx, d); } }
  bool ok = mx <= tol; if (!ok) ++failures;
  printf("%s %-44s max|gpu-cpu|=%d differing=%ld of %zu\n", ok ? "ok  " : "FAIL", what.c_str(), mx, nd, g.size());
}
Image rnd(int h, int w, uint64_t s, int c = 1) { Image im(h, w, c); std::mt19937_64 g(s);
  for (int y = 0; y < h; ++y) for (int x = 0; x < w; ++x) for (int k = 0; k < c; ++k)
    im.at(y, x, k) = (uint8_t)std::min(255.0, std::max(0.0, 110 + 70 * std::sin(x / 9.0 + k) * std::cos(y / 7.0) + double(g() % 41) - 20));
  return im; }
int main(int argc, char** argv) {
  cudaDeviceProp prop; CK(cudaGetDeviceProperties(&prop, 0)); printf("device: %s\n", prop.name);
  cudaStream_t s = 0;
  Image real(1024, 1024), realmask(1024, 1024);
  if (argc >= 3) {
    std::ifstream a(argv[1], std::ios::binary), b(argv[2], std::ios::binary);
    a.read((char*)real.data(), real.size()); b.read((char*)realmask.data(), realmask.size());
    if (!a || !b) { printf("cannot read %s / %s (1024x1024 raw bytes each)\n", argv[1], argv[2]); return 3; }
  } else {
    real = rnd(1024, 1024, 4);
    for (int y = 300; y < 600; ++y) for (int x = 200; x < 500; ++x) realmask.at(y, x) = 255;
  }
  std::vector<Image> imgs = {rnd(61, 47, 1), rnd(128, 96, 2), rnd(255, 257, 3), real};
  for (const Image& src : imgs) {
    int h = src.height, w = src.width; std::string t = " " + std::to_string(h) + "x" + std::to_string(w);
    Dev in = up(src); int64_t n = int64_t(h) * w;
    for (auto [oh, ow] : {std::pair{h / 2 + 3, w * 3 / 4}, std::pair{h + 17, w + 5}}) {
      Dev a(size_t(oh) * ow), b(size_t(oh) * ow);
      kc::augment_resize_linear_u8(in.p, h, w, 1, a.p, oh, ow, s); kc::augment_resize_nearest_u8(in.p, h, w, 1, b.p, oh, ow, s);
      cmp(down(a, oh, ow), resize_linear(src, oh, ow), 1, "resize linear" + t + "->" + std::to_string(oh));
      cmp(down(b, oh, ow), resize_nearest(src, oh, ow), 0, "resize nearest" + t + "->" + std::to_string(oh));
    }
    std::mt19937_64 g(h * 7 + w); std::uniform_real_distribution<double> U(-1, 1);
    for (int k = 0; k < 4; ++k) {
      double ang = k ? 20 * U(g) : 0, sc = k ? 1 + .2 * U(g) : 1, dx = k ? .2 * U(g) : 0, dy = k ? .2 * U(g) : 0;
      Affine f = shift_scale_rotate_matrix(ang, sc, dx, dy, h, w), inv = invert_affine(f);
      for (bool nn : {false, true}) { Dev o(n); kc::augment_warp_affine_u8(in.p, h, w, 1, inv.m, nn, o.p, s); cmp(down(o, h, w), warp_affine(src, f, nn), nn ? 0 : 1, std::string(nn ? "warp nearest" : "warp linear") + t); }
    }
    { Dev o(n); kc::augment_hflip_u8(in.p, h, w, 1, o.p, s); cmp(down(o, h, w), hflip(src), 0, "hflip" + t); }
    for (double gm : {0.6, 0.93, 1.2}) { Dev o(n); kc::AugmentLut l; Lut hl = gamma_lut(gm); memcpy(l.v, hl.data(), 256); kc::augment_lut_u8(in.p, n, l, o.p, s); cmp(down(o, h, w), apply_lut(src, hl), 0, "gamma" + t); }
    for (auto [al, be] : {std::pair{1.17, -0.13}, std::pair{0.83, 0.19}, std::pair{1.0, 0.07}}) {
      Dev o(n), sum(8); kc::augment_sum_u8(in.p, n, (unsigned long long*)sum.p, s);
      kc::augment_brightness_contrast_u8(in.p, n, al, be, (unsigned long long*)sum.p, o.p, s);
      cmp(down(o, h, w), apply_lut(src, brightness_contrast_lut(al, be, image_mean(src))), 1, "brightness/contrast" + t); }
    for (double clip : {1.0, 2.7, 4.0}) for (bool lt : {false, true}) {
      Dev o(n), tab(16 * 256); kc::AugmentLut pre, post; Lut f = gray_to_lightness_lut(), bk = lightness_to_gray_lut(); memcpy(pre.v, f.data(), 256); memcpy(post.v, bk.data(), 256);
      kc::augment_clahe_u8(in.p, h, w, clip, 4, 4, lt ? &pre : nullptr, lt ? &post : nullptr, tab.p, o.p, s);
      cmp(down(o, h, w), lt ? clahe_on_lightness(src, clip, 4, 4) : clahe(src, clip, 4, 4), 1, std::string(lt ? "clahe lightness " : "clahe gray ") + std::to_string(clip) + t); }
    { Dev o(n); kc::augment_box_blur_u8(in.p, h, w, 3, o.p, s); cmp(down(o, h, w), box_blur(src, 3), 1, "box blur" + t); }
    { Dev o(n); kc::augment_median_blur_u8(in.p, h, w, 3, o.p, s); cmp(down(o, h, w), median_blur(src, 3), 0, "median blur" + t); }
    for (auto L : {std::array<int,4>{0, 0, 2, 1}, std::array<int,4>{1, 0, 1, 2}, std::array<int,4>{2, 2, 0, 0}}) {
      auto k = motion_kernel(3, L[0], L[1], L[2], L[3]); kc::AugmentMotionKernel mk{}; memcpy(mk.v, k.data(), 9);
      Dev o(n); kc::augment_motion_blur_u8(in.p, h, w, mk, 3, o.p, s); cmp(down(o, h, w), motion_blur(src, k, 3), 1, "motion blur" + t); }
    { Dev o(n * 12); float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
      kc::augment_normalize_u8_to_f32(in.p, n, mean, sd, (float*)o.p, s); CK(cudaDeviceSynchronize());
      std::vector<float> gv(n * 3); CK(cudaMemcpy(gv.data(), o.p, n * 12, cudaMemcpyDeviceToHost)); long bad = 0;
      for (int64_t i = 0; i < n; ++i) for (int c = 0; c < 3; ++c) { float ref = (float(src.pixels[i]) - mean[c] * 255.0f) * (1.0f / (sd[c] * 255.0f)); bad += gv[i * 3 + c] != ref; }
      printf("%s normalize%s: %ld mismatching floats\n", bad ? "FAIL" : "ok  ", t.c_str(), bad); failures += bad != 0; }
  }
  // Whole pipeline on the 1024 image.
  for (int size : {1024, 768}) {
    Pipeline pipe = reference_train_pipeline(size); int draws = size == 1024 ? 48 : 24;
    std::vector<AugmentParams> ps; for (int i = 0; i < draws; ++i) ps.push_back(pipe.draw(20240601, i));
    std::vector<Image> ci(draws, real), cm(draws, realmask);
    std::vector<std::thread> th; unsigned nt = std::max(1u, std::thread::hardware_concurrency());
    auto t0 = std::chrono::steady_clock::now();
    for (unsigned t = 0; t < nt; ++t) th.emplace_back([&, t] { for (int i = t; i < draws; i += nt) apply_params(ps[i], ci[i], &cm[i]); });
    for (auto& x : th) x.join();
    double cpu_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    Dev din = up(real), dm = up(realmask); int mx = 0, mmx = 0; long nd = 0;
    for (int i = 0; i < draws; ++i) {
      Dev oi(size_t(size) * size), om(size_t(size) * size), sc(augment_scratch_bytes(ps[i], 1024, 1024));
      apply_params_cuda_raw(ps[i], din.p, dm.p, 1024, 1024, oi.p, om.p, sc.p, s);
      Image g = down(oi, size, size), m = down(om, size, size);
      for (size_t k = 0; k < g.size(); ++k) { int d = std::abs(int(g.pixels[k]) - int(ci[i].pixels[k])); if (d) { ++nd; mx = std::max(mx, d); } mmx = std::max(mmx, std::abs(int(m.pixels[k]) - int(cm[i].pixels[k]))); }
      if (mx > 1 || mmx) { printf("FAIL pipeline draw %d: %s\n", i, ps[i].describe().c_str()); ++failures; break; }
    }
    printf("%s pipeline %d draws at %d on the 1024 image: image max diff %d (%ld values differ), mask max diff %d; CPU %u threads %.1f images/s\n",
           (mx <= 1 && !mmx) ? "ok  " : "FAIL", draws, size, mx, nd, mmx, nt, draws / cpu_s);
    // GPU throughput: all draws back to back on one stream, preallocated buffers.
    Dev oi(size_t(size) * size), om(size_t(size) * size), sc(augment_scratch_bytes(ps[0], 1024, 1024) + (1 << 20));
    cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
    for (int i = 0; i < draws; ++i) apply_params_cuda_raw(ps[i], din.p, dm.p, 1024, 1024, oi.p, om.p, sc.p, s);
    cudaEventRecord(e0, s); int reps = 4;
    for (int r = 0; r < reps; ++r) for (int i = 0; i < draws; ++i) apply_params_cuda_raw(ps[i], din.p, dm.p, 1024, 1024, oi.p, om.p, sc.p, s);
    cudaEventRecord(e1, s); cudaEventSynchronize(e1); float ms = 0; cudaEventElapsedTime(&ms, e0, e1);
    printf("GPU pipeline at %d (image+mask, params drawn on host): %.0f images/s (%.3f ms each)\n", size, reps * draws / (ms / 1e3), ms / (reps * draws));
  }
  printf("%s: %d failures\n", failures ? "FAILED" : "ALL OK", failures);
  return failures ? 1 : 0;
}
