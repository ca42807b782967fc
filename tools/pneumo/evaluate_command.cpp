// `pneumo evaluate`: the competition metric of predicted masks against the truth.
#include <cstdio>
#include <memory>

#include "tools/pneumo/command.h"
#include "train/evaluate.h"
#include "train/submission.h"

namespace {

using namespace pneumo;

struct EvaluateCmd {
  std::string pred, truth, per_image;
  int height = 1024, width = 1024;
  bool subset = false;
};

int run_evaluate(const EvaluateCmd& c) {
  const train::Evaluation e = train::evaluate(c.pred, c.truth, c.height, c.width, c.subset);
  std::printf("images %lld (truth positive %lld, predicted positive %lld)\n", static_cast<long long>(e.images),
              static_cast<long long>(e.truth_positive), static_cast<long long>(e.pred_positive));
  std::printf("metric (mean Dice, empty-empty = 1) %.5f\n", e.metric);
  std::printf("Dice on truth positives %.5f\n", e.dice_positive);
  std::printf("false-positive images %lld, false-negative images %lld\n",
              static_cast<long long>(e.false_positive_images), static_cast<long long>(e.false_negative_images));
  if (!c.per_image.empty()) {
    std::string text = "image,dice,pred_pixels,truth_pixels\n";
    char buf[96];
    for (size_t i = 0; i < e.ids.size(); ++i) {
      std::snprintf(buf, sizeof(buf), ",%.6f,%lld,%lld\n", e.counts[i].dice(), static_cast<long long>(e.counts[i].pred),
                    static_cast<long long>(e.counts[i].truth));
      text += e.ids[i] + buf;
    }
    train::write_text_atomic(c.per_image, text);
  }
  return 0;
}

PNEUMO_COMMAND("evaluate", "competition metric of predicted masks against the truth", [](CLI::App& app) {
  auto o = std::make_shared<EvaluateCmd>();
  cli::option(app, "--pred", o->pred, "prediction: ImageId,EncodedPixels CSV or a folder of 0/255 masks").required();
  cli::option(app, "--truth", o->truth, "truth: ImageId,EncodedPixels CSV or a folder of 0/255 masks").required();
  cli::option(app, "--height", o->height, "image height for RLE decoding (a mask folder gives its own)", 1, 1 << 16);
  cli::option(app, "--width", o->width, "image width for RLE decoding", 1, 1 << 16);
  cli::option(app, "--per-image", o->per_image, "write image,dice,pred_pixels,truth_pixels here");
  cli::flag(app, "--subset", o->subset, "score only the images both sides have (e.g. a test-set prediction against a labelled subset)");
  cli::footer(app,
              "Prints the mean per-image Dice (empty-empty = 1, the leaderboard metric), the Dice on images whose\n"
              "truth is positive, and the false-positive and false-negative image counts. Several CSV rows of one\n"
              "image are merged; folder masks are > 127. Without --subset both sides must hold the same images.");
  return [o] { return run_evaluate(*o); };
});

}  // namespace
