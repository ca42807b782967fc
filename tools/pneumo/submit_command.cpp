// `pneumo submit`: the competition submission from masks and (optionally) gate probabilities.
#include <cstdio>
#include <memory>

#include "tools/pneumo/command.h"
#include "train/rle_csv.h"
#include "train/submission.h"

namespace {

using namespace pneumo;

struct SubmitCmd {
  std::string masks, ids, out, cls;
  double threshold = 0.65;
};

int run_submit(const SubmitCmd& c) {
  const std::vector<std::string> ids = train::read_ids_file(c.ids);
  std::map<std::string, double> probs;
  if (!c.cls.empty()) probs = train::read_probability_csv(c.cls);
  train::SubmissionSummary s;
  const auto rows = train::build_submission(ids, c.masks, probs, c.threshold, c.ids, &s);
  train::write_rle_csv(c.out, rows);
  std::printf("%zu images in the order of %s: %zu with a mask, %zu empty masks", s.rows, c.ids.c_str(),
              s.with_mask, s.mask_empty);
  if (!c.cls.empty()) std::printf(", %zu gated to -1 (probability <= %.4g)", s.gated_empty, c.threshold);
  std::printf(" -> %s\n", c.out.c_str());
  return 0;
}

PNEUMO_COMMAND("submit", "write the competition submission (ImageId,EncodedPixels) from masks and a gate", [](CLI::App& app) {
  auto o = std::make_shared<SubmitCmd>();
  cli::option(app, "--masks", o->masks, "folder of 0/255 masks <id>.png (pneumo ensemble)").required().existing_dir();
  cli::option(app, "--ids", o->ids, "ids file: the sample submission (its order is kept)").required().existing_file();
  cli::out_option(app, o->out, "submission CSV").required();
  cli::option(app, "--cls", o->cls, "gate: image,probability CSV (pneumo stack or a classifier's cls.csv)").existing_file();
  cli::option(app, "--threshold", o->threshold, "keep the mask when probability > threshold (0.7: one classifier)", 0.0, 1.0);
  cli::footer(app,
              "One row per id of the ids file, in its order, every id exactly once (a duplicate id is an error naming\n"
              "the line). With --cls an image keeps its mask only when its probability is > threshold, else -1.\n"
              "RLE is the competition's (column-major, relative starts); the file is written atomically.");
  return [o] { return run_submit(*o); };
});

}  // namespace
