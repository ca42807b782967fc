// GPU vs CPU for every augmentation kernel and for the whole pipeline: random images of odd sizes and a
// real SIIM radiograph (skipped without ../shared/data). Outputs are poisoned before each launch.
// Tolerances: geometric and photometric results within 1 grey level (the kernels share the CPU's
// arithmetic, so exact equality is expected and the maximum difference is printed); masks exactly equal.
#include <gtest/gtest.h>

#include <cstdio>
#include <array>
#include <cmath>
#include <cstring>
#include <random>

#include "augment/image.h"
#include "augment/pipeline.h"
#include "augment/pipeline_cuda.h"
#include "augment/transforms.h"
#include "kernels/check.h"
#include "kernels/cuda/augment.h"
#include "support/checkers.h"
#include "tensor/cuda_runtime.h"
#include "tests/augment/augment_fixture.h"

namespace pneumo::aug {
namespace {

namespace kc = pneumo::kernels::cuda;

Tensor to_cuda(const Image& img) {
  Tensor t = Tensor::empty({img.height, img.width * img.channels}, DType::U8, Device::cpu());
  std::memcpy(t.data<uint8_t>(), img.data(), img.size());
  return t.to(Device::cuda());
}
Image from_cuda(const Tensor& t, int h, int w, int c = 1) {
  Tensor cpu = t.cpu();
  Image img(h, w, c);
  PNEUMO_CHECK(static_cast<size_t>(cpu.numel()) == img.size(), "from_cuda: size mismatch");
  std::memcpy(img.data(), cpu.data<uint8_t>(), img.size());
  return img;
}
Tensor poisoned(int64_t bytes) { return Tensor::full({bytes}, 171, DType::U8, Device::cuda()); }
cudaStream_t stream() { return cuda::current_stream(0); }

Image random_image(int h, int w, uint64_t seed, int c = 1) {
  Image img(h, w, c);
  std::mt19937_64 gen(seed);
  // Smooth structure plus noise, so CLAHE/blur see realistic histograms.
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k)
        img.at(y, x, k) = static_cast<uint8_t>(
            std::min(255.0, std::max(0.0, 110 + 70 * std::sin(x / 9.0 + k) * std::cos(y / 7.0) + double(gen() % 41) - 20)));
  return img;
}

void expect_within(const Image& gpu, const Image& cpu, int tol, const std::string& what) {
  const test::ImageDiff d = test::image_diff(gpu, cpu);
  std::printf("  %-40s max |gpu - cpu| = %d (%lld values differ)\n", what.c_str(), d.max_abs,
              static_cast<long long>(d.count_differing));
  EXPECT_LE(d.max_abs, tol) << what << ": " << d.count_differing << " values differ, first at " << d.first;
}

const std::pair<int, int> kSizes[] = {{61, 47}, {128, 96}, {255, 257}};

TEST(AugmentGpu, ResizeMatchesCpu) {
  PNEUMO_REQUIRE_CUDA();
  const uint64_t seed = test::fresh_seed();
  for (auto [h, w] : kSizes)
    for (auto [oh, ow] : {std::pair{h / 2 + 3, w * 3 / 4}, std::pair{h + 17, w + 5}}) {
      for (int c : {1, 3}) {
        const Image src = random_image(h, w, seed + h, c);
        const Tensor in = to_cuda(src);
        Tensor lin = poisoned(int64_t(oh) * ow * c), nn = poisoned(int64_t(oh) * ow * c);
        kc::augment_resize_linear_u8(in.data<uint8_t>(), h, w, c, lin.data<uint8_t>(), oh, ow, stream());
        kc::augment_resize_nearest_u8(in.data<uint8_t>(), h, w, c, nn.data<uint8_t>(), oh, ow, stream());
        const std::string tag = std::to_string(h) + "x" + std::to_string(w) + "->" + std::to_string(oh) + "x" +
                                std::to_string(ow) + "x" + std::to_string(c);
        expect_within(from_cuda(lin, oh, ow, c), resize_linear(src, oh, ow), 1, "resize linear " + tag);
        expect_within(from_cuda(nn, oh, ow, c), resize_nearest(src, oh, ow), 0, "resize nearest " + tag);
      }
    }
}

TEST(AugmentGpu, WarpAffineAndFlipMatchCpu) {
  PNEUMO_REQUIRE_CUDA();
  const uint64_t seed = test::fresh_seed();
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> U(-1, 1);
  for (auto [h, w] : kSizes) {
    const Image src = random_image(h, w, seed + w);
    const Tensor in = to_cuda(src);
    for (int t = 0; t < 4; ++t) {
      const double angle = t == 0 ? 0 : 20 * U(gen), scale = t == 0 ? 1 : 1 + 0.2 * U(gen);
      const double dx = t == 0 ? 0 : 0.2 * U(gen), dy = t == 0 ? 0 : 0.2 * U(gen);
      const Affine fwd = shift_scale_rotate_matrix(angle, scale, dx, dy, h, w);
      const Affine inv = invert_affine(fwd);
      for (bool nearest : {false, true}) {
        Tensor out = poisoned(int64_t(h) * w);
        kc::augment_warp_affine_u8(in.data<uint8_t>(), h, w, 1, inv.m, nearest, out.data<uint8_t>(), stream());
        expect_within(from_cuda(out, h, w), warp_affine(src, fwd, nearest), nearest ? 0 : 1,
                      std::string(nearest ? "warp nearest " : "warp linear ") + std::to_string(h) + "x" + std::to_string(w));
      }
    }
    Tensor flipped = poisoned(int64_t(h) * w);
    kc::augment_hflip_u8(in.data<uint8_t>(), h, w, 1, flipped.data<uint8_t>(), stream());
    expect_within(from_cuda(flipped, h, w), hflip(src), 0, "hflip");
  }
}

TEST(AugmentGpu, PhotometricMatchesCpu) {
  PNEUMO_REQUIRE_CUDA();
  const uint64_t seed = test::fresh_seed();
  for (auto [h, w] : kSizes) {
    const Image src = random_image(h, w, seed + h * w);
    const Tensor in = to_cuda(src);
    const int64_t n = int64_t(h) * w;
    const std::string tag = " " + std::to_string(h) + "x" + std::to_string(w);
    for (double g : {0.6, 0.93, 1.2}) {
      Tensor out = poisoned(n);
      kc::AugmentLut lut;
      const Lut host = gamma_lut(g);
      std::memcpy(lut.v, host.data(), 256);
      kc::augment_lut_u8(in.data<uint8_t>(), n, lut, out.data<uint8_t>(), stream());
      expect_within(from_cuda(out, h, w), apply_lut(src, host), 0, "gamma" + tag);
    }
    for (auto [a, b] : {std::pair{1.17, -0.13}, std::pair{0.83, 0.19}, std::pair{1.0, 0.07}}) {
      Tensor out = poisoned(n), sum = Tensor::empty({1}, DType::I64, Device::cuda());
      auto* s = reinterpret_cast<unsigned long long*>(sum.raw_data());
      kc::augment_sum_u8(in.data<uint8_t>(), n, s, stream());
      kc::augment_brightness_contrast_u8(in.data<uint8_t>(), n, a, b, s, out.data<uint8_t>(), stream());
      expect_within(from_cuda(out, h, w), apply_lut(src, brightness_contrast_lut(a, b, image_mean(src))), 1,
                    "brightness/contrast" + tag);
    }
    for (double clip : {1.0, 2.7, 4.0}) {
      for (bool lightness : {false, true}) {
        Tensor out = poisoned(n), tables = poisoned(16 * 256);
        kc::AugmentLut pre, post;
        const Lut f = gray_to_lightness_lut(), bk = lightness_to_gray_lut();
        std::memcpy(pre.v, f.data(), 256);
        std::memcpy(post.v, bk.data(), 256);
        kc::augment_clahe_u8(in.data<uint8_t>(), h, w, clip, 4, 4, lightness ? &pre : nullptr, lightness ? &post : nullptr,
                             tables.data<uint8_t>(), out.data<uint8_t>(), stream());
        const Image ref = lightness ? clahe_on_lightness(src, clip, 4, 4) : clahe(src, clip, 4, 4);
        expect_within(from_cuda(out, h, w), ref, 1, std::string(lightness ? "clahe lightness" : "clahe gray") + tag);
      }
    }
  }
}

TEST(AugmentGpu, BlursMatchCpu) {
  PNEUMO_REQUIRE_CUDA();
  const uint64_t seed = test::fresh_seed();
  for (auto [h, w] : kSizes) {
    const Image src = random_image(h, w, seed ^ (h * 31 + w));
    const Tensor in = to_cuda(src);
    const int64_t n = int64_t(h) * w;
    const std::string tag = " " + std::to_string(h) + "x" + std::to_string(w);
    Tensor box = poisoned(n), med = poisoned(n);
    kc::augment_box_blur_u8(in.data<uint8_t>(), h, w, 3, box.data<uint8_t>(), stream());
    kc::augment_median_blur_u8(in.data<uint8_t>(), h, w, 3, med.data<uint8_t>(), stream());
    expect_within(from_cuda(box, h, w), box_blur(src, 3), 1, "box blur" + tag);
    expect_within(from_cuda(med, h, w), median_blur(src, 3), 0, "median blur" + tag);
    for (auto [xs, ys, xe, ye] : {std::array{0, 0, 2, 1}, std::array{1, 0, 1, 2}, std::array{2, 2, 0, 0}}) {
      const auto k = motion_kernel(3, xs, ys, xe, ye);
      kc::AugmentMotionKernel mk{};
      std::memcpy(mk.v, k.data(), k.size());
      Tensor out = poisoned(n);
      kc::augment_motion_blur_u8(in.data<uint8_t>(), h, w, mk, 3, out.data<uint8_t>(), stream());
      expect_within(from_cuda(out, h, w), motion_blur(src, k, 3), 1, "motion blur" + tag);
    }
  }
}

TEST(AugmentGpu, NormalizeMatchesCpu) {
  PNEUMO_REQUIRE_CUDA();
  const Image src = random_image(37, 53, test::fresh_seed());
  const Tensor gpu = normalize_imagenet_cuda(to_cuda(src).reshape({37, 53})).cpu();
  const Tensor cpu = normalize_imagenet(src);
  ASSERT_EQ(gpu.shape(), cpu.shape());
  for (int64_t i = 0; i < cpu.numel(); ++i) ASSERT_EQ(gpu.data<float>()[i], cpu.data<float>()[i]) << i;
}

void check_pipeline(const Image& image, const Image& mask, int size, int draws, uint64_t seed) {
  const Pipeline pipe = reference_train_pipeline(size);
  std::vector<AugmentParams> params;
  for (int i = 0; i < draws; ++i) params.push_back(pipe.draw(seed, i));
  // Batch of `draws` copies of the same image, each with its own parameters.
  Tensor images = Tensor::empty({draws, image.height, image.width}, DType::U8, Device::cpu());
  Tensor masks = Tensor::empty({draws, image.height, image.width}, DType::U8, Device::cpu());
  for (int i = 0; i < draws; ++i) {
    std::memcpy(images.data<uint8_t>() + i * image.size(), image.data(), image.size());
    std::memcpy(masks.data<uint8_t>() + i * mask.size(), mask.data(), mask.size());
  }
  const AugmentedTensors out = apply_batch_cuda(params, images.to(Device::cuda()), masks.to(Device::cuda()));
  const Tensor gi = out.image.cpu(), gm = out.mask.cpu();
  for (int i = 0; i < draws; ++i) {
    Image ci = image, cm = mask;
    apply_params(params[i], ci, &cm);
    Image g(size, size), m(size, size);
    std::memcpy(g.data(), gi.data<uint8_t>() + i * g.size(), g.size());
    std::memcpy(m.data(), gm.data<uint8_t>() + i * m.size(), m.size());
    expect_within(g, ci, 1, "pipeline image [" + params[i].describe() + "]");
    expect_within(m, cm, 0, "pipeline mask");
  }
}

TEST(AugmentGpu, PipelineMatchesCpuOnRandomImages) {
  PNEUMO_REQUIRE_CUDA();
  const uint64_t seed = test::fresh_seed();
  Image img = random_image(150, 130, seed), mask(150, 130);
  for (int y = 40; y < 90; ++y)
    for (int x = 30; x < 100; ++x) mask.at(y, x) = 255;
  check_pipeline(img, mask, 96, 24, seed);
}

TEST(AugmentGpu, PipelineMatchesCpuOnARealRadiograph) {
  PNEUMO_REQUIRE_CUDA();
  PNEUMO_REQUIRE_DATA(folder, "siim/sample");
  const std::string name = "1.2.276.0.7230010.3.1.4.8323329.4440.1517875182.865105.jpg";
  if (!image_io_available()) GTEST_SKIP() << "built without stb: cannot read JPEG";
  const Image image = read_image(folder + "/images/" + name);
  Image mask = read_image(folder + "/masks/" + name);
  for (auto& p : mask.pixels) p = p > 127 ? 255 : 0;
  check_pipeline(image, mask, 1024, 12, test::fresh_seed());
  check_pipeline(image, mask, 768, 6, test::fresh_seed());
}

}  // namespace
}  // namespace pneumo::aug
