// `pneumo folds`: new stratified k-folds (positives and negatives balanced, seeded) in the reference's layout
// <out>/fold{k}/{train,val}.txt, for segmentation (positives only) or classification (all images).
#include <cstdio>
#include <memory>

#include "augment/image.h"
#include "tools/pneumo/command.h"
#include "train/dataset.h"
#include "train/folds.h"
#include "train/rle_csv.h"

namespace {

using namespace pneumo;

struct FoldsOptions {
  std::string csv, masks, out, task = "classification", extra_csv;
  int k = 5;
  uint64_t seed = 0;
};

int run_folds(const FoldsOptions& o) {
  std::vector<std::string> ids;
  std::vector<bool> positive;
  if (!o.csv.empty()) {
    const train::RleCsv labels = train::read_rle_csv(o.csv);
    ids = labels.ids();
    for (const std::string& id : ids) positive.push_back(labels.positive(id));
  } else {
    train::MaskFolderDataset ds(o.masks, "");  // the mask files themselves are the "images" here
    for (size_t i = 0; i < ds.size(); ++i) {
      ids.push_back(ds.id(i));
      const aug::Image m = aug::read_image(ds.image_path(i));
      bool any = false;
      for (uint8_t v : m.pixels) any = any || v > 127;
      positive.push_back(any);
    }
  }
  size_t npos = 0;
  for (bool p : positive) npos += p;
  const bool segmentation = o.task == "segmentation";
  // Segmentation folds hold positives only: each validation fold needs at least one.
  const size_t usable = segmentation ? npos : ids.size();
  if (usable < static_cast<size_t>(o.k))
    cli::user_error(o.csv.empty() ? o.masks : o.csv, " has ", usable, segmentation ? " positive images" : " images",
                    segmentation ? " (segmentation folds hold positives only)" : "", ": too few for --k ", o.k);
  std::vector<std::string> extra;
  if (!o.extra_csv.empty()) extra = train::read_rle_csv(o.extra_csv).ids();
  const std::vector<int> assignment = train::stratified_folds(positive, o.k, o.seed);
  const auto t = segmentation ? train::FoldTask::Segmentation : train::FoldTask::Classification;
  std::vector<train::FoldSplit> folds;
  for (int f = 0; f < o.k; ++f) folds.push_back(train::make_split(ids, positive, assignment, f, t, extra));
  train::write_folds(o.out, folds);
  std::printf("%zu images (%zu positive), %d %s folds, seed %llu -> %s\n", ids.size(), npos, o.k, o.task.c_str(),
              static_cast<unsigned long long>(o.seed), o.out.c_str());
  for (int f = 0; f < o.k; ++f)
    std::printf("  fold%d: train %zu, val %zu\n", f, folds[static_cast<size_t>(f)].train.size(),
                folds[static_cast<size_t>(f)].val.size());
  return 0;
}

PNEUMO_COMMAND("folds", "generate stratified k-folds (reference layout fold{k}/{train,val}.txt)", [](CLI::App& app) {
  auto o = std::make_shared<FoldsOptions>();
  auto csv = cli::option(app, "--csv", o->csv, "labels: a competition RLE CSV").existing_file();
  auto masks = cli::option(app, "--masks", o->masks, "labels: a folder of mask PNGs").existing_dir();
  csv.excludes(masks);
  cli::out_option(app, o->out, "folder to write fold{k}/{train,val}.txt into").required();
  cli::option(app, "--k", o->k, "number of folds", 2, 1000);
  cli::seed_option(app, o->seed);
  cli::choice(app, "--task", o->task, "segmentation: positive images only; classification: all images",
              {"classification", "segmentation"});
  cli::option(app, "--extra", o->extra_csv, "ids of a pseudo-label CSV added to every fold's training list only")
      .existing_file();
  cli::footer(app,
              "Give exactly one of --csv or --masks. Positives and negatives are shuffled separately (Philox, seeded)\n"
              "and dealt round-robin, as the reference's folds.");
  return [o] {
    if (o->csv.empty() == o->masks.empty()) cli::usage_error("give exactly one of --csv LABELS.csv or --masks DIR");
    return run_folds(*o);
  };
});

}  // namespace
