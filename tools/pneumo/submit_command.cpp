// `pneumo submit`: the competition submission from masks and (optionally) gate probabilities.
#include <cstdio>

#include "kernels/check.h"
#include "tools/pneumo/command.h"
#include "train/rle_csv.h"
#include "train/submission.h"

namespace {

using pneumo::cli::Args;

int run_submit(const Args& args) {
  using namespace pneumo;
  const std::string masks = args.require("masks");
  const std::string ids_file = args.require("ids");
  const std::string out = args.require("out");
  const std::string cls = args.get("cls", "");
  const double threshold = args.get_double("threshold", 0.65);
  args.finish();
  PNEUMO_CHECK(threshold >= 0 && threshold <= 1, "submit: --threshold must be in [0, 1]");
  const std::vector<std::string> ids = train::read_ids_file(ids_file);
  std::map<std::string, double> probs;
  if (!cls.empty()) probs = train::read_probability_csv(cls);
  train::SubmissionSummary s;
  const auto rows = train::build_submission(ids, masks, probs, threshold, ids_file, &s);
  train::write_rle_csv(out, rows);
  std::printf("submit: %zu images in the order of %s: %zu with a mask, %zu empty masks", s.rows, ids_file.c_str(),
              s.with_mask, s.mask_empty);
  if (!cls.empty()) std::printf(", %zu gated to -1 (probability <= %.4g)", s.gated_empty, threshold);
  std::printf(" -> %s\n", out.c_str());
  return 0;
}

PNEUMO_COMMAND("submit", "write the competition submission (ImageId,EncodedPixels) from masks and a gate",
               "usage: pneumo submit --masks MASK_DIR --ids SAMPLE_SUBMISSION.csv --out submission.csv\n"
               "                     [--cls STACKED.csv [--threshold 0.65]]\n"
               "One row per id of the ids file, in its order, every id exactly once (duplicate ids are an error\n"
               "naming the line). With --cls (image,probability) an image keeps its mask only when its\n"
               "probability is > threshold (the reference: 0.65 stacked, 0.7 for a single classifier), else -1.\n"
               "Masks are 0/255 images MASK_DIR/<id>.png; RLE is the competition's (column-major, relative).",
               run_submit);

}  // namespace
