// `pneumo evaluate`: the competition metric of predicted masks against the truth.
#include <cstdio>

#include "kernels/check.h"
#include "tools/pneumo/command.h"
#include "train/evaluate.h"

namespace {

using pneumo::cli::Args;

int run_evaluate(const Args& args) {
  using namespace pneumo;
  const std::string pred = args.require("pred");
  const std::string truth = args.require("truth");
  const int height = static_cast<int>(args.get_int("height", 1024));
  const int width = static_cast<int>(args.get_int("width", 1024));
  const std::string per_image = args.get("per-image", "");
  const bool subset = args.flag("subset");
  args.finish();
  const train::Evaluation e = train::evaluate(pred, truth, height, width, subset);
  std::printf("images %lld (truth positive %lld, predicted positive %lld)\n", static_cast<long long>(e.images),
              static_cast<long long>(e.truth_positive), static_cast<long long>(e.pred_positive));
  std::printf("metric (mean Dice, empty-empty = 1) %.5f\n", e.metric);
  std::printf("Dice on truth positives %.5f\n", e.dice_positive);
  std::printf("false-positive images %lld, false-negative images %lld\n",
              static_cast<long long>(e.false_positive_images), static_cast<long long>(e.false_negative_images));
  if (!per_image.empty()) {
    FILE* f = std::fopen(per_image.c_str(), "w");
    PNEUMO_CHECK(f, "evaluate: cannot write '", per_image, "'");
    std::fprintf(f, "image,dice,pred_pixels,truth_pixels\n");
    for (size_t i = 0; i < e.ids.size(); ++i)
      std::fprintf(f, "%s,%.6f,%lld,%lld\n", e.ids[i].c_str(), e.counts[i].dice(),
                   static_cast<long long>(e.counts[i].pred), static_cast<long long>(e.counts[i].truth));
    std::fclose(f);
  }
  return 0;
}

PNEUMO_COMMAND("evaluate", "competition metric of predicted masks against the truth",
               "usage: pneumo evaluate --pred CSV|DIR --truth CSV|DIR [--height 1024 --width 1024] [--per-image F.csv] [--subset]\n"
               "CSV: ImageId,EncodedPixels (competition RLE; several rows per image are merged); DIR: 0/255 masks\n"
               "<id>.png/.jpg (> 127). Prints the mean per-image Dice (empty-empty = 1), the Dice on images\n"
               "whose truth is positive, and the false-positive and false-negative image counts. Every truth\n"
               "image needs a prediction (--subset: only the predicted images are scored). RLE is decoded at --height x --width unless a folder gives the size.",
               run_evaluate);

}  // namespace
