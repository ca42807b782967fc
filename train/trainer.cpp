// The training loop; see trainer.h for the run folder and the determinism contract.
#include "train/trainer.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include "augment/pipeline.h"
#include "augment/pipeline_cuda.h"
#include "autograd/functions.h"
#include "kernels/atomic_file.h"
#include "kernels/check.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/losses.h"
#include "nn/models/registry.h"
#include "nn/models/weights_import.h"
#include "nn/weight_cast.h"
#include "tensor/cuda_graph.h"
#include "tensor/cuda_runtime.h"
#include "tensor/generator.h"
#include "tensor/ops.h"
#include "train/dataset.h"
#include "train/folds.h"
#include "train/loader.h"
#include "train/metric.h"
#include "train/plot.h"
#include "train/progress.h"
#include "train/schedule.h"
#include "train/synthetic.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace pneumo::train {

// ------------------------------------------------------------------------------------------ settings

LossKind parse_loss_kind(const std::string& name) {
  if (name == "dice") return LossKind::Dice;
  if (name == "dice+bce") return LossKind::DiceBceCls;
  if (name == "focal+bce") return LossKind::FocalBceCls;
  PNEUMO_FAIL("--loss must be dice, dice+bce or focal+bce, got '", name, "'");
}

std::string loss_kind_name(LossKind kind) {
  switch (kind) {
    case LossKind::Dice: return "dice";
    case LossKind::DiceBceCls: return "dice+bce";
    case LossKind::FocalBceCls: return "focal+bce";
  }
  return "?";
}

ModelDefaults model_defaults(const std::string& m) {
  // SOLUTION-FACTS.md "Batches" and "Losses": segmentation 44 epochs, classification 34.
  if (m == "unet_se50" || m == "unet_se101" || m == "deeplab_se50")
    return {1024, 4, 2, 44, m == "deeplab_se50" ? LossKind::Dice : LossKind::DiceBceCls, false};
  if (m == "unet_ef3") return {1024, 6, 2, 44, LossKind::Dice, false};
  if (m == "unet_ef5") return {768, 4, 2, 44, LossKind::Dice, false};
  if (m == "cls_se50") return {768, 16, 8, 34, LossKind::FocalBceCls, true};
  if (m == "cls_ef3") return {1024, 16, 8, 34, LossKind::FocalBceCls, true};
  if (m == "tiny_unet_se") return {64, 4, 4, 44, LossKind::DiceBceCls, false};
  if (m == "tiny_unet_ef" || m == "tiny_deeplab_se") return {64, 4, 4, 44, LossKind::Dice, false};
  if (m == "tiny_cls_ef") return {64, 8, 8, 34, LossKind::FocalBceCls, true};
  PNEUMO_FAIL("--model '", m, "' is not a segmentation or classification network (see pneumo info)");
}

void resolve_config(TrainConfig& c) {
  PNEUMO_CHECK(!c.model.empty(), "--model is required");
  const ModelDefaults d = model_defaults(c.model);
  if (c.size <= 0) c.size = d.size;
  if (c.batch <= 0) c.batch = d.batch;
  if (c.val_batch <= 0) c.val_batch = d.val_batch;
  if (c.epochs <= 0) c.epochs = d.epochs;
  if (c.loss.empty()) c.loss = loss_kind_name(d.loss);
  parse_loss_kind(c.loss);
  if (c.task.empty()) c.task = d.classification ? "classification" : "segmentation";
  PNEUMO_CHECK(c.task == "segmentation" || c.task == "classification",
               "--task must be segmentation or classification, got '", c.task, "'");
  if (c.eta_min < 0) c.eta_min = c.task == "classification" ? 1e-5 : 1e-6;
  const int tail = static_cast<int>(c.tail.size());
  // The reference's 40 + 4 (44) and 30 + 4 (34); short runs (tests, demos) are all cosine.
  if (c.cosine_epochs < 0) c.cosine_epochs = c.epochs >= tail + c.period ? c.epochs - tail : c.epochs;
  PNEUMO_CHECK(c.size >= 32 && c.size % 32 == 0, "--size must be a multiple of 32 (>= 32), got ", c.size);
  PNEUMO_CHECK(c.batch >= 1 && c.val_batch >= 1, "--batch and --val-batch must be >= 1");
  PNEUMO_CHECK(c.fold >= 0 && c.num_folds >= 2 && c.fold < c.num_folds, "--fold must be in 0..", c.num_folds - 1,
               ", got ", c.fold);
  PNEUMO_CHECK(c.optimizer == "adam" || c.optimizer == "adamw", "--optimizer must be adam or adamw, got '",
               c.optimizer, "'");
  PNEUMO_CHECK(c.lr > 0 && c.period >= 1, "--lr must be > 0 and --period >= 1");
  PNEUMO_CHECK(c.augment == "reference" || c.augment == "none", "--augment must be reference or none, got '",
               c.augment, "'");
  PNEUMO_CHECK(c.dtype == "auto" || c.dtype == "f32" || c.dtype == "bf16", "--dtype must be auto, f32 or bf16, got '",
               c.dtype, "'");
  PNEUMO_CHECK(c.workers >= 0 && c.log_every >= 1 && c.overlays >= 0, "--workers, --log-every, --overlays out of range");
  PNEUMO_CHECK(!c.data.empty(), "--data is required");
  PNEUMO_CHECK(!c.out.empty(), "--out is required");
}

namespace {

json config_json(const TrainConfig& c) {
  return json{{"model", c.model}, {"data", c.data}, {"out", c.out}, {"images_subdir", c.images_subdir},
              {"masks_subdir", c.masks_subdir}, {"rle_csv", c.rle_csv}, {"folds", c.folds}, {"fold", c.fold},
              {"num_folds", c.num_folds}, {"task", c.task}, {"extra_data", c.extra_data}, {"init", c.init},
              {"size", c.size}, {"batch", c.batch}, {"val_batch", c.val_batch}, {"epochs", c.epochs},
              {"optimizer", c.optimizer}, {"lr", c.lr}, {"beta1", c.beta1}, {"beta2", c.beta2}, {"eps", c.eps},
              {"weight_decay", c.weight_decay}, {"eta_min", c.eta_min}, {"period", c.period},
              {"cosine_epochs", c.cosine_epochs}, {"tail", c.tail}, {"loss", c.loss}, {"augment", c.augment}, {"gpu_augment", c.gpu_augment},
              {"cuda_graph", c.cuda_graph},
              {"device", c.device}, {"dtype", c.dtype}, {"seed", c.seed}, {"workers", c.workers},
              {"threads", c.threads}, {"skip_bad", c.skip_bad}, {"max_steps", c.max_steps},
              {"max_train", c.max_train}, {"max_val", c.max_val}, {"val_bn_batches", c.val_bn_batches}, {"overlays", c.overlays},
              {"save_val_predictions", c.save_val_predictions}, {"log_every", c.log_every},
              {"debug_nan_step", c.debug_nan_step}, {"debug_stop_step", c.debug_stop_step}};
}

// Every key of config_json, read back with its type checked; errors name the file and the key.
TrainConfig config_from_json(const json& j, const std::string& file) {
  PNEUMO_CHECK(j.is_object(), file, ": \"settings\" must be an object of the run's settings");
  TrainConfig c;
  auto get = [&](const char* key, auto& field) {
    using T = std::decay_t<decltype(field)>;
    const auto it = j.find(key);
    PNEUMO_CHECK(it != j.end(), file, ": settings.", key, " is missing (the file is damaged or from another version)");
    bool ok = false;
    if constexpr (std::is_same_v<T, std::string>) {
      ok = it->is_string();
    } else if constexpr (std::is_same_v<T, bool>) {
      ok = it->is_boolean();
    } else if constexpr (std::is_floating_point_v<T>) {
      ok = it->is_number();
    } else if constexpr (std::is_same_v<T, std::vector<double>>) {
      ok = it->is_array() && std::all_of(it->begin(), it->end(), [](const json& v) { return v.is_number(); });
    } else {
      static_assert(std::is_integral_v<T>, "a setting of another type");
      ok = it->is_number_integer();
      // Integers that do not fit the field (a 64-bit value for an int) are damage, not a setting.
      if (ok && it->is_number_unsigned()) {
        ok = it->template get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
      } else if (ok) {
        const int64_t v = it->template get<int64_t>();
        ok = std::is_signed_v<T> ? v >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
                                       v <= static_cast<int64_t>(std::numeric_limits<T>::max())
                                 : v >= 0 && static_cast<uint64_t>(v) <= static_cast<uint64_t>(std::numeric_limits<T>::max());
      }
    }
    PNEUMO_CHECK(ok, file, ": settings.", key, " has the wrong type or is out of range (", it->type_name(), " ",
                 it->dump().substr(0, 40), ")");
    field = it->template get<T>();
  };
#define GET(f) get(#f, c.f)
  GET(model); GET(data); GET(out); GET(images_subdir); GET(masks_subdir); GET(rle_csv); GET(folds); GET(fold);
  GET(num_folds); GET(task); GET(extra_data); GET(init); GET(size); GET(batch); GET(val_batch); GET(epochs);
  GET(optimizer); GET(lr); GET(beta1); GET(beta2); GET(eps); GET(weight_decay); GET(eta_min); GET(period);
  GET(cosine_epochs); GET(tail); GET(loss); GET(augment); GET(gpu_augment); GET(device); GET(dtype); GET(seed); GET(workers);
  GET(threads); GET(skip_bad); GET(max_steps); GET(max_train); GET(max_val); GET(val_bn_batches); GET(overlays);
  GET(save_val_predictions); GET(log_every); GET(debug_nan_step); GET(debug_stop_step);
  if (j.contains("cuda_graph")) GET(cuda_graph);  // absent from runs written before it existed
#undef GET
  return c;
}

}  // namespace

TrainConfig parse_run_config(const std::string& json_text, const std::string& file) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const std::exception& e) {
    PNEUMO_FAIL(file, ": not valid JSON (", e.what(), ")");
  }
  PNEUMO_CHECK(j.is_object() && j.contains("settings"), file, ": no \"settings\" object (not a pneumo run's config.json)");
  return config_from_json(j["settings"], file);
}

namespace {

std::string device_description(const Device& device) {
  if (device.is_cuda()) {
    for (const auto& d : cuda::devices())
      if (d.index == device.index) return detail::concat("cuda:", d.index, " ", d.name);
    return device.str();
  }
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return detail::concat("cpu (", omp_get_max_threads(), " OpenMP threads, host ", host, ")");
}

// ------------------------------------------------------------------------------------------ data

// A subset of another dataset by index.
class SubsetDataset : public Dataset {
 public:
  SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<size_t> index)
      : base_(std::move(base)), index_(std::move(index)) {}
  size_t size() const override { return index_.size(); }
  const std::string& id(size_t i) const override { return base_->id(index_.at(i)); }
  Sample load(size_t i) const override { return base_->load(index_.at(i)); }
  bool positive(size_t i) const override { return base_->positive(index_.at(i)); }

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<size_t> index_;
};

std::shared_ptr<const Dataset> open_data(const std::string& spec, const TrainConfig& c) {
  if (spec.rfind("synthetic:", 0) == 0) {
    long long n = 0;
    int size = 128;
    const int got = std::sscanf(spec.c_str() + 10, "%lld:%d", &n, &size);
    PNEUMO_CHECK(got >= 1 && n >= 2 && size >= 16, "--data ", spec, ": expected synthetic:N or synthetic:N:SIZE");
    return std::make_shared<SyntheticDataset>(n, size, c.seed);
  }
  PNEUMO_CHECK(fs::is_directory(spec), "--data ", spec, ": no such folder");
  const fs::path dir(spec);
  const std::string images = fs::is_directory(dir / c.images_subdir) ? (dir / c.images_subdir).string() : spec;
  if (fs::is_regular_file(dir / c.rle_csv)) return std::make_shared<RleCsvDataset>(images, (dir / c.rle_csv).string());
  PNEUMO_CHECK(fs::is_directory(dir / c.masks_subdir), "--data ", spec, ": found neither ", c.rle_csv, " nor a ",
               c.masks_subdir, "/ folder (expected images/ + masks/ with the same names, or images + ", c.rle_csv, ")");
  return std::make_shared<MaskFolderDataset>(images, (dir / c.masks_subdir).string());
}

// Runs fn(i) for i in [0, n) on OpenMP threads; the first error (lowest i) is rethrown, others collected.
template <typename Fn>
std::vector<std::string> parallel_try(size_t n, Fn fn) {
  std::vector<std::string> errors(n);
#pragma omp parallel for schedule(dynamic, 4)
  for (long long i = 0; i < static_cast<long long>(n); ++i) {
    try {
      fn(static_cast<size_t>(i));
    } catch (const std::exception& e) {
      errors[static_cast<size_t>(i)] = e.what();
    }
  }
  return errors;
}

struct FoldData {
  std::shared_ptr<const Dataset> train, val;
  int64_t skipped_bad = 0;
  std::vector<std::string> bad_messages;
};

std::vector<size_t> ids_to_index(const Dataset& ds, const std::vector<std::string>& ids, const std::string& where) {
  std::unordered_map<std::string, size_t> by_id;
  for (size_t i = 0; i < ds.size(); ++i) by_id.emplace(ds.id(i), i);
  std::vector<size_t> out;
  for (const std::string& id : ids) {
    auto it = by_id.find(id);
    PNEUMO_CHECK(it != by_id.end(), where, ": image '", id, "' is not in the data");
    out.push_back(it->second);
  }
  return out;
}

FoldData build_fold_data(const TrainConfig& c, bool resume) {
  auto all = open_data(c.data, c);
  const std::string folds_dir = c.folds.empty() ? c.out + "/folds" : c.folds;
  FoldData fd;
  std::vector<std::string> bad;  // ids found unreadable
  // The folds are written fold by fold, train.txt then val.txt: a run killed while writing them has no last
  // val.txt, and they are made again (the same: they depend only on the data and the seed).
  const std::string last_fold_file = folds_dir + "/fold" + std::to_string(c.num_folds - 1) + "/val.txt";
  if (c.folds.empty() && (!resume || !fs::exists(last_fold_file))) {
    // Positive flags (mask folders read every mask), then stratified folds saved into the run folder.
    std::vector<char> pos(all->size(), 0);
    std::vector<std::string> errors = parallel_try(all->size(), [&](size_t i) { pos[i] = all->positive(i); });
    for (size_t i = 0; i < errors.size(); ++i)
      if (!errors[i].empty()) {
        PNEUMO_CHECK(c.skip_bad, errors[i], " (--skip-bad leaves such images out)");
        fd.bad_messages.push_back(errors[i]);
        bad.push_back(all->id(i));
      }
    std::vector<std::string> ids;
    std::vector<bool> positive;
    for (size_t i = 0; i < all->size(); ++i) {
      if (!errors[i].empty()) continue;
      ids.push_back(all->id(i));
      positive.push_back(pos[i] != 0);
    }
    const std::vector<int> assignment = stratified_folds(positive, c.num_folds, c.seed);
    const FoldTask task = c.task == "classification" ? FoldTask::Classification : FoldTask::Segmentation;
    std::vector<FoldSplit> splits;
    for (int k = 0; k < c.num_folds; ++k) splits.push_back(make_split(ids, positive, assignment, k, task));
    write_folds(folds_dir, splits);
  }
  FoldSplit split = read_fold(folds_dir, c.fold);
  if (c.max_train > 0 && static_cast<int64_t>(split.train.size()) > c.max_train) split.train.resize(c.max_train);
  if (c.max_val > 0 && static_cast<int64_t>(split.val.size()) > c.max_val) split.val.resize(c.max_val);
  const std::string where = detail::concat(folds_dir, "/fold", c.fold);
  std::vector<size_t> train_idx = ids_to_index(*all, split.train, where + "/train.txt");
  std::vector<size_t> val_idx = ids_to_index(*all, split.val, where + "/val.txt");
  if (c.skip_bad) {
    // Every image and mask of the fold is decoded once; unreadable ones are left out and counted.
    auto check = [&](std::vector<size_t>& idx) {
      std::vector<std::string> errors = parallel_try(idx.size(), [&](size_t i) { (void)all->load(idx[i]); });
      std::vector<size_t> kept;
      for (size_t i = 0; i < idx.size(); ++i) {
        if (errors[i].empty()) kept.push_back(idx[i]);
        else fd.bad_messages.push_back(errors[i]);
      }
      idx.swap(kept);
    };
    check(train_idx);
    check(val_idx);
  }
  fd.skipped_bad = static_cast<int64_t>(fd.bad_messages.size());
  PNEUMO_CHECK(!train_idx.empty() && !val_idx.empty(), where, ": the fold has no usable training or validation images");
  fd.train = std::make_shared<SubsetDataset>(all, train_idx);
  fd.val = std::make_shared<SubsetDataset>(all, val_idx);
  if (!c.extra_data.empty()) {
    auto extra = open_data(c.extra_data, c);
    fd.train = std::make_shared<ConcatDataset>(std::vector<std::shared_ptr<const Dataset>>{fd.train, extra});
  }
  return fd;
}

// ------------------------------------------------------------------------------------------ metrics

struct MetricsRow {
  int epoch = 0;
  double lr = 0, train_loss = 0, val_loss = 0, val_dice = 0, val_dice_pos = NAN, val_auc = NAN, seconds = 0,
         images_per_s = 0;
};
const char* kMetricsHeader = "epoch,lr,train_loss,val_loss,val_dice,val_dice_pos,val_auc,seconds,images_per_s";

std::string fmt(double v) {
  if (!std::isfinite(v)) return "";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.8g", v);
  return buf;
}

double parse_or_nan(const std::string& s) { return s.empty() ? NAN : std::stod(s); }

std::vector<MetricsRow> read_metrics(const std::string& path) {
  std::vector<MetricsRow> rows;
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return rows;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string item;
    while (std::getline(ss, item, ',')) f.push_back(item);
    while (f.size() < 9) f.emplace_back();
    MetricsRow r;
    r.epoch = std::stoi(f[0]);
    r.lr = parse_or_nan(f[1]);
    r.train_loss = parse_or_nan(f[2]);
    r.val_loss = parse_or_nan(f[3]);
    r.val_dice = parse_or_nan(f[4]);
    r.val_dice_pos = parse_or_nan(f[5]);
    r.val_auc = parse_or_nan(f[6]);
    r.seconds = parse_or_nan(f[7]);
    r.images_per_s = parse_or_nan(f[8]);
    rows.push_back(r);
  }
  return rows;
}

// Rewritten whole each epoch (small), atomically, so a crash never leaves half a row.
void write_metrics(const std::string& path, const std::vector<MetricsRow>& rows) {
  write_file_atomic(path, [&](std::ostream& out) {
    out << kMetricsHeader << "\n";
    for (const MetricsRow& r : rows)
      out << r.epoch << "," << fmt(r.lr) << "," << fmt(r.train_loss) << "," << fmt(r.val_loss) << ","
          << fmt(r.val_dice) << "," << fmt(r.val_dice_pos) << "," << fmt(r.val_auc) << "," << fmt(r.seconds) << ","
          << fmt(r.images_per_s) << "\n";
  });
}

void draw_curves(const std::string& path, const std::vector<MetricsRow>& rows) {
  Series tl{"train loss", {}, {}, {31, 119, 180}}, vl{"val loss", {}, {}, {255, 127, 14}};
  Series vd{"val dice", {}, {}, {44, 160, 44}}, vp{"dice pos", {}, {}, {148, 103, 189}};
  Series lr{"lr", {}, {}, {214, 39, 40}};
  bool any_pos = false;
  for (const MetricsRow& r : rows) {
    tl.x.push_back(r.epoch), tl.y.push_back(r.train_loss);
    vl.x.push_back(r.epoch), vl.y.push_back(r.val_loss);
    vd.x.push_back(r.epoch), vd.y.push_back(r.val_dice);
    vp.x.push_back(r.epoch), vp.y.push_back(r.val_dice_pos);
    lr.x.push_back(r.epoch), lr.y.push_back(r.lr);
    any_pos = any_pos || (std::isfinite(r.val_dice_pos) && std::fabs(r.val_dice_pos - r.val_dice) > 1e-12);
  }
  // Dice from its own minimum: late epochs move it by hundredths, invisible on a 0-1 axis.
  PlotPanel loss{"loss by epoch", {tl, vl}, true}, dice{"validation dice by epoch", {vd}, false};
  if (any_pos) dice.series.push_back(vp);
  PlotPanel rate{"learning rate", {lr}, true};
  aug::write_png(path, plot_panels({loss, dice, rate}, 420, 300));
}

double auc(const std::vector<double>& score, const std::vector<int>& label) {
  std::vector<size_t> order(score.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  double rank_sum = 0;
  int64_t npos = 0, nneg = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && score[order[j]] == score[order[i]]) ++j;
    const double rank = (i + 1 + j) / 2.0;  // average rank of ties (1-based)
    for (size_t k = i; k < j; ++k)
      if (label[order[k]]) rank_sum += rank;
    i = j;
  }
  for (int l : label) (l ? npos : nneg)++;
  if (npos == 0 || nneg == 0) return NAN;
  return (rank_sum - npos * (npos + 1) / 2.0) / (static_cast<double>(npos) * nneg);
}

// ------------------------------------------------------------------------------------------ checkpoints

std::string epoch_name(int epoch) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "epoch-%03d", epoch);
  return buf;
}

// Where the loop stands: the next epoch and step to run, and what the interrupted epoch has accumulated.
struct LoopState {
  int epoch = 0;
  int64_t step = 0;
  double loss_sum = 0;
  int64_t loss_count = 0, images = 0;
  double train_seconds = 0;
  uint64_t gen_seed = 0, gen_offset = 0;
};

std::string tag_of(const LoopState& s) { return detail::concat("epoch ", s.epoch, " step ", s.step); }

// Model file first, then the state file (its presence marks the pair complete; both carry the same tag).
void save_checkpoint(const std::string& stem, const nn::Module& model, const Optimizer& opt, const LoopState& s,
                     const nn::Metadata& extra) {
  nn::Metadata mm = extra;
  mm["trainer.tag"] = tag_of(s);
  nn::save_state(model, stem + ".safetensors", mm);
  // Tests: PNEUMO_DEBUG_KILL_IN_SAVE=epoch-NNN dies between the two files of that checkpoint (a crash
  // mid-write).
  if (const char* k = std::getenv("PNEUMO_DEBUG_KILL_IN_SAVE"); k && *k && fs::path(stem).filename() == k)
    std::raise(SIGKILL);
  OptimizerStateDict od = opt.state_dict();
  nn::Metadata meta;
  for (const auto& [k, v] : od.metadata) meta["optim." + k] = v;
  meta["trainer.tag"] = tag_of(s);
  meta["trainer.epoch"] = std::to_string(s.epoch);
  meta["trainer.step"] = std::to_string(s.step);
  meta["trainer.loss_sum"] = detail::concat(std::setprecision(17), s.loss_sum);
  meta["trainer.loss_count"] = std::to_string(s.loss_count);
  meta["trainer.images"] = std::to_string(s.images);
  meta["trainer.train_seconds"] = detail::concat(std::setprecision(17), s.train_seconds);
  meta["trainer.gen_seed"] = std::to_string(s.gen_seed);
  meta["trainer.gen_offset"] = std::to_string(s.gen_offset);
  nn::save_safetensors(stem + ".state.safetensors", od.tensors, meta);
}

struct Candidate {
  std::string stem;
  LoopState state;
};

// An engine error's message without its " [check failed: EXPR] (file.cpp:LINE)" tail, to wrap it in another.
std::string reason_of(const std::exception& e) {
  std::string m = e.what();
  const size_t bracket = m.rfind(" [check failed: ");
  const size_t at = bracket != std::string::npos ? bracket : m.rfind(" (");
  if (at != std::string::npos && !m.empty() && m.back() == ')' && m.find(".cpp:", at) != std::string::npos) m.erase(at);
  return m;
}

[[noreturn]] void cannot_resume(const std::exception& e) {
  PNEUMO_FAIL("cannot resume: ", reason_of(e), "; move the checkpoint aside to resume from the one before it");
}

// The state of a checkpoint pair, or false when either file is missing or the two are from different writes
// (a crash between them). A file that exists but cannot be read is corrupt (writes are atomic, so no crash
// leaves one): that is an error naming it, never a silent step back to an older checkpoint.
bool read_candidate(const std::string& stem, Candidate& out) {
  if (!fs::exists(stem + ".safetensors") || !fs::exists(stem + ".state.safetensors")) return false;
  nn::Metadata sm, mm;
  try {
    sm = nn::read_safetensors_metadata(stem + ".state.safetensors");
    mm = nn::read_safetensors_metadata(stem + ".safetensors");
  } catch (const std::exception& e) {
    cannot_resume(e);
  }
  try {
    if (!sm.count("trainer.tag") || !mm.count("trainer.tag") || sm.at("trainer.tag") != mm.at("trainer.tag"))
      return false;
    out.stem = stem;
    out.state.epoch = std::stoi(sm.at("trainer.epoch"));
    out.state.step = std::stoll(sm.at("trainer.step"));
    out.state.loss_sum = std::stod(sm.at("trainer.loss_sum"));
    out.state.loss_count = std::stoll(sm.at("trainer.loss_count"));
    out.state.images = std::stoll(sm.at("trainer.images"));
    out.state.train_seconds = std::stod(sm.at("trainer.train_seconds"));
    out.state.gen_seed = std::stoull(sm.at("trainer.gen_seed"));
    out.state.gen_offset = std::stoull(sm.at("trainer.gen_offset"));
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// The most advanced complete checkpoint of the run (epoch files and the mid-epoch resume file).
bool find_resume_point(const std::string& dir, Candidate& best) {
  bool found = false;
  if (!fs::is_directory(dir)) return false;
  std::vector<std::string> stems;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const std::string suffix = ".state.safetensors";
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      stems.push_back(dir + "/" + name.substr(0, name.size() - suffix.size()));
  }
  for (const std::string& stem : stems) {
    Candidate c;
    if (!read_candidate(stem, c)) continue;
    if (!found || c.state.epoch > best.state.epoch ||
        (c.state.epoch == best.state.epoch && c.state.step > best.state.step)) {
      best = c;
      found = true;
    }
  }
  return found;
}

// Both files are verified (checksums) before anything is used; a corrupt one stops the resume, named.
void load_checkpoint(const Candidate& c, nn::Module& model, Optimizer& opt) {
  nn::SafetensorsContents sc;
  try {
    nn::load_state(model, c.stem + ".safetensors", /*strict=*/true);
    sc = nn::load_safetensors(c.stem + ".state.safetensors");
  } catch (const std::exception& e) {
    cannot_resume(e);
  }
  OptimizerStateDict od;
  od.tensors = std::move(sc.tensors);
  for (const auto& [k, v] : sc.metadata)
    if (k.rfind("optim.", 0) == 0) od.metadata[k.substr(6)] = v;
  opt.load_state_dict(od);
}

// Temporary files ("<name>.tmp.<pid>.<n>", kernels/atomic_file.h) left by a killed run: one run writes a
// run folder at a time, so none of them can belong to a live writer.
bool is_atomic_temporary(const std::string& name) {
  const size_t at = name.rfind(".tmp.");
  if (at == std::string::npos || at == 0) return false;
  const std::string rest = name.substr(at + 5);  // "<pid>.<n>"
  const size_t dot = rest.find('.');
  auto digits = [](const std::string& t) { return !t.empty() && t.find_first_not_of("0123456789") == std::string::npos; };
  return dot != std::string::npos && digits(rest.substr(0, dot)) && digits(rest.substr(dot + 1));
}

void remove_stale_temporaries(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file(ec) && is_atomic_temporary(e.path().filename().string())) fs::remove(e.path(), ec);
}

// ------------------------------------------------------------------------------------------ signals

std::atomic<int> g_stop{0};
extern "C" void on_stop_signal(int sig) {
  g_stop.store(sig);
  std::signal(sig, SIG_DFL);  // a second signal ends the process at once
}

struct SignalScope {
  struct sigaction old_int {}, old_term {};
  SignalScope() {
    g_stop.store(0);
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
  }
  ~SignalScope() {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
  }
};

// ------------------------------------------------------------------------------------------ images

aug::Image gray_from_normalised(const float* hwc3, int h, int w) {
  aug::Image g(h, w);
  for (int64_t i = 0; i < static_cast<int64_t>(h) * w; ++i) {
    const float v = (hwc3[i * 3] * aug::kImagenetStd[0] + aug::kImagenetMean[0]) * 255.0f;
    g.pixels[static_cast<size_t>(i)] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
  }
  return g;
}

}  // namespace

Tensor gray_u8_from_normalised(const Tensor& images) {
  const int64_t n = images.shape()[0], h = images.shape()[1], w = images.shape()[2];
  Tensor gray = ops::split_channels(images, {1, 2})[0];
  return ops::affine(gray, aug::kImagenetStd[0] * 255.0, aug::kImagenetMean[0] * 255.0).to(DType::U8).reshape({n, h, w});
}

namespace {

// The rest of the reference augmentation on the device, after the loader's CPU resize: the same draws as
// the CPU path (pipeline.draw(seed, sample index)), applied by apply_batch_cuda to the U8 images recovered
// from the normalised batch (exact: the normalisation's rounding error is far below half a grey level).
void gpu_augment_batch(const aug::Pipeline& pipe, uint64_t seed, const std::vector<int64_t>& samples, Tensor& images,
                       Tensor& masks) {
  const int64_t n = images.shape()[0], h = images.shape()[1], w = images.shape()[2];
  std::vector<aug::AugmentParams> params;
  for (int64_t s : samples) {
    aug::AugmentParams p = pipe.draw(seed, static_cast<uint64_t>(s));
    p.out_height = p.out_width = 0;  // already resized
    params.push_back(std::move(p));
  }
  Tensor gray = gray_u8_from_normalised(images);
  Tensor m8 = ops::affine(masks, 255.0, 0.0).to(DType::U8).reshape({n, h, w});
  aug::AugmentedTensors a = aug::apply_batch_cuda(params, gray, m8);
  images = aug::normalize_imagenet_cuda(a.image);
  masks = ops::affine(a.mask.to(DType::F32), 1.0 / 255.0, 0.0).reshape({n, h, w, 1});
}

}  // namespace

// ------------------------------------------------------------------------------------------ steps

ag::Variable compute_loss(LossKind kind, const nn::models::NetworkOutput& out, const Tensor& masks,
                          const Tensor& labels) {
  switch (kind) {
    case LossKind::Dice:
      PNEUMO_CHECK(out.seg.defined(), "loss dice: the network has no segmentation output");
      return nn::soft_dice_loss(out.seg, masks);
    case LossKind::DiceBceCls:
      PNEUMO_CHECK(out.seg.defined() && out.cls.defined(),
                   "loss dice+bce needs a network with a classification head (use --loss dice)");
      return ag::add(nn::soft_dice_loss(out.seg, masks), nn::bce_with_logits(out.cls, labels));
    case LossKind::FocalBceCls: {
      PNEUMO_CHECK(out.seg.defined() && out.cls.defined(),
                   "loss focal+bce needs a network with segmentation and classification outputs");
      ag::Variable cls = ag::add(nn::focal_loss(out.cls, labels, 2.0), nn::bce_with_logits(out.cls, labels));
      return ag::add(cls, nn::bce_with_logits(out.seg, masks));
    }
  }
  PNEUMO_FAIL("unknown loss");
}

Tensor train_step(nn::models::Network& model, Optimizer& optimizer, LossKind kind, const Tensor& images,
                  const Tensor& masks, const Tensor& labels, DType compute_dtype) {
  optimizer.zero_grad();
  ag::Variable loss;
  {
    nn::WeightCastScope cast(model, compute_dtype);  // PNEUMO_CAST_ONCE=1: bf16 weights in one launch
    nn::models::NetworkOutput out = model.run(ag::Variable(images.to(compute_dtype)));
    loss = compute_loss(kind, out, masks, labels);
    loss.backward();
  }
  optimizer.step();
  return loss.value();
}

namespace {

// --cuda-graph: train_step captured once, after an eager step has done every first-use setup (cuDNN
// searches, handles, optimiser state), on static copies of the batch; each later batch of the same shapes
// is copied in and the graph replayed (one launch instead of thousands). The optimiser must be capturable.
class GraphStep {
 public:
  // False, with the reason in `why`, when the step cannot be captured. Random draws (drop-connect) are
  // captured with a device-side state (tensor/graph_random.h): each replay draws the eager step's masks.
  bool capture(nn::models::Network& model, Optimizer& opt, LossKind kind, const Tensor& images, const Tensor& masks,
               const Tensor& labels, DType dtype, std::string& why) {
    images_ = images.clone();
    masks_ = masks.clone();
    labels_ = labels.clone();
    auto graph = std::make_unique<cuda::Graph>(images.device().index);
    try {
      graph->capture([&] { loss_ = train_step(model, opt, kind, images_, masks_, labels_, dtype); });
    } catch (const Error& e) {
      why = e.what();
      *this = GraphStep();
      return false;
    }
    graph_ = std::move(graph);
    return true;
  }
  bool captured() const { return graph_ != nullptr; }
  bool fits(const Tensor& images, const Tensor& masks, const Tensor& labels) const {
    return captured() && images.shape() == images_.shape() && masks.shape() == masks_.shape() &&
           labels.shape() == labels_.shape() && images.dtype() == images_.dtype() && masks.dtype() == masks_.dtype() &&
           labels.dtype() == labels_.dtype();
  }
  Tensor replay(const Tensor& images, const Tensor& masks, const Tensor& labels) {
    images_.copy_from(images);
    masks_.copy_from(masks);
    labels_.copy_from(labels);
    graph_->replay();
    return loss_.clone();  // the next replay overwrites loss_
  }

 private:
  std::unique_ptr<cuda::Graph> graph_;
  Tensor images_, masks_, labels_, loss_;
};

}  // namespace

void request_stop(int sig) { g_stop.store(sig); }

std::string git_commit() {
#ifdef PNEUMO_GIT_COMMIT
  return PNEUMO_GIT_COMMIT[0] ? PNEUMO_GIT_COMMIT : "unknown";
#else
  return "unknown";
#endif
}

// ------------------------------------------------------------------------------------------ the run

TrainResult run_training(TrainConfig cfg, bool resume) {
  const std::string run = cfg.out;
  PNEUMO_CHECK(!run.empty(), "--out is required");
  const std::string ckpt_dir = run + "/checkpoints";
  Candidate start;
  bool have_start = false;
  if (resume) {
    PNEUMO_CHECK(fs::exists(run + "/config.json"), "--resume: ", run, "/config.json not found (nothing to resume)");
    const std::string config_path = run + "/config.json";
    std::ifstream in(config_path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    PNEUMO_CHECK(in.good() || in.eof(), "--resume: cannot read ", config_path);
    const TrainConfig saved = parse_run_config(text.str(), config_path);
    const int more_epochs = cfg.epochs;
    cfg = saved;
    cfg.out = run;
    if (more_epochs > 0) cfg.epochs = more_epochs;
    have_start = find_resume_point(ckpt_dir, start);
  } else {
    resolve_config(cfg);
    Candidate existing;
    PNEUMO_CHECK(!find_resume_point(ckpt_dir, existing), run,
                 " already holds checkpoints: add --resume to continue it, or choose a new --out");
  }
  resolve_config(cfg);
  if (cfg.threads > 0) omp_set_num_threads(cfg.threads);
  const Device device = Device::parse(cfg.device);
  if (device.is_cuda()) {
    PNEUMO_CHECK(cuda::available(), "--device ", cfg.device, ": no CUDA device available");
    // The run's own device (a resumed run takes it from config.json, not the command line) must be current:
    // the launchers and the loader's copy events use the current device's context.
    cuda::set_device(device.index);
  }
  if (cfg.dtype == "auto") cfg.dtype = device.is_cuda() ? "bf16" : "f32";
  const DType compute_dtype = cfg.dtype == "bf16" ? DType::BF16 : DType::F32;
  PNEUMO_CHECK(compute_dtype == DType::F32 || device.is_cuda(), "--dtype bf16 needs --device cuda");
  PNEUMO_CHECK(!cfg.cuda_graph || device.is_cuda(), "--cuda-graph needs --device cuda");
  const LossKind loss_kind = parse_loss_kind(cfg.loss);
  fs::create_directories(ckpt_dir);
  remove_stale_temporaries(ckpt_dir);
  remove_stale_temporaries(run);

  // Data.
  FoldData data = build_fold_data(cfg, resume);
  for (const std::string& m : data.bad_messages) std::fprintf(stderr, "skipped: %s\n", m.c_str());
  if (!resume) {
    json j{{"settings", config_json(cfg)},
           {"engine", {{"version", PNEUMO_VERSION}, {"git_commit", git_commit()}, {"build_type", PNEUMO_BUILD_TYPE},
                       {"cuda", cuda::compiled_with_cuda()}}},
           {"device", device_description(device)}};
    write_file_atomic(run + "/config.json", j.dump(2) + "\n");
  }

  const aug::Pipeline train_pipe =
      cfg.augment == "reference" ? aug::reference_train_pipeline(cfg.size) : aug::validation_pipeline(cfg.size);
  const aug::Pipeline val_pipe = aug::validation_pipeline(cfg.size);
  const bool gpu_augment = cfg.gpu_augment && cfg.augment == "reference";
  PNEUMO_CHECK(!gpu_augment || device.is_cuda(), "--gpu-augment needs --device cuda");
  // With GPU augmentation the CPU workers only decode and resize (the reference's first transform).
  const aug::Pipeline& loader_pipe = gpu_augment ? val_pipe : train_pipe;
  LoaderOptions lo;
  lo.batch_size = cfg.batch;
  lo.workers = cfg.workers;
  lo.seed = cfg.seed;
  lo.height = lo.width = cfg.size;
  Loader train_loader(data.train, [loader_pipe](aug::Image& im, aug::Image& m, uint64_t s, uint64_t i) {
    loader_pipe.apply(im, m, s, i);
  }, lo);
  LoaderOptions vo = lo;
  vo.batch_size = cfg.val_batch;
  vo.shuffle = false;
  vo.drop_last = false;
  Loader val_loader(data.val, [val_pipe](aug::Image& im, aug::Image& m, uint64_t s, uint64_t i) {
    val_pipe.apply(im, m, s, i);
  }, vo);
  LoaderOptions bo = vo;  // BatchNorm recalibration before validation (--val-bn-batches): resize-only training images
  bo.batch_size = cfg.batch;
  Loader bn_loader(data.train, [val_pipe](aug::Image& im, aug::Image& m, uint64_t s, uint64_t i) {
    val_pipe.apply(im, m, s, i);
  }, bo);
  const int64_t steps_per_epoch = cfg.max_steps > 0 ? std::min<int64_t>(cfg.max_steps, train_loader.batches_per_epoch())
                                                    : train_loader.batches_per_epoch();
  PNEUMO_CHECK(steps_per_epoch >= 1, "the training set (", data.train->size(), " images) is smaller than one batch of ",
               cfg.batch);

  // Model and optimiser.
  default_generator().manual_seed(cfg.seed);
  std::shared_ptr<nn::models::Network> model = nn::models::create_model(cfg.model);
  if (!cfg.init.empty() && !have_start) {
    const nn::Metadata meta = nn::read_safetensors_metadata(cfg.init);
    if (meta.count("pneumo_version")) {
      nn::LoadReport r = nn::load_state(*model, cfg.init, /*strict=*/false);
      std::printf("init %s: %zu tensors loaded%s\n", cfg.init.c_str(), r.loaded.size(),
                  r.ok() ? "" : (" (" + r.str() + ")").c_str());
      PNEUMO_CHECK(!r.loaded.empty(), cfg.init, ": no tensor matches ", cfg.model);
    } else {  // a PyTorch/timm export (KCRS layout)
      nn::SafetensorsContents sc = nn::load_safetensors(cfg.init);
      nn::models::ImportReport r = nn::models::import_pytorch_tensors(*model, sc.tensors, true);
      std::printf("init %s: %s\n", cfg.init.c_str(), r.summary().c_str());
      PNEUMO_CHECK(!r.matched.empty(), cfg.init, ": no tensor matches ", cfg.model);
    }
  }
  model->to(device);
  model->train();
  NamedParameters params = model->named_parameters();
  AdamOptions ao{cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay};
  Adam opt(params, ao, cfg.optimizer == "adamw");
  bool use_graph = (cfg.cuda_graph || cuda::graphs_enabled()) && device.is_cuda();
  if (use_graph) opt.set_capturable(true);
  GraphStep graph_step;
  const WarmRestartCosine schedule(cfg.lr, cfg.eta_min, cfg.period, cfg.cosine_epochs, cfg.tail);

  LoopState st;
  st.gen_seed = default_generator().seed();
  st.gen_offset = default_generator().offset();
  std::vector<MetricsRow> rows;
  if (have_start) {
    load_checkpoint(start, *model, opt);
    st = start.state;
    default_generator().manual_seed(st.gen_seed);
    default_generator().set_offset(st.gen_offset);
    for (const MetricsRow& r : read_metrics(run + "/metrics.csv"))
      if (r.epoch < st.epoch) rows.push_back(r);
    std::printf("resuming %s from %s (epoch %d, step %lld)\n", run.c_str(), start.stem.c_str(), st.epoch,
                static_cast<long long>(st.step));
  } else if (resume) {
    std::printf("resuming %s: no complete checkpoint yet, starting at epoch 0\n", run.c_str());
  }
  write_metrics(run + "/metrics.csv", rows);

  std::printf("train %s: %zu train / %zu val images (fold %d, %s folds), %dx%d, batch %d, %lld steps/epoch, %d epochs, "
              "loss %s, %s lr %g, device %s%s\n",
              cfg.model.c_str(), data.train->size(), data.val->size(), cfg.fold, cfg.task.c_str(), cfg.size, cfg.size,
              cfg.batch, static_cast<long long>(steps_per_epoch), cfg.epochs, cfg.loss.c_str(), cfg.optimizer.c_str(),
              cfg.lr, device_description(device).c_str(),
              use_graph ? " (steps after the first replayed as one CUDA Graph)" : "");
  std::fflush(stdout);

  // Tests: PNEUMO_DEBUG_STEP_DELAY_MS pauses after each step so a signal can be aimed mid-epoch.
  const char* delay_env = std::getenv("PNEUMO_DEBUG_STEP_DELAY_MS");
  const int step_delay_ms = delay_env ? std::atoi(delay_env) : 0;
  SignalScope signals;
  Progress progress;
  TrainResult result;
  result.skipped_bad = data.skipped_bad;
  result.epochs_done = st.epoch;
  if (!rows.empty()) result.last_val_dice = rows.back().val_dice;
  using clock = std::chrono::steady_clock;

  for (int epoch = st.epoch; epoch < cfg.epochs; ++epoch) {
    const double lr = schedule.lr(epoch);
    opt.set_lr(lr);
    model->train();
    if (st.epoch != epoch) {  // a fresh epoch
      st = LoopState{};
      st.epoch = epoch;
    }
    const auto epoch_t0 = clock::now();
    train_loader.start_epoch(epoch, st.step);
    progress.begin(detail::concat("epoch ", epoch + 1, "/", cfg.epochs), steps_per_epoch, st.step);
    Tensor device_sum;  // CUDA: losses summed on the device, read at the log interval
    int64_t pending = 0;
    double last_loss = st.loss_count ? st.loss_sum / st.loss_count : NAN;
    const auto train_t0 = clock::now();
    const double seconds_before = st.train_seconds;
    for (int64_t step = st.step; step < steps_per_epoch; ++step) {
      const Batch* b = train_loader.next();
      PNEUMO_CHECK(b != nullptr, "loader ended early at step ", step);
      Tensor images = b->images_tensor(device), masks = b->masks_tensor(device), labels = b->labels_tensor(device);
      const int64_t global_step = static_cast<int64_t>(epoch) * steps_per_epoch + step;
      if (gpu_augment) gpu_augment_batch(train_pipe, sample_seed(cfg.seed, epoch), b->samples, images, masks);
      if (global_step == cfg.debug_nan_step) masks.fill_(NAN);  // (NaN pixels would be clipped by ReLU)
      Tensor loss;
      if (use_graph && graph_step.fits(images, masks, labels)) {
        loss = graph_step.replay(images, masks, labels);
      } else {
        loss = train_step(*model, opt, loss_kind, images, masks, labels, compute_dtype);
        std::string why;
        if (use_graph && !graph_step.captured() &&
            !graph_step.capture(*model, opt, loss_kind, images, masks, labels, compute_dtype, why)) {
          use_graph = false;
          std::fprintf(stderr, "--cuda-graph: the training step was not captured (%s); training goes on without it\n",
                       why.c_str());
        }
      }
      st.images += b->size;
      ++pending;
      const bool read_now = device.is_cpu() || pending >= cfg.log_every || step + 1 == steps_per_epoch;
      if (device.is_cuda()) device_sum = device_sum.defined() ? ops::add(device_sum, loss) : loss;
      if (read_now) {
        const double v = device.is_cpu() ? loss.item() : device_sum.item();
        if (!std::isfinite(v)) {
          progress.finish();
          result.exit_code = 2;
          result.message = detail::concat(
              "loss is ", std::isnan(v) ? "NaN" : "Inf", " at epoch ", epoch, " step ", step,
              pending > 1 ? detail::concat(" (or one of the ", pending, " steps before it)") : std::string(),
              "; training stopped, no checkpoint was written after it",
              result.epochs_done > 0 ? detail::concat(" (the last good one is ", ckpt_dir, "/",
                                                      epoch_name(result.epochs_done - 1), ".safetensors)")
                                     : std::string());
          return result;
        }
        st.loss_sum += v;
        st.loss_count += pending;
        last_loss = device.is_cpu() ? v : v / pending;
        pending = 0;
        device_sum = Tensor();
      }
      st.step = step + 1;
      st.train_seconds = seconds_before + std::chrono::duration<double>(clock::now() - train_t0).count();
      progress.update(st.step, last_loss, st.images / std::max(st.train_seconds, 1e-9));
      if (step_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(step_delay_ms));
      if (global_step == cfg.debug_stop_step) g_stop.store(SIGINT);
      const int sig = g_stop.load();
      if (sig != 0 && st.step < steps_per_epoch) {
        progress.finish();
        if (pending > 0) {  // fold the unread losses in before saving
          st.loss_sum += device_sum.item();
          st.loss_count += pending;
        }
        st.gen_seed = default_generator().seed();
        st.gen_offset = default_generator().offset();
        save_checkpoint(ckpt_dir + "/resume", *model, opt, st, {{"model", cfg.model}});
        result.exit_code = 128 + sig;
        result.message = detail::concat("interrupted by signal ", sig, " at epoch ", epoch, " step ", st.step,
                                        "; state saved, continue with --resume");
        return result;
      }
    }
    progress.finish();

    // Validation: resize only, eval mode, no gradients.
    std::vector<std::pair<nn::BatchNorm2d*, std::vector<Tensor>>> saved_bn;
    if (cfg.val_bn_batches > 0) {
      // BatchNorm statistics recomputed over resize-only training batches (train mode, cumulative average,
      // the RNG offset kept), then put back after validation so the run itself is unchanged.
      const uint64_t offset = default_generator().offset();
      for (auto& [name, m] : model->named_modules())
        if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(m)) {
          std::vector<Tensor> keep;
          for (Tensor* t : {&bn->running_mean(), &bn->running_var(), &bn->num_batches_tracked()}) {
            keep.push_back(Tensor::empty(t->shape(), t->dtype(), t->device()));
            keep.back().copy_from(*t);
          }
          saved_bn.emplace_back(bn, std::move(keep));
          bn->reset_running_stats();
          bn->set_cumulative_average(true);
        }
      ag::NoGradGuard no_grad;
      bn_loader.start_epoch(0);
      for (int64_t k = 0; k < cfg.val_bn_batches; ++k) {
        const Batch* b = bn_loader.next();
        if (!b) break;
        model->run(ag::Variable(b->images_tensor(device).to(compute_dtype)));
      }
      for (auto& sb : saved_bn) sb.first->set_cumulative_average(false);
      default_generator().set_offset(offset);
    }
    model->eval();
    double val_loss_sum = 0;
    int64_t val_count = 0;
    std::vector<DiceCounts> counts;
    std::vector<int> val_labels;
    std::vector<double> cls_scores;
    std::vector<aug::Image> overlays;
    const std::string pred_dir = run + "/predictions/" + epoch_name(epoch);
    if (cfg.save_val_predictions) fs::create_directories(pred_dir);
    {
      ag::NoGradGuard no_grad;
      val_loader.start_epoch(0);
      while (const Batch* b = val_loader.next()) {
        Tensor images = b->images_tensor(device), masks = b->masks_tensor(device), labels = b->labels_tensor(device);
        nn::models::NetworkOutput out = model->run(ag::Variable(images.to(compute_dtype)));
        const double l = compute_loss(loss_kind, out, masks, labels).value().item();
        val_loss_sum += l * b->size;
        val_count += b->size;
        Tensor seg = out.seg.value().to(DType::F32).cpu();
        std::vector<DiceCounts> c = dice_counts(seg, masks.cpu(), 0.0f, 0.5f);
        counts.insert(counts.end(), c.begin(), c.end());
        for (int i = 0; i < b->size; ++i) val_labels.push_back(b->labels[i] > 0.5f);
        if (out.cls.defined()) {
          Tensor cl = out.cls.value().to(DType::F32).cpu();
          for (int i = 0; i < b->size; ++i) cls_scores.push_back(cl.data<float>()[i]);
        }
        const int h = b->height, w = b->width;
        const size_t hw = static_cast<size_t>(h) * w;
        for (int i = 0; i < b->size; ++i) {
          const bool want_overlay = static_cast<int>(overlays.size()) < cfg.overlays;
          if (!want_overlay && !cfg.save_val_predictions) continue;
          aug::Image pred(h, w), truth(h, w);
          const float* sp = seg.data<float>() + i * hw;
          const float* tp = b->masks + i * hw;
          for (size_t k = 0; k < hw; ++k) {
            pred.pixels[k] = sp[k] > 0.0f ? 255 : 0;
            truth.pixels[k] = tp[k] > 0.5f ? 255 : 0;
          }
          if (cfg.save_val_predictions) aug::write_png(pred_dir + "/" + b->ids[static_cast<size_t>(i)] + ".png", pred);
          if (want_overlay)
            overlays.push_back(mask_overlay(gray_from_normalised(b->images + i * hw * 3, h, w), truth, pred));
        }
      }
    }
    // Copied back into the same buffers: a captured training step (--cuda-graph) holds their addresses.
    for (auto& [bn, keep] : saved_bn) {
      bn->running_mean().copy_from(keep[0]);
      bn->running_var().copy_from(keep[1]);
      bn->num_batches_tracked().copy_from(keep[2]);
    }
    model->train();
    MetricsRow row;
    row.epoch = epoch;
    row.lr = lr;
    row.train_loss = st.loss_count ? st.loss_sum / st.loss_count : NAN;
    row.val_loss = val_loss_sum / std::max<int64_t>(val_count, 1);
    row.val_dice = mean_dice(counts);
    std::vector<DiceCounts> pos_counts;
    for (size_t i = 0; i < counts.size(); ++i)
      if (val_labels[i]) pos_counts.push_back(counts[i]);
    row.val_dice_pos = pos_counts.empty() ? NAN : mean_dice(pos_counts);
    row.val_auc = cls_scores.size() == val_labels.size() ? auc(cls_scores, val_labels) : NAN;
    row.seconds = std::chrono::duration<double>(clock::now() - epoch_t0).count();
    row.images_per_s = st.images / std::max(st.train_seconds, 1e-9);
    if (!std::isfinite(row.val_loss)) {
      result.exit_code = 2;
      result.message = detail::concat("validation loss is not finite after epoch ", epoch,
                                      "; training stopped, no checkpoint was written for it");
      return result;
    }
    rows.push_back(row);
    write_metrics(run + "/metrics.csv", rows);
    // The checkpoint of this epoch: the loop state points at the start of the next one.
    LoopState next;
    next.epoch = epoch + 1;
    next.gen_seed = default_generator().seed();
    next.gen_offset = default_generator().offset();
    save_checkpoint(ckpt_dir + "/" + epoch_name(epoch), *model, opt, next,
                    {{"model", cfg.model}, {"epoch", std::to_string(epoch)}, {"val_dice", fmt(row.val_dice)}});
    std::error_code ec;
    fs::remove(ckpt_dir + "/resume.state.safetensors", ec);  // state first: a lone model file is ignored
    fs::remove(ckpt_dir + "/resume.safetensors", ec);
    draw_curves(run + "/curves.png", rows);
    if (!overlays.empty()) {
      fs::create_directories(run + "/overlays");
      aug::write_png(run + "/overlays/" + epoch_name(epoch) + ".png", tile_horizontal(overlays));
    }
    result.epochs_done = epoch + 1;
    result.last_val_dice = row.val_dice;
    std::printf("epoch %d/%d  lr %.3g  train_loss %.5f  val_loss %.5f  val_dice %.4f%s%s  %.1f s  %.2f img/s\n",
                epoch + 1, cfg.epochs, lr, row.train_loss, row.val_loss, row.val_dice,
                std::isfinite(row.val_dice_pos) ? detail::concat("  dice_pos ", fmt(row.val_dice_pos)).c_str() : "",
                std::isfinite(row.val_auc) ? detail::concat("  auc ", fmt(row.val_auc)).c_str() : "", row.seconds,
                row.images_per_s);
    std::fflush(stdout);
    st = next;
    const int sig = g_stop.load();
    if (sig != 0 && epoch + 1 < cfg.epochs) {
      result.exit_code = 128 + sig;
      result.message = detail::concat("interrupted by signal ", sig, " after epoch ", epoch,
                                      "; checkpoint saved, continue with --resume");
      return result;
    }
  }
  if (result.skipped_bad > 0)
    std::printf("skipped %lld unreadable image(s) (--skip-bad); they are listed above\n",
                static_cast<long long>(result.skipped_bad));
  return result;
}

}  // namespace pneumo::train
