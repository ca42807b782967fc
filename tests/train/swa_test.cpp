// SWA: the equal average of checkpoints is exact, mismatched or missing checkpoints are refused with the file
// named, and the BatchNorm recalibration reproduces timgaripov/swa's bn_update in PyTorch
// (tests/fixtures/make_pipeline_fixtures.py -> tests/fixtures/pipeline/bn_update.safetensors).
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/models/registry.h"
#include "nn/models/weights_import.h"
#include "tests/nn/model_fixture.h"
#include "tests/train/data_test_util.h"
#include "tests/train/pipeline_test_util.h"
#include "train/dataset.h"
#include "train/swa.h"
#include "augment/image.h"
#include <filesystem>

namespace pneumo {
namespace {

using test::TempDir;

std::shared_ptr<nn::models::Network> tiny(uint64_t seed, const std::string& name = "tiny_unet_se") {
  return test::seeded_model(seed, name);
}

TEST(SwaAverage, EqualAverageOfThreeCheckpointsIsExact) {
  TempDir dir;
  std::vector<std::string> files;
  std::vector<std::map<std::string, std::vector<float>>> states;
  for (int k = 0; k < 3; ++k) {
    auto m = tiny(10 + k);
    // Non-trivial buffers too, so averaging them is checked as well.
    for (auto& [name, t] : m->named_buffers())
      if (is_floating(t->dtype())) t->copy_from(Tensor::uniform(t->shape(), 0.5f, 1.5f, 77 + k));
    files.push_back(dir.file("epoch-" + std::to_string(k) + ".safetensors"));
    nn::save_state(*m, files.back(), {{"model", "tiny_unet_se"}});
    std::map<std::string, std::vector<float>> s;
    for (auto& [name, t] : m->state_dict())
      if (is_floating(t.dtype())) s[name] = t.to_vector();
    states.push_back(std::move(s));
  }
  auto avg = tiny(99);
  train::AverageReport rep = train::average_checkpoints(*avg, files, "tiny_unet_se");
  EXPECT_EQ(rep.files.size(), 3u);
  EXPECT_TRUE(rep.ignored.empty());
  int64_t checked = 0;
  for (auto& [name, t] : avg->state_dict()) {
    if (!is_floating(t.dtype())) continue;
    const std::vector<float> got = t.to_vector();
    for (size_t i = 0; i < got.size(); ++i) {
      const double want = (static_cast<double>(states[0][name][i]) + states[1][name][i] + states[2][name][i]) / 3.0;
      ASSERT_EQ(got[i], static_cast<float>(want)) << name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 1000);
}

TEST(SwaAverage, ExtraTensorsSuchAsOptimiserStateAreIgnoredAndReported) {
  TempDir dir;
  auto m = tiny(3);
  nn::NamedTensors t = m->state_dict();
  t.emplace_back("optimizer.exp_avg.encoder.conv1.weight", Tensor::zeros({4}));
  nn::save_safetensors(dir.file("a.safetensors"), t);
  auto avg = tiny(4);
  train::AverageReport rep = train::average_checkpoints(*avg, {dir.file("a.safetensors")});
  ASSERT_EQ(rep.ignored.size(), 1u);
  EXPECT_EQ(rep.ignored[0], "optimizer.exp_avg.encoder.conv1.weight");
  EXPECT_EQ(avg->state_dict()[0].second.to_vector(), m->state_dict()[0].second.to_vector());
}

TEST(SwaAverage, MismatchedNetworkIsRefusedNamingTheFile) {
  TempDir dir;
  auto se = tiny(1, "tiny_unet_se");
  auto ef = tiny(2, "tiny_unet_ef");
  nn::save_state(*se, dir.file("se.safetensors"));
  nn::save_state(*ef, dir.file("ef.safetensors"), {{"model", "tiny_unet_ef"}});
  auto target = tiny(5, "tiny_unet_se");
  test::expect_error_mentions([&] { train::average_checkpoints(*target, {dir.file("se.safetensors"), dir.file("ef.safetensors")}, "tiny_unet_se"); },
                              {"ef.safetensors", "tiny_unet_ef"});
  // Without metadata the tensors themselves give it away.
  nn::save_safetensors(dir.file("ef2.safetensors"), ef->state_dict());
  test::expect_error_mentions([&] { train::average_checkpoints(*target, {dir.file("ef2.safetensors")}); },
                              {"ef2.safetensors", "does not fit", "missing"});
}

TEST(SwaAverage, MissingOrTruncatedCheckpointIsAnError) {
  TempDir dir;
  auto m = tiny(1);
  test::expect_error_mentions([&] { train::average_checkpoints(*m, {dir.file("nope.safetensors")}); },
                              {"nope.safetensors"});
  test::write_text(dir.file("short.safetensors"), "12345");
  test::expect_error_mentions([&] { train::average_checkpoints(*m, {dir.file("short.safetensors")}); },
                              {"short.safetensors"});
  EXPECT_EQ(train::epoch_checkpoint_path("run", 7), "run/checkpoints/epoch-007.safetensors");
}

// The fixture's formula batches: x[i] = sin(0.37 i + 1.3 b) * (1 + 0.5 b) + 0.1 b over the flat NHWC index.
Tensor formula_batch(int b, int n, int size) {
  std::vector<float> v(static_cast<size_t>(n) * size * size * 3);
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i) + 1.3 * b) * (1 + 0.5 * b) + 0.1 * b);
  return Tensor::from_vector(v, {n, size, size, 3});
}

TEST(SwaBatchNorm, RecalibrationMatchesPyTorchBnUpdate) {
  auto m = tiny(1);
  auto weights = test::read_f32_safetensors(test::model_fixture_path("tiny_unet_se.weights.safetensors"));
  ASSERT_TRUE(nn::models::import_pytorch_tensors(*m, weights, true).complete());
  m->eval();
  const std::vector<int> sizes = {4, 4, 2};  // unequal batches check momentum = b / (n + b)
  size_t next = 0;
  const int64_t seen = train::recalibrate_batchnorm(*m, [&](Tensor& x) {
    if (next == sizes.size()) return false;
    x = formula_batch(static_cast<int>(next), sizes[next], 32);
    ++next;
    return true;
  });
  EXPECT_EQ(seen, 10);
  EXPECT_FALSE(m->is_training());  // mode restored
  auto ref = test::as_map(test::read_f32_safetensors(std::string(PNEUMO_TEST_FIXTURES) + "/pipeline/bn_update.safetensors"));
  int compared = 0;
  double worst = 0;
  for (auto& [name, t] : m->state_dict()) {
    if (name.find("running_") == std::string::npos) continue;
    ASSERT_TRUE(ref.count(name)) << name;
    const auto got = t.to_vector(), want = ref[name].to_vector();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const double err = std::abs(got[i] - want[i]) / (1e-3 + std::abs(want[i]));
      worst = std::max(worst, err);
      EXPECT_LT(err, 1e-3) << name << "[" << i << "] " << got[i] << " vs " << want[i];
    }
    ++compared;
  }
  EXPECT_EQ(compared, static_cast<int>(ref.size()));
  std::printf("bn_update parity: %d tensors, worst relative error %.3g\n", compared, worst);
  // The cumulative mode is switched off again: a further train-mode forward uses momentum 0.1.
  for (auto& [name, mod] : m->named_modules()) {
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(mod)) {
      EXPECT_FALSE(bn->cumulative_average()) << name;
    }
  }
}

}  // namespace
}  // namespace pneumo

namespace pneumo {
namespace {

TEST(SwaBatchNorm, ReferencePassIsShuffledAugmentedBatchFourDropLast) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("img"));
  std::filesystem::create_directories(dir.file("mask"));
  for (int i = 0; i < 10; ++i) {
    aug::Image im(40, 40), m(40, 40);
    for (int y = 0; y < 40; ++y)
      for (int x = 0; x < 40; ++x) im.at(y, x) = static_cast<uint8_t>((x * 7 + y * 3 + i * 20) % 256);
    aug::write_png(dir.file("img/i" + std::to_string(i) + ".png"), im);
    aug::write_png(dir.file("mask/i" + std::to_string(i) + ".png"), m);
  }
  auto ds = std::make_shared<train::MaskFolderDataset>(dir.file("img"), dir.file("mask"));
  train::BnPassOptions o;
  o.size = 32;
  o.workers = 1;
  auto m1 = tiny(1), m2 = tiny(1);
  EXPECT_EQ(train::recalibrate_batchnorm_on(*m1, ds, o), 8);  // 10 images, batch 4, drop_last
  EXPECT_EQ(train::recalibrate_batchnorm_on(*m2, ds, o), 8);
  const auto a = m1->state_dict(), b = m2->state_dict();
  bool moved = false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].first.find("running_mean") == std::string::npos) continue;
    EXPECT_EQ(a[i].second.to_vector(), b[i].second.to_vector()) << a[i].first;  // seeded: reproducible
    for (float v : a[i].second.to_vector()) moved = moved || v != 0.0f;
  }
  EXPECT_TRUE(moved);
  o.batch = 16;
  test::expect_error_mentions([&] { train::recalibrate_batchnorm_on(*m1, ds, o); }, {"10 training images", "16"});
}

}  // namespace
}  // namespace pneumo
