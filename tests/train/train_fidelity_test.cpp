// Fidelity of the training loop against PyTorch: tiny_unet_se from the committed weights, trained 50 steps
// with train::train_step (the loop's step) on the formula batches of tests/fixtures/make_train_fixtures.py,
// must reproduce PyTorch 1.13's per-step loss within 1 % (the bound).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "nn/model_fixture.h"
#include "nn/models/registry.h"
#include "nn/models/weights_import.h"
#include "tensor/generator.h"
#include "train/trainer.h"

using namespace pneumo;

namespace {

constexpr int kBatch = 2, kSize = 64;

// The twin of train_fixture_batch(step) in make_train_fixtures.py, in NHWC.
void fixture_batch(int step, Tensor& images, Tensor& masks, Tensor& labels) {
  std::vector<float> im(static_cast<size_t>(kBatch) * kSize * kSize * 3), m(static_cast<size_t>(kBatch) * kSize * kSize);
  for (int n = 0; n < kBatch; ++n) {
    const int cx = 20 + (step * 7 + n * 13) % 24, cy = 22 + (step * 5 + n * 11) % 20, r = 10 + (step + n) % 6;
    for (int y = 0; y < kSize; ++y)
      for (int x = 0; x < kSize; ++x) {
        const double mask = ((x - cx) * (x - cx) + (y - cy) * (y - cy)) < r * r ? 1.0 : 0.0;
        const double g = std::sin(0.05 * (x + 1) * (1 + 0.1 * n) + 0.3 * step) * std::cos(0.07 * (y + 1) + 0.2 * n) +
                         1.5 * mask;
        const size_t p = (static_cast<size_t>(n) * kSize + y) * kSize + x;
        for (int c = 0; c < 3; ++c) im[p * 3 + c] = static_cast<float>(g);
        m[p] = static_cast<float>(mask);
      }
  }
  images = Tensor::from_vector(im, {kBatch, kSize, kSize, 3});
  masks = Tensor::from_vector(m, {kBatch, kSize, kSize, 1});
  labels = Tensor::from_vector(std::vector<float>(kBatch, 1.0f), {kBatch});
}

}  // namespace

TEST(TrainFidelity, TinyUnetSeMatchesPyTorchPerStepLossFor50Steps) {
  std::ifstream in(std::string(PNEUMO_TEST_FIXTURES) + "/train/tiny_unet_se.steps.json");
  ASSERT_TRUE(in.good()) << "regenerate with tests/fixtures/make_train_fixtures.py";
  const nlohmann::json j = nlohmann::json::parse(in);
  const std::vector<double> expected = j.at("losses").get<std::vector<double>>();
  ASSERT_EQ(expected.size(), 50u);

  auto model = nn::models::create_model("tiny_unet_se");
  const auto weights = test::read_f32_safetensors(test::model_fixture_path("tiny_unet_se.weights.safetensors"));
  const nn::models::ImportReport rep = nn::models::import_pytorch_tensors(*model, weights, true);
  ASSERT_TRUE(rep.complete()) << rep.summary(true);
  model->train();
  train::Adam opt(model->named_parameters(), {5e-4, 0.9, 0.999, 1e-8, 0.0});
  double worst = 0;
  for (int step = 0; step < 50; ++step) {
    Tensor images, masks, labels;
    fixture_batch(step, images, masks, labels);
    const double loss = train::train_step(*model, opt, train::LossKind::DiceBceCls, images, masks, labels).item();
    const double rel = std::fabs(loss - expected[static_cast<size_t>(step)]) / std::fabs(expected[static_cast<size_t>(step)]);
    worst = std::max(worst, rel);
    if (getenv("PNEUMO_FIDELITY_PRINT")) std::printf("step %d %.8f %.8f %.3g\n", step, loss, expected[static_cast<size_t>(step)], rel);
    EXPECT_LT(rel, 0.01) << "step " << step << ": pneumo " << loss << ", PyTorch " << expected[static_cast<size_t>(step)];
  }
  EXPECT_LT(expected.back(), 0.6 * expected.front());  // the fixture itself learns (it is not a flat line)
  std::printf("worst per-step relative loss difference over 50 steps: %.3g\n", worst);
}
