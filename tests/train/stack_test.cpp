// The stacker against PyTorch in float64 (tests/fixtures/make_pipeline_fixtures.py -> pipeline/stack.safetensors):
// numpy's RandomState(48) permutation behind sklearn's KFold, the features, and 50 epochs of Adam +
// MultiStepLR from the same initial weights in the same (unshuffled) order.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "nn/checkpoint.h"
#include "train/stack.h"

namespace pneumo {
namespace {

std::map<std::string, std::vector<double>> load_fixture(std::map<std::string, Shape>* shapes = nullptr) {
  nn::SafetensorsContents c = nn::load_safetensors(std::string(PNEUMO_TEST_FIXTURES) + "/pipeline/stack.safetensors");
  std::map<std::string, std::vector<double>> out;
  for (auto& [name, t] : c.tensors) {
    const Tensor d = t.to(DType::F64);
    out[name] = std::vector<double>(d.data<double>(), d.data<double>() + d.numel());
    if (shapes) (*shapes)[name] = t.shape();
  }
  return out;
}

std::vector<std::vector<double>> rows(const std::vector<double>& flat, size_t cols) {
  std::vector<std::vector<double>> r;
  for (size_t i = 0; i < flat.size(); i += cols) r.emplace_back(flat.begin() + i, flat.begin() + i + cols);
  return r;
}

TEST(Stack, NumpyPermutationMatchesRandomState48) {
  auto fx = load_fixture();
  const auto& want = fx["kfold_permutation"];
  const auto got = train::numpy_permutation(static_cast<int64_t>(want.size()), 48);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(static_cast<double>(got[i]), want[i]) << i;
  // KFold: 300 rows -> five folds of 60, test rows = consecutive permutation slices, train ascending.
  const auto folds = train::kfold_shuffled(300, 5, 48);
  EXPECT_EQ(folds[1].test.front(), got[60]);
  EXPECT_EQ(folds[1].train.size(), 240u);
  EXPECT_TRUE(std::is_sorted(folds[1].train.begin(), folds[1].train.end()));
  const auto odd = train::kfold_shuffled(7, 5, 1);
  EXPECT_EQ(odd[0].test.size(), 2u);
  EXPECT_EQ(odd[4].test.size(), 1u);
}

TEST(Stack, FeaturesAreValuesMeanAndHalfDifferences) {
  const auto f = train::stack_features({{0.2, 0.4, 0.6, 1.0}});
  const std::vector<double> want = {0.2, 0.4, 0.6, 1.0, 0.55, -0.1, -0.1, -0.2, 0.4};
  ASSERT_EQ(f[0].size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(f[0][i], want[i], 1e-15) << i;
  auto fx = load_fixture();
  const auto ft = train::stack_features(rows(fx["test"], 4));
  const auto& wt = fx["features_of_test"];
  for (size_t r = 0; r < ft.size(); ++r)
    for (size_t j = 0; j < 9; ++j) ASSERT_NEAR(ft[r][j], wt[r * 9 + j], 1e-15);
}

TEST(Stack, FiftyEpochsMatchPyTorchFromTheSameStart) {
  auto fx = load_fixture();
  std::vector<train::StackerWeights> init;
  for (int k = 0; k < 5; ++k) {
    train::StackerWeights w;
    w.features = 9;
    const std::string p = "fold" + std::to_string(k) + ".init.";
    w.conv_w = fx[p + "conv.weight"];
    w.conv_b = fx[p + "conv.bias"];
    w.fc_w = fx[p + "fc.weight"];
    w.fc_b = fx[p + "fc.bias"].at(0);
    ASSERT_EQ(w.conv_w.size(), 144u);
    init.push_back(w);
  }
  train::StackerOptions opt;
  opt.shuffle = false;
  const auto res = train::stack_classifiers(rows(fx["oof"], 4), fx["labels"], rows(fx["test"], 4), opt, 5, 48, &init);
  double worst = 0;
  for (int k = 0; k < 5; ++k) {
    const std::string p = "fold" + std::to_string(k) + ".final.";
    const auto& w = res.models[static_cast<size_t>(k)];
    auto cmp = [&](const std::vector<double>& got, const std::vector<double>& want, const std::string& name) {
      ASSERT_EQ(got.size(), want.size()) << name;
      for (size_t i = 0; i < got.size(); ++i) {
        worst = std::max(worst, std::abs(got[i] - want[i]));
        EXPECT_NEAR(got[i], want[i], 1e-9) << name << "[" << i << "]";
      }
    };
    cmp(w.conv_w, fx[p + "conv.weight"], p + "conv.weight");
    cmp(w.conv_b, fx[p + "conv.bias"], p + "conv.bias");
    cmp(w.fc_w, fx[p + "fc.weight"], p + "fc.weight");
    cmp({w.fc_b}, fx[p + "fc.bias"], p + "fc.bias");
  }
  const auto& oof = fx["oof_stacked"];
  const auto& test = fx["test_stacked"];
  for (size_t i = 0; i < oof.size(); ++i) EXPECT_NEAR(res.oof[i], oof[i], 1e-9) << i;
  for (size_t i = 0; i < test.size(); ++i) EXPECT_NEAR(res.test[i], test[i], 1e-9) << i;
  std::printf("stacker parity: worst weight difference %.3g after 50 epochs x 5 folds\n", worst);
  // The stacker must have learnt something: training moved the weights and the OOF loss beats chance.
  EXPECT_GT(std::abs(res.models[0].fc_b - init[0].fc_b), 1e-4);
  EXPECT_LT(res.oof_log_loss, std::log(2.0));
}

TEST(Stack, ShuffledTrainingIsSeededAndRejectsRaggedInput) {
  std::vector<std::vector<double>> x;
  std::vector<double> y;
  for (int i = 0; i < 40; ++i) {
    y.push_back(i % 3 == 0);
    x.push_back({y.back() * 0.6 + 0.2, 0.5, 0.3 + 0.01 * i});
  }
  train::StackerOptions opt;
  opt.epochs = 5;
  const auto a = train::stack_classifiers(x, y, {{0.9, 0.5, 0.3}}, opt);
  const auto b = train::stack_classifiers(x, y, {{0.9, 0.5, 0.3}}, opt);
  EXPECT_EQ(a.test, b.test);
  EXPECT_EQ(a.models[0].features, 7);
  x[3].pop_back();
  EXPECT_THROW(train::stack_classifiers(x, y, {}, opt), std::exception);
}

}  // namespace
}  // namespace pneumo
