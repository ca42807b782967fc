// pneumo predict's engine: image listing, resizing back, the fold mean, hflip TTA equivariance, real images
// with a tiny network, and clear errors for wrong weights and mixed image sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "augment/image.h"
#include "augment/transforms.h"
#include "nn/checkpoint.h"
#include "nn/models/registry.h"
#include "tests/train/data_test_util.h"
#include "tests/train/pipeline_test_util.h"
#include "train/inference.h"

namespace pneumo {
namespace {

using test::TempDir;

std::shared_ptr<nn::models::Network> tiny(uint64_t seed, const std::string& name = "tiny_unet_se") {
  return test::seeded_model(seed, name);
}

aug::Image pattern(int h, int w, int phase) {
  aug::Image im(h, w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      im.at(y, x) = static_cast<uint8_t>(128 + 100 * std::sin(0.21 * x + 0.13 * y * (1 + phase) + phase) * (x < w / 3 ? 1 : 0.4));
  return im;
}

TEST(Inference, ResizeBilinearIsCv2Linear) {
  // 2 -> 4 upsampling with half-pixel centres: output x samples source (x + 0.5) / 2 - 0.5, clamped.
  const std::vector<float> src = {0, 1};
  const auto up = train::resize_bilinear(src.data(), 1, 2, 1, 4);
  const std::vector<float> want = {0, 0.25f, 0.75f, 1};
  for (size_t i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(up[i], want[i]) << i;
  std::vector<float> c(12, 0.3f);
  for (float v : train::resize_bilinear(c.data(), 3, 4, 7, 5)) EXPECT_FLOAT_EQ(v, 0.3f);
  // Against the 8-bit cv2 resize of the engine (11-bit fixed point): within one level.
  const aug::Image im = pattern(48, 40, 1);
  std::vector<float> f(im.pixels.begin(), im.pixels.end());
  const auto big = train::resize_bilinear(f.data(), 48, 40, 100, 90);
  const aug::Image ref = aug::resize_linear(im, 100, 90);
  for (size_t i = 0; i < big.size(); ++i) ASSERT_NEAR(big[i], ref.pixels[i], 1.0) << i;
}

TEST(Inference, ListsFoldersRecursivelyAndListFiles) {
  TempDir dir;
  aug::write_png(dir.file("b.png"), pattern(32, 32, 0));
  std::filesystem::create_directories(dir.file("study/series"));
  aug::write_png(dir.file("study/series/a.png"), pattern(32, 32, 0));
  test::write_text(dir.file("notes.txt"), "x");
  auto l = train::list_images(dir.path());
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].id, "a");
  EXPECT_EQ(l[1].id, "b");
  test::write_text(dir.file("list.txt"), "# comment\nb.png\n\nstudy/series/a.png\n");
  l = train::list_images(dir.file("list.txt"));
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].id, "b");
  EXPECT_EQ(l[1].path, dir.file("study/series/a.png"));
  aug::write_png(dir.file("study/b.png"), pattern(32, 32, 0));
  test::expect_error_mentions([&] { train::list_images(dir.path()); }, {"'b'", "collide"});
  test::expect_error_mentions([&] { train::list_images(dir.file("nothing")); }, {"nothing"});
}

TEST(Inference, FoldMeanHflipEquivarianceAndMixedSizes) {
  TempDir dir;
  const aug::Image im = pattern(64, 96, 2);
  aug::write_png(dir.file("x.png"), im);
  aug::write_png(dir.file("x_flipped.png"), aug::hflip(im));
  auto a = tiny(1), b = tiny(2);
  train::PredictOptions opt;
  opt.size = 0;
  opt.batch = 2;
  opt.classify = true;
  train::Predictor pa({a}, opt), pb({b}, opt), pab({a, b}, opt);
  const auto prep = train::prepare_image({"x", dir.file("x.png")}, 0);
  const auto ra = pa.predict({prep}), rb = pb.predict({prep}), rab = pab.predict({prep});
  ASSERT_EQ(rab[0].probability.size(), 64u * 96u);
  double spread = 0;
  for (size_t i = 0; i < rab[0].probability.size(); ++i) {
    EXPECT_NEAR(rab[0].probability[i], 0.5f * (ra[0].probability[i] + rb[0].probability[i]), 1e-6);
    spread = std::max(spread, std::abs(static_cast<double>(ra[0].probability[i]) - rb[0].probability[i]));
  }
  EXPECT_GT(spread, 1e-4);  // the two folds differ, so the mean is a real check
  EXPECT_NEAR(rab[0].cls, 0.5 * (ra[0].cls + rb[0].cls), 1e-6);

  opt.hflip = true;
  train::Predictor tta({a, b}, opt);
  // One image per call, so each network pass sees its image at the same batch position.
  const auto both = tta.predict({prep});
  const auto flipped = tta.predict({train::prepare_image({"x_flipped", dir.file("x_flipped.png")}, 0)});
  const auto& p = both[0].probability;
  const auto& q = flipped[0].probability;
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 96; ++x) ASSERT_EQ(p[static_cast<size_t>(y * 96 + x)], q[static_cast<size_t>(y * 96 + 95 - x)]) << y << "," << x;
  EXPECT_EQ(both[0].cls, flipped[0].cls);

  // Mixed sizes cannot share a batch at their own size: the error names both files and the way out.
  aug::write_png(dir.file("y.png"), pattern(96, 96, 3));
  std::vector<train::InputImage> mixed = {{"x", dir.file("x.png")}, {"y", dir.file("y.png")}};
  opt.hflip = false;
  train::Predictor mix({a}, opt);
  test::expect_error_mentions([&] { train::predict_images(mix, mixed, [](const train::ImagePrediction&) {}, false); },
                              {"y.png", "x.png", "--size"});
  // Per image (batch 1) or resized (--size) they are fine, each at its own output size.
  std::vector<std::pair<int, int>> sizes;
  opt.batch = 1;
  train::Predictor one({a}, opt);
  train::predict_images(one, mixed, [&](const train::ImagePrediction& r) { sizes.emplace_back(r.height, r.width); }, false);
  opt.batch = 2;
  opt.size = 32;
  train::Predictor resized({a}, opt);
  train::predict_images(resized, mixed, [&](const train::ImagePrediction& r) {
    sizes.emplace_back(r.height, r.width);
    EXPECT_EQ(r.probability.size(), static_cast<size_t>(r.height) * r.width);
  }, false);
  const std::vector<std::pair<int, int>> want = {{64, 96}, {96, 96}, {64, 96}, {96, 96}};
  EXPECT_EQ(sizes, want);
  // Sides the network cannot take.
  aug::write_png(dir.file("odd.png"), pattern(50, 64, 1));
  opt.size = 0;
  train::Predictor odd({a}, opt);
  test::expect_error_mentions([&] { odd.predict({train::prepare_image({"odd", dir.file("odd.png")}, 0)}); },
                              {"odd.png", "50x64", "divisible by 32"});
}

TEST(Inference, ACorruptImageStopsThePrefetchWithTheFileNamed) {
  TempDir dir;
  for (int k = 0; k < 5; ++k) aug::write_png(dir.file("ok" + std::to_string(k) + ".png"), pattern(32, 32, k));
  test::write_text(dir.file("ok3.png"), "\x89PNG but not really");
  train::PredictOptions opt;
  opt.batch = 2;
  train::Predictor p({tiny(1)}, opt);
  std::vector<std::string> seen;
  test::expect_error_mentions([&] {
    train::predict_images(p, train::list_images(dir.path()), [&](const train::ImagePrediction& r) { seen.push_back(r.input.id); }, false);
  }, {"ok3.png"});
  // The batch before the corrupt one was delivered; nothing after it.
  EXPECT_EQ(seen, (std::vector<std::string>{"ok0", "ok1"}));
}

TEST(Inference, WeightsFilesAreCheckedAgainstTheNetwork) {
  TempDir dir;
  auto se = tiny(1), ef = tiny(2, "tiny_unet_ef");
  nn::save_state(*se, dir.file("se.safetensors"), {{"model", "tiny_unet_se"}});
  nn::save_state(*ef, dir.file("ef.safetensors"));
  nn::save_state(*ef, dir.file("ef_named.safetensors"), {{"model", "tiny_unet_ef"}});
  train::PredictOptions opt;
  EXPECT_NO_THROW(train::Predictor("tiny_unet_se", {dir.file("se.safetensors")}, opt));
  // Weights that load but hold NaN give a clear error, not a garbage PNG.
  nn::NamedTensors broken_state = se->state_dict();
  for (auto& [name, t] : broken_state)
    if (name == "decoder.final_conv.bias") t = Tensor::full(t.shape(), std::nan(""));
  nn::save_safetensors(dir.file("nan.safetensors"), broken_state);
  aug::write_png(dir.file("img.png"), pattern(32, 32, 0));
  train::Predictor broken("tiny_unet_se", {dir.file("nan.safetensors")}, opt);
  test::expect_error_mentions([&] { broken.predict({train::prepare_image({"img", dir.file("img.png")}, 0)}); },
                              {"img.png", "not finite"});
  test::expect_error_mentions([&] { train::Predictor("tiny_unet_se", {dir.file("missing.safetensors")}, opt); },
                              {"missing.safetensors", "does not exist"});
  test::expect_error_mentions([&] { train::Predictor("tiny_unet_se", {dir.file("ef_named.safetensors")}, opt); },
                              {"ef_named.safetensors", "tiny_unet_ef"});
  test::expect_error_mentions([&] { train::Predictor("tiny_unet_se", {dir.file("ef.safetensors")}, opt); },
                              {"ef.safetensors", "do not fit"});
}

TEST(Inference, RealImagesGiveProbabilityMapsAtTheirOwnSize) {
  const std::string images = std::string(PNEUMO_SHARED_DATA) + "/lungs-shenzhen/images";
  if (!std::filesystem::is_directory(images)) GTEST_SKIP() << "shared data absent: " << images;
  TempDir dir;
  std::vector<train::InputImage> all = train::list_images(images);
  all.resize(3);
  auto net = tiny(7, "tiny_cls_ef");
  nn::save_state(*net, dir.file("w.safetensors"));
  train::PredictOptions opt;
  opt.size = 64;
  opt.batch = 2;
  opt.classify = true;
  train::Predictor pred("tiny_cls_ef", {dir.file("w.safetensors"), dir.file("w.safetensors")}, opt);
  int n = 0;
  train::predict_images(pred, all, [&](const train::ImagePrediction& r) {
    const aug::Image src = aug::read_image(r.input.path);
    EXPECT_EQ(r.height, src.height);
    EXPECT_EQ(r.width, src.width);
    ASSERT_EQ(r.probability.size(), static_cast<size_t>(src.height) * src.width);
    for (float v : r.probability) ASSERT_TRUE(v >= 0 && v <= 1);
    EXPECT_TRUE(r.cls > 0 && r.cls < 1);
    ++n;
  }, false);
  EXPECT_EQ(n, 3);
}

}  // namespace
}  // namespace pneumo
