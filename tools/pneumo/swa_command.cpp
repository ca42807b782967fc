// `pneumo swa`: equal average of chosen epoch checkpoints of a run, then BatchNorm recalibration over one
// shuffled, augmented pass of the fold's training set (batch 4, drop_last, train mode), as the reference.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kernels/check.h"
#include "nn/checkpoint.h"
#include "nn/models/registry.h"
#include "tools/pneumo/command.h"
#include "train/dataset.h"
#include "train/folds.h"
#include "train/swa.h"

namespace {

using pneumo::cli::Args;
namespace fs = std::filesystem;

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// A run's config.json: keys at the top level or under "data"; absent file -> empty object.
nlohmann::json read_run_config(const std::string& run) {
  if (run.empty()) return nlohmann::json::object();
  const std::string path = run + "/config.json";
  std::ifstream f(path);
  if (!f) return nlohmann::json::object();
  nlohmann::json j;
  try {
    f >> j;
  } catch (const std::exception& e) {
    PNEUMO_CHECK(false, "swa: cannot parse '", path, "': ", e.what());
  }
  PNEUMO_CHECK(j.is_object(), "swa: '", path, "' is not a JSON object");
  return j;
}

std::string config_string(const nlohmann::json& j, const char* key) {
  for (const nlohmann::json* o : {&j, j.contains("data") ? &j["data"] : nullptr}) {
    if (o && o->is_object() && o->contains(key)) {
      const auto& v = (*o)[key];
      if (v.is_string()) return v.get<std::string>();
      if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
    }
  }
  return "";
}

int run_swa(const Args& args) {
  using namespace pneumo;
  const std::string run = args.get("run", "");
  const nlohmann::json cfg = read_run_config(run);
  auto opt = [&](const char* name, const char* key) {
    std::string v = args.get(name, "");
    return v.empty() ? config_string(cfg, key) : v;
  };
  const std::string model_name = opt("model", "model");
  std::string task = opt("task", "task");
  const std::string epochs_arg = args.get("epochs", "");
  const std::string checkpoints_arg = args.get("checkpoints", "");
  std::string out = args.get("out", "");
  const bool bn_update = !args.flag("no-bn-update");
  const std::string images = opt("images", "images");
  const std::string csv = opt("csv", "csv");
  const std::string masks = opt("masks", "masks");
  const std::string folds_dir = opt("folds", "folds");
  const std::string fold_s = opt("fold", "fold");
  const std::string size_s = opt("size", "size");
  const int batch = static_cast<int>(args.get_int("batch", 4));
  const int workers = static_cast<int>(args.get_int("workers", 2));
  const uint64_t seed = static_cast<uint64_t>(args.get_int("seed", 1992));
  const int64_t max_batches = args.get_int("max-batches", 0);
  const Device device = Device::parse(args.get("device", "cpu"));
  args.finish();

  PNEUMO_CHECK(!model_name.empty(), "swa: give --model NAME (or a --run whose config.json names it)");
  PNEUMO_CHECK(nn::models::is_model_name(model_name), "swa: unknown network '", model_name, "'");
  if (task.empty()) task = model_name.find("cls") != std::string::npos ? "classification" : "segmentation";
  if (task == "cls") task = "classification";
  if (task == "seg") task = "segmentation";
  PNEUMO_CHECK(task == "classification" || task == "segmentation",
               "swa: --task must be segmentation or classification, got '", task, "'");
  const bool classification = task == "classification";

  std::vector<std::string> files;
  if (!checkpoints_arg.empty()) {
    PNEUMO_CHECK(epochs_arg.empty(), "swa: give --epochs (with --run) or --checkpoints, not both");
    files = split_list(checkpoints_arg);
  } else {
    PNEUMO_CHECK(!run.empty(), "swa: give --run RUN [--epochs a,b,c] or --checkpoints f1,f2,...");
    std::vector<int> epochs = train::default_swa_epochs(classification);
    if (!epochs_arg.empty()) {
      epochs.clear();
      for (const std::string& e : split_list(epochs_arg)) {
        char* end = nullptr;
        long v = std::strtol(e.c_str(), &end, 10);
        PNEUMO_CHECK(end && *end == 0 && v >= 0, "swa: --epochs: '", e, "' is not an epoch number");
        epochs.push_back(static_cast<int>(v));
      }
    }
    for (int e : epochs) files.push_back(train::epoch_checkpoint_path(run, e));
  }
  std::vector<std::string> missing;
  for (const std::string& f : files)
    if (!fs::is_regular_file(f)) missing.push_back(f);
  if (!missing.empty()) {
    std::string list;
    for (const std::string& m : missing) list += (list.empty() ? "" : ", ") + m;
    PNEUMO_CHECK(false, "swa: ", missing.size(), " of ", files.size(), " checkpoints missing: ", list);
  }
  if (out.empty()) {
    PNEUMO_CHECK(!run.empty(), "swa: give --out FILE");
    out = run + "/swa.safetensors";
  }

  auto model = nn::models::create_model(model_name);
  train::AverageReport rep = train::average_checkpoints(*model, files, model_name);
  std::printf("swa: %s: averaged %lld tensors over %zu checkpoints\n", model_name.c_str(),
              static_cast<long long>(rep.tensors), files.size());
  if (!rep.ignored.empty())
    std::printf("swa: ignored %zu tensors of the checkpoints that the network does not have (e.g. %s)\n",
                rep.ignored.size(), rep.ignored.front().c_str());

  nn::Metadata meta{{"model", model_name}, {"swa_checkpoints", checkpoints_arg.empty() ? "" : checkpoints_arg}};
  std::string joined;
  for (const std::string& f : files) joined += (joined.empty() ? "" : ",") + f;
  meta["swa_checkpoints"] = joined;
  meta["swa_bn_update"] = bn_update ? "yes" : "no";
  if (bn_update) {
    PNEUMO_CHECK(!images.empty() && (csv.empty() != masks.empty()),
                 "swa: the BatchNorm update needs the training images: --images DIR and one of --csv LABELS.csv or "
                 "--masks DIR (or a --run whose config.json names them); --no-bn-update skips it");
    PNEUMO_CHECK(!size_s.empty(), "swa: give --size (the training size)");
    const int size = std::stoi(size_s);
    std::vector<std::string> ids;
    if (!folds_dir.empty()) {
      PNEUMO_CHECK(!fold_s.empty(), "swa: --folds needs --fold K");
      train::FoldSplit split = train::read_fold(folds_dir, std::stoi(fold_s));
      ids = split.train;
      if (classification) ids.insert(ids.end(), split.val.begin(), split.val.end());  // reference: train + val
    }
    std::shared_ptr<const train::Dataset> ds;
    if (!csv.empty())
      ds = std::make_shared<train::RleCsvDataset>(images, csv, ids);
    else
      ds = std::make_shared<train::MaskFolderDataset>(images, masks, ids);
    model->to(device);
    train::BnPassOptions bo;
    bo.size = size;
    bo.batch = batch;
    bo.workers = workers;
    bo.seed = seed;
    bo.max_batches = max_batches;
    bo.device = device;
    bo.progress = true;
    const int64_t samples = train::recalibrate_batchnorm_on(*model, ds, bo);
    std::printf("swa: BatchNorm statistics recomputed over %lld %s images (batches of %d, size %d)\n",
                static_cast<long long>(samples), classification ? "train+val" : "training", batch, size);
    meta["swa_bn_samples"] = std::to_string(samples);
    model->to(Device::cpu());
  }
  nn::save_state(*model, out, meta);
  std::printf("swa: wrote %s\n", out.c_str());
  return 0;
}

PNEUMO_COMMAND("swa", "average epoch checkpoints (SWA) and recompute BatchNorm statistics",
               "usage: pneumo swa --model NAME (--run RUN [--epochs 34,39,43] | --checkpoints A,B,...) [--out FILE]\n"
               "                  [--images DIR (--csv LABELS.csv | --masks DIR) [--folds DIR --fold K] --size S]\n"
               "                  [--task segmentation|classification] [--batch 4] [--seed 1992] [--workers 2]\n"
               "                  [--device cpu|cuda] [--no-bn-update] [--max-batches N]\n"
               "Averages the parameters of the checkpoints with equal weights (default epochs: segmentation\n"
               "34,39,43; classification 24,29,30,31,32,33; files RUN/checkpoints/epoch-NNN.safetensors), then\n"
               "resets every BatchNorm and rebuilds its running statistics as a cumulative average over one\n"
               "shuffled pass of the fold's training images (classification: train + val) with the training\n"
               "augmentation, batch 4, drop_last, train mode. Options not given are read from RUN/config.json\n"
               "(keys model, task, size, fold, images, csv, masks, folds; top level or under \"data\").\n"
               "Output: RUN/swa.safetensors unless --out.",
               run_swa);

}  // namespace
