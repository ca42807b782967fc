// `pneumo swa`: equal average of chosen epoch checkpoints of a run, then BatchNorm recalibration over one
// shuffled, augmented pass of the fold's training set (batch 4, drop_last, train mode), as the reference.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "kernels/check.h"
#include "nn/checkpoint.h"
#include "nn/models/registry.h"
#include "tools/pneumo/command.h"
#include "tools/pneumo/list_option.h"
#include "train/dataset.h"
#include "train/folds.h"
#include "train/swa.h"

namespace {

using namespace pneumo;
namespace fs = std::filesystem;

struct SwaOptions {
  std::string run, model, task, epochs, checkpoints, out, images, csv, masks, folds, device;
  int fold = -1, size = 0, batch = 4, workers = cli::kDefaultWorkers;
  int64_t max_batches = 0;
  uint64_t seed = cli::kDefaultSeed;
  bool no_bn_update = false;
};

// A run's config.json: keys at the top level or under "data"; an absent file is an empty object.
nlohmann::json read_run_config(const std::string& run) {
  if (run.empty()) return nlohmann::json::object();
  const std::string path = run + "/config.json";
  std::ifstream f(path);
  if (!f) return nlohmann::json::object();
  nlohmann::json j;
  try {
    f >> j;
  } catch (const std::exception& e) {
    cli::user_error("cannot parse '", path, "': ", e.what());
  }
  if (!j.is_object()) cli::user_error("'", path, "' is not a JSON object");
  return j;
}

// A key of the run's config: pneumo train writes {"settings": {...}}; plain top-level keys work too.
std::string config_value(const nlohmann::json& j, const char* key) {
  for (const nlohmann::json* o : {&j, j.contains("settings") ? &j["settings"] : nullptr}) {
    if (o && o->is_object() && o->contains(key)) {
      const auto& v = (*o)[key];
      if (v.is_string()) return v.get<std::string>();
      if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
    }
  }
  return "";
}

// pneumo train's data layout: "data" is a folder holding images_subdir/ and either rle_csv or masks_subdir/
// (as train/trainer.cpp open_data reads it), or "synthetic:N" (no files: the images must be given).
void data_from_config(const nlohmann::json& cfg, const std::string& run, std::string& images, std::string& csv,
                      std::string& masks, std::string& folds) {
  const std::string data = config_value(cfg, "data");
  if (folds.empty()) {
    folds = config_value(cfg, "folds");
    if (folds.empty() && !run.empty() && fs::is_directory(run + "/folds")) folds = run + "/folds";
  }
  if (!images.empty() || data.empty()) return;
  if (data.rfind("synthetic:", 0) == 0)
    cli::user_error("the run trained on ", data, ": give the BatchNorm pass's images with --images and --csv/--masks");
  auto sub = [&](const char* key, const char* fallback) {
    const std::string v = config_value(cfg, key);
    return (fs::path(data) / (v.empty() ? fallback : v)).string();
  };
  const std::string img_dir = sub("images_subdir", "images"), rle = sub("rle_csv", "train-rle.csv");
  images = fs::is_directory(img_dir) ? img_dir : data;
  if (csv.empty() && masks.empty()) {
    if (fs::is_regular_file(rle))
      csv = rle;
    else
      masks = sub("masks_subdir", "masks");
  }
}

int run_swa(SwaOptions o) {
  const nlohmann::json cfg = read_run_config(o.run);
  auto fill = [&](std::string& v, const char* key) {
    if (v.empty()) v = config_value(cfg, key);
  };
  fill(o.model, "model");
  fill(o.task, "task");
  fill(o.images, "images");
  fill(o.csv, "csv");
  fill(o.masks, "masks");
  data_from_config(cfg, o.run, o.images, o.csv, o.masks, o.folds);
  if (o.fold < 0 && !config_value(cfg, "fold").empty()) o.fold = std::atoi(config_value(cfg, "fold").c_str());
  if (o.size == 0 && !config_value(cfg, "size").empty()) o.size = std::atoi(config_value(cfg, "size").c_str());

  if (o.model.empty()) cli::usage_error("give --model NAME (or a --run whose config.json names it)");
  if (!nn::models::is_model_name(o.model)) cli::user_error("unknown network '", o.model, "'");
  if (o.task.empty()) o.task = o.model.find("cls") != std::string::npos ? "classification" : "segmentation";
  if (o.task == "cls") o.task = "classification";
  if (o.task == "seg") o.task = "segmentation";
  if (o.task != "classification" && o.task != "segmentation")
    cli::user_error("the task must be segmentation or classification, got '", o.task, "'");
  const bool classification = o.task == "classification";

  std::vector<std::string> files;
  if (!o.checkpoints.empty()) {
    if (!o.epochs.empty()) cli::usage_error("give --epochs (with --run) or --checkpoints, not both");
    files = cli::split_list(o.checkpoints);
  } else {
    if (o.run.empty()) cli::usage_error("give --run RUN [--epochs a,b,c] or --checkpoints f1,f2,...");
    std::vector<int> epochs = train::default_swa_epochs(classification);
    if (!o.epochs.empty()) {
      epochs.clear();
      for (const std::string& e : cli::split_list(o.epochs)) {
        char* end = nullptr;
        const long v = std::strtol(e.c_str(), &end, 10);
        if (!end || *end != 0 || v < 0 || v > 100000) cli::usage_error("--epochs: '", e, "' is not an epoch number");
        epochs.push_back(static_cast<int>(v));
      }
    }
    for (int e : epochs) files.push_back(train::epoch_checkpoint_path(o.run, e));
  }
  std::string missing;
  size_t n_missing = 0;
  for (const std::string& f : files)
    if (!fs::is_regular_file(f)) missing += (n_missing++ ? ", " : "") + f;
  if (n_missing) cli::user_error("", n_missing, " of ", files.size(), " checkpoints missing: ", missing);
  if (o.out.empty()) {
    if (o.run.empty()) cli::usage_error("give --out FILE");
    o.out = o.run + "/swa.safetensors";
  }

  auto model = nn::models::create_model(o.model);
  const train::AverageReport rep = train::average_checkpoints(*model, files, o.model);
  std::printf("%s: averaged %lld tensors over %zu checkpoints\n", o.model.c_str(),
              static_cast<long long>(rep.tensors), files.size());
  if (!rep.ignored.empty())
    std::printf("ignored %zu tensors of the checkpoints that the network does not have (e.g. %s)\n",
                rep.ignored.size(), rep.ignored.front().c_str());
  std::string joined;
  for (const std::string& f : files) joined += (joined.empty() ? "" : ",") + f;
  nn::Metadata meta{{"model", o.model}, {"swa_checkpoints", joined}, {"swa_bn_update", o.no_bn_update ? "no" : "yes"}};
  if (!o.no_bn_update) {
    if (o.images.empty() || o.csv.empty() == o.masks.empty())
      cli::usage_error("the BatchNorm update needs the training images: --images DIR and one of --csv LABELS.csv or "
                       "--masks DIR (or a --run whose config.json names them); --no-bn-update skips it");
    if (o.size <= 0) cli::usage_error("give --size (the training size)");
    std::vector<std::string> ids;
    if (!o.folds.empty()) {
      if (o.fold < 0) cli::usage_error("--folds needs --fold K");
      const train::FoldSplit split = train::read_fold(o.folds, o.fold);
      ids = split.train;
      if (classification) ids.insert(ids.end(), split.val.begin(), split.val.end());  // reference: train + val
    }
    std::shared_ptr<const train::Dataset> ds;
    if (!o.csv.empty())
      ds = std::make_shared<train::RleCsvDataset>(o.images, o.csv, ids);
    else
      ds = std::make_shared<train::MaskFolderDataset>(o.images, o.masks, ids);
    const Device device = cli::resolve_device(o.device);
    model->to(device);
    train::BnPassOptions bo;
    bo.size = o.size;
    bo.batch = o.batch;
    bo.workers = o.workers;
    bo.seed = o.seed;
    bo.max_batches = o.max_batches;
    bo.device = device;
    bo.progress = true;
    const int64_t samples = train::recalibrate_batchnorm_on(*model, ds, bo);
    std::printf("BatchNorm statistics recomputed over %lld %s images (batches of %d, size %d, %s)\n",
                static_cast<long long>(samples), classification ? "train+val" : "training", o.batch, o.size,
                device.str().c_str());
    meta["swa_bn_samples"] = std::to_string(samples);
    model->to(Device::cpu());
  }
  nn::save_state(*model, o.out, meta);
  std::printf("wrote %s\n", o.out.c_str());
  return 0;
}

PNEUMO_COMMAND("swa", "average epoch checkpoints (SWA) and recompute BatchNorm statistics", [](CLI::App& app) {
  auto o = std::make_shared<SwaOptions>();
  cli::option(app, "--run", o->run, "run folder: RUN/checkpoints/epoch-NNN.safetensors and RUN/config.json").existing_dir();
  cli::option(app, "--model", o->model, "network name (default: the run's config.json)");
  cli::option(app, "--task", o->task, "segmentation or classification (default: from the name, 'cls' = classification)");
  auto epochs = cli::option(app, "--epochs", o->epochs, "epochs to average, e.g. 34,39,43 (defaults: seg 34,39,43; cls 24,29-33)");
  auto ckpts = cli::option(app, "--checkpoints", o->checkpoints, "explicit checkpoint files A,B,... instead of --epochs");
  epochs.excludes(ckpts);
  cli::out_option(app, o->out, "output checkpoint (default RUN/swa.safetensors)");
  cli::option(app, "--images", o->images, "training images folder (BatchNorm pass)");
  cli::option(app, "--csv", o->csv, "training labels, competition RLE CSV");
  cli::option(app, "--masks", o->masks, "training labels, a folder of mask PNGs");
  cli::option(app, "--folds", o->folds, "folds folder (fold{k}/train.txt, val.txt)");
  cli::option(app, "--fold", o->fold, "fold number", 0, 1000);
  cli::option(app, "--size", o->size, "training size S (Resize S x S of the augmentation)", 32, 8192);
  cli::option(app, "--batch", o->batch, "BatchNorm pass batch size", 1, 4096);
  cli::workers_option(app, o->workers);
  cli::seed_option(app, o->seed);
  cli::device_option(app, o->device);
  cli::option(app, "--max-batches", o->max_batches, "stop the BatchNorm pass after N batches (0: whole pass)", 0,
              int64_t{1} << 40);
  cli::flag(app, "--no-bn-update", o->no_bn_update, "average only, keep the averaged running statistics");
  cli::footer(app,
              "Averages the parameters of the checkpoints with equal weights, then resets every BatchNorm and\n"
              "rebuilds its running statistics as a cumulative average (momentum = b/(n+b)) over one shuffled pass\n"
              "of the fold's training images (classification: train + val) with the training augmentation,\n"
              "batch 4, drop_last, train mode. Options not given are read from RUN/config.json as pneumo train\n"
              "writes it (settings: model, task, size, fold, folds or RUN/folds, data with images_subdir and rle_csv\n"
              "or masks_subdir), or from top-level keys model, task, size, fold, images, csv, masks, folds.");
  return [o] { return run_swa(*o); };
});

}  // namespace
