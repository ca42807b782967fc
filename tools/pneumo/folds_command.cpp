// `pneumo folds`: new stratified k-folds (positives and negatives balanced, seeded) in the reference's layout
// <out>/fold{k}/{train,val}.txt, for segmentation (positives only) or classification (all images).
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "augment/image.h"
#include "kernels/check.h"
#include "tools/pneumo/command.h"
#include "train/dataset.h"
#include "train/folds.h"
#include "train/rle_csv.h"

namespace {

using pneumo::cli::Args;

int run_folds(const Args& args) {
  const std::string csv = args.get("csv", "");
  const std::string masks = args.get("masks", "");
  const std::string out = args.require("out");
  const int k = static_cast<int>(args.get_int("k", 5));
  const uint64_t seed = static_cast<uint64_t>(args.get_int("seed", 1992));
  const std::string task = args.get("task", "classification");
  const std::string extra_csv = args.get("extra", "");
  args.finish();
  PNEUMO_CHECK(csv.empty() != masks.empty(), "pneumo folds: give exactly one of --csv LABELS.csv or --masks DIR");
  PNEUMO_CHECK(task == "classification" || task == "segmentation",
               "pneumo folds: --task must be classification or segmentation, got '", task, "'");
  std::vector<std::string> ids;
  std::vector<bool> positive;
  if (!csv.empty()) {
    const pneumo::train::RleCsv labels = pneumo::train::read_rle_csv(csv);
    ids = labels.ids();
    for (const std::string& id : ids) positive.push_back(labels.positive(id));
  } else {
    pneumo::train::MaskFolderDataset ds(masks, "");  // the mask files themselves are the "images" here
    for (size_t i = 0; i < ds.size(); ++i) {
      ids.push_back(ds.id(i));
      const pneumo::aug::Image m = pneumo::aug::read_image(ds.image_path(i));
      bool any = false;
      for (uint8_t v : m.pixels) any = any || v > 127;
      positive.push_back(any);
    }
  }
  std::vector<std::string> extra;
  if (!extra_csv.empty()) extra = pneumo::train::read_rle_csv(extra_csv).ids();
  const std::vector<int> assignment = pneumo::train::stratified_folds(positive, k, seed);
  const auto t = task == "segmentation" ? pneumo::train::FoldTask::Segmentation : pneumo::train::FoldTask::Classification;
  std::vector<pneumo::train::FoldSplit> folds;
  for (int f = 0; f < k; ++f) folds.push_back(pneumo::train::make_split(ids, positive, assignment, f, t, extra));
  pneumo::train::write_folds(out, folds);
  size_t npos = 0;
  for (bool p : positive) npos += p;
  std::printf("%zu images (%zu positive), %d %s folds, seed %llu -> %s\n", ids.size(), npos, k, task.c_str(),
              static_cast<unsigned long long>(seed), out.c_str());
  for (int f = 0; f < k; ++f)
    std::printf("  fold%d: train %zu, val %zu\n", f, folds[static_cast<size_t>(f)].train.size(),
                folds[static_cast<size_t>(f)].val.size());
  return 0;
}

PNEUMO_COMMAND("folds", "generate stratified k-folds (reference layout fold{k}/{train,val}.txt)",
               "  pneumo folds (--csv train-rle.csv | --masks MASK_DIR) --out DIR [--k 5] [--seed 1992]\n"
               "               [--task classification|segmentation] [--extra pseudo.csv]\n"
               "Positives and negatives are shuffled separately (Philox, seeded) and dealt round-robin.\n"
               "segmentation: positive images only (as the reference's det folds); classification: all images.\n"
               "--extra: ids of a pseudo-label CSV added to every fold's training list only.",
               run_folds);

}  // namespace
