// The steps after training chained on real images with tiny networks, as the commands run them: SWA of three
// checkpoints + BatchNorm pass, fold-mean prediction of two "models", ensemble, two classifiers stacked, the
// gated submission, evaluation. The submission is checked independently of the encoder: each row re-decoded
// and compared with the mask file it came from (or -1 where the gate closed).
#include <gtest/gtest.h>

#include <filesystem>

#include "augment/image.h"
#include "nn/checkpoint.h"
#include "tests/train/data_test_util.h"
#include "tests/train/pipeline_test_util.h"
#include "train/dataset.h"
#include "train/ensemble.h"
#include "train/evaluate.h"
#include "train/inference.h"
#include "train/rle_csv.h"
#include "train/stack.h"
#include "train/submission.h"
#include "train/swa.h"

namespace pneumo {
namespace {

namespace fs = std::filesystem;

TEST(PipelineChain, TinyNetworksOnRealLesionImagesToAVerifiedSubmission) {
  const std::string data = std::string(PNEUMO_SHARED_DATA) + "/lesions-covid-qu-ex";
  if (!fs::is_directory(data)) GTEST_SKIP() << "shared data absent: " << data;
  test::TempDir dir;
  // Ten images: five with lesions, five without.
  std::vector<std::string> ids;
  for (const auto& e : fs::directory_iterator(data + "/images")) {
    const std::string stem = e.path().stem().string();
    const bool covid = stem.rfind("covid", 0) == 0;
    size_t n_covid = 0;
    for (const auto& i : ids) n_covid += i.rfind("covid", 0) == 0;
    if ((covid && n_covid < 5) || (!covid && ids.size() - n_covid < 5)) ids.push_back(stem);
    if (ids.size() == 10) break;
  }
  ASSERT_EQ(ids.size(), 10u);
  std::sort(ids.begin(), ids.end());
  std::string list;
  for (const auto& id : ids) list += data + "/images/" + id + ".png\n";
  test::write_text(dir.file("list.txt"), list);

  // SWA: three checkpoints, BatchNorm pass over the ten images at 64 (two batches of 4).
  std::vector<std::string> ckpts;
  for (int e = 0; e < 3; ++e) {
    ckpts.push_back(train::epoch_checkpoint_path(dir.path(), 34 + e));
    fs::create_directories(fs::path(ckpts.back()).parent_path());
    nn::save_state(*test::seeded_model(20 + e), ckpts.back(), {{"model", "tiny_unet_se"}});
  }
  auto swa = test::seeded_model(0);
  train::average_checkpoints(*swa, ckpts, "tiny_unet_se");
  train::BnPassOptions bo;
  bo.size = 64;
  bo.workers = 1;
  EXPECT_EQ(train::recalibrate_batchnorm_on(*swa, std::make_shared<train::MaskFolderDataset>(data + "/images", data + "/lesion-masks", ids), bo), 8);
  nn::save_state(*swa, dir.file("swa.safetensors"), {{"model", "tiny_unet_se"}});

  // Two segmentation "models" (the SWA one as two folds, another as one), probability folders, ensemble.
  const auto images = train::list_images(dir.file("list.txt"));
  auto predict_to = [&](const std::string& model, const std::vector<std::string>& w, const std::string& out,
                        std::vector<std::pair<std::string, double>>* cls) {
    train::PredictOptions o;
    o.size = 64;
    o.batch = 3;
    o.classify = cls != nullptr;
    train::Predictor p(model, w, o);
    fs::create_directories(out);
    train::predict_images(p, images, [&](const train::ImagePrediction& r) {
      aug::Image prob(r.height, r.width);
      for (size_t i = 0; i < prob.size(); ++i) prob.pixels[i] = train::probability_to_u8(r.probability[i]);
      aug::write_png(out + "/" + r.input.id + ".png", prob);
      if (cls) cls->emplace_back(r.input.id, r.cls);
    }, false);
  };
  nn::save_state(*test::seeded_model(5), dir.file("other.safetensors"));
  predict_to("tiny_unet_se", {dir.file("swa.safetensors"), dir.file("swa.safetensors")}, dir.file("pA"), nullptr);
  predict_to("tiny_unet_se", {dir.file("other.safetensors")}, dir.file("pB"), nullptr);
  fs::create_directories(dir.file("masks"));
  for (const auto& id : ids) {
    int h = 0, w = 0;
    const auto p = train::mean_probability({dir.file("pA"), dir.file("pB")}, id, &h, &w);
    EXPECT_EQ(h, 256);
    EXPECT_EQ(w, 256);
    aug::write_png(dir.file("masks/" + id + ".png"), train::apply_mask_rule(p.data(), h, w, train::MaskRule::parse("0.4")));
  }

  // Two classifiers, stacked (five folds over the ten images).
  std::vector<std::pair<std::string, double>> c1, c2;
  nn::save_state(*test::seeded_model(8, "tiny_cls_ef"), dir.file("c1.safetensors"));
  nn::save_state(*test::seeded_model(9, "tiny_cls_ef"), dir.file("c2.safetensors"));
  predict_to("tiny_cls_ef", {dir.file("c1.safetensors")}, dir.file("cA"), &c1);
  predict_to("tiny_cls_ef", {dir.file("c2.safetensors")}, dir.file("cB"), &c2);
  std::vector<std::vector<double>> x;
  std::vector<double> y;
  for (size_t i = 0; i < ids.size(); ++i) {
    x.push_back({c1[i].second, c2[i].second});
    y.push_back(ids[i].rfind("covid", 0) == 0 ? 1.0 : 0.0);
  }
  train::StackerOptions so;
  so.epochs = 5;
  const auto stacked = train::stack_classifiers(x, y, x, so);
  ASSERT_EQ(stacked.test.size(), ids.size());
  for (double v : stacked.test) EXPECT_TRUE(v > 0 && v < 1);
  // Untrained classifiers give nearly equal probabilities, so the gate here is set by hand to take both
  // branches of the decision: alternate images above and below the reference's 0.65.
  const double threshold = 0.65;
  std::map<std::string, double> probs;
  for (size_t i = 0; i < ids.size(); ++i) probs[ids[i]] = i % 2 ? 0.65 : 0.9;

  std::string id_text = "\xEF\xBB\xBFImageId,EncodedPixels\n";
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) id_text += *it + ",-1\n";  // an order unlike the folders'
  test::write_text(dir.file("ids.csv"), id_text);
  const auto order = train::read_ids_file(dir.file("ids.csv"));
  train::SubmissionSummary sum;
  train::write_rle_csv(dir.file("sub.csv"), train::build_submission(order, dir.file("masks"), probs, threshold, "ids.csv", &sum));
  EXPECT_EQ(sum.gated_empty, 5u);

  // Independent check: read back, decode each row, compare with the mask file or expect -1.
  const train::RleCsv sub = train::read_rle_csv(dir.file("sub.csv"));
  ASSERT_EQ(sub.ids(), order);
  for (const auto& id : order) {
    const aug::Image decoded = sub.mask(id, 256, 256);
    if (train::keep_mask(probs[id], threshold))
      EXPECT_EQ(decoded.pixels, aug::read_image(dir.file("masks/" + id + ".png")).pixels) << id;
    else
      EXPECT_FALSE(sub.positive(id)) << id;
  }
  const train::Evaluation ev = train::evaluate(dir.file("sub.csv"), data + "/lesion-masks", 256, 256, true);
  EXPECT_EQ(ev.images, 10);
  EXPECT_EQ(ev.truth_positive, 5);
  EXPECT_GE(ev.metric, 0.0);
  EXPECT_LE(ev.metric, 1.0);
}

}  // namespace
}  // namespace pneumo
