// `pneumo train`: the reference's training for every network (train/trainer.h), and `pneumo make-synthetic`,
// the lung-like synthetic set for demos and tests. Options on CLI11 (command.h).
#include <cstdint>
#include <cstdio>
#include <memory>
#include <sstream>

#include "kernels/check.h"
#include "tools/pneumo/command.h"
#include "train/synthetic.h"
#include "train/trainer.h"

namespace {

std::vector<double> parse_list(const std::string& s) {
  std::vector<double> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(std::stod(item));
  return out;
}

struct TrainOptions {
  pneumo::train::TrainConfig c;
  std::string device = "cpu", lr_tail;
  bool resume = false;
};

int run_train(TrainOptions& o) {
  pneumo::train::TrainConfig& c = o.c;
  c.device = pneumo::cli::resolve_device(o.device).str();
  if (!o.lr_tail.empty()) c.tail = parse_list(o.lr_tail);
  if (!o.resume && (c.model.empty() || c.data.empty()))
    pneumo::cli::usage_error("--model NAME and --data DIR are required (except with --resume)");
  const pneumo::train::TrainResult r = pneumo::train::run_training(c, o.resume);
  if (r.exit_code != 0) {
    std::fprintf(stderr, "pneumo train: %s\n", r.message.c_str());
    return r.exit_code;
  }
  std::printf("done: %d epochs, last val_dice %.4f; run folder %s (metrics.csv, curves.png, overlays/, checkpoints/)\n",
              r.epochs_done, r.last_val_dice, c.out.c_str());
  return 0;
}

PNEUMO_COMMAND("train", "train a segmentation or classification network (the reference's recipe per model)",
               [](CLI::App& app) {
  using namespace pneumo;
  auto o = std::make_shared<TrainOptions>();
  train::TrainConfig& c = o->c;
  cli::option(app, "--model", c.model, "network (pneumo info lists them); its reference settings are the defaults");
  cli::option(app, "--data", c.data,
              "images/ + masks/ (same stems, masks > 127), or images + train-rle.csv, or synthetic:N[:SIZE]");
  cli::out_option(app, c.out, "the run folder (config.json, metrics.csv, curves.png, overlays/, checkpoints/)")
      .required();
  cli::flag(app, "--resume", o->resume,
            "continue --out from its last complete checkpoint (settings from its config.json; --epochs may extend)");
  cli::option(app, "--fold", c.fold, "validation fold", 0, 1000);
  cli::option(app, "--num-folds", c.num_folds, "folds generated when --folds is not given", 2, 1000);
  cli::option(app, "--folds", c.folds, "folder of fold{k}/{train,val}.txt (e.g. det_fold_5); default: generated")
      .existing_dir();
  cli::option(app, "--task", c.task, "segmentation (positives-only folds) | classification (all images); default by model");
  cli::option(app, "--size", c.size, "training size S x S, a multiple of 32 (0: the model's reference size)", 0, 8192);
  cli::option(app, "--batch", c.batch, "training batch (0: reference)", 0, 4096);
  cli::option(app, "--val-batch", c.val_batch, "validation batch (0: reference)", 0, 4096);
  cli::option(app, "--epochs", c.epochs, "epochs (0: 44 segmentation, 34 classification)", 0, 100000);
  cli::device_option(app, o->device);
  cli::choice(app, "--dtype", c.dtype, "activations: auto = bf16 on CUDA (the reference trained in mixed precision), f32 on the CPU; master weights stay float32", {"auto", "f32", "bf16"});
  cli::choice(app, "--optimizer", c.optimizer, "Adam (L2 decay) or AdamW (decoupled)", {"adam", "adamw"});
  cli::option(app, "--lr", c.lr, "base learning rate", 0, 10);
  cli::option(app, "--beta1", c.beta1, "Adam beta1", 0, 1);
  cli::option(app, "--beta2", c.beta2, "Adam beta2", 0, 1);
  cli::option(app, "--eps", c.eps, "Adam eps", 0, 1);
  cli::option(app, "--weight-decay", c.weight_decay, "weight decay", 0, 10);
  cli::option(app, "--eta-min", c.eta_min, "cosine floor (negative: 1e-6 segmentation, 1e-5 classification)", -1, 10);
  cli::option(app, "--period", c.period, "warm-restart period in epochs", 1, 100000);
  cli::option(app, "--cosine-epochs", c.cosine_epochs, "epochs on the cosine before the tail (-1: epochs - 4)", -1, 100000);
  cli::option(app, "--lr-tail", o->lr_tail, "learning rates after the cosine, comma-separated (1e-5,1e-5,5e-6,5e-6)");
  cli::choice(app, "--loss", c.loss, "loss (default by model: the reference's table)", {"", "dice", "dice+bce", "focal+bce"});
  cli::choice(app, "--augment", c.augment, "training augmentation (validation is resize-only)", {"reference", "none"});
  cli::flag(app, "--gpu-augment", c.gpu_augment,
            "CUDA: resize on the CPU workers, the rest of the augmentation on the GPU (compile-checked only so far)");
  cli::flag(app, "--cuda-graph", c.cuda_graph,
            "CUDA: capture the training step once as a CUDA Graph and replay it (as PNEUMO_CUDA_GRAPH=1; "
            "drop-connect draws the eager masks on every replay; never run on a GPU yet)");
  cli::seed_option(app, c.seed);
  cli::workers_option(app, c.workers);
  cli::option(app, "--threads", c.threads, "OpenMP threads (0: default)", 0, 4096);
  cli::flag(app, "--skip-bad", c.skip_bad, "leave unreadable images out (checked before training) and count them");
  cli::option(app, "--init", c.init, "start from weights: a timm/PyTorch export or a pneumo checkpoint").existing_file();
  cli::option(app, "--extra-data", c.extra_data, "a pseudo-labelled set added to training only (same layouts as --data)");
  cli::option(app, "--images-subdir", c.images_subdir, "images folder inside --data");
  cli::option(app, "--masks-subdir", c.masks_subdir, "masks folder inside --data (e.g. lesion-masks)");
  cli::option(app, "--rle-csv", c.rle_csv, "label CSV inside --data (competition layout)");
  cli::option(app, "--max-steps", c.max_steps, "at most N training steps per epoch (0: all)", 0, INT64_MAX);
  cli::option(app, "--max-train", c.max_train, "first N images of the training list (0: all)", 0, INT64_MAX);
  cli::option(app, "--max-val", c.max_val, "first N images of the validation list (0: all)", 0, INT64_MAX);
  cli::option(app, "--val-bn-batches", c.val_bn_batches,
              "validate with BatchNorm statistics recomputed over N training batches (then restored; 0: off)", 0,
              INT64_MAX);
  cli::option(app, "--overlays", c.overlays, "validation overlays per epoch", 0, 1000);
  cli::flag(app, "--save-val-predictions", c.save_val_predictions, "write RUN/predictions/epoch-NNN/<id>.png");
  cli::option(app, "--log-every", c.log_every, "steps between loss reads on CUDA / log lines", 1, 1000000);
  cli::option(app, "--debug-nan-step", c.debug_nan_step, "tests: NaN targets at this global step", -1, INT64_MAX);
  cli::option(app, "--debug-stop-step", c.debug_stop_step, "tests: act as if SIGINT came at this global step", -1,
              INT64_MAX);
  cli::footer(app,
              "Exit status: 0 done, 1 error, 2 NaN/Inf loss, 128+signal when interrupted (state saved: --resume).\n"
              "See docs/training.md for the run folder and the per-model defaults.");
  return [o] { return run_train(*o); };
});

struct SyntheticOptions {
  std::string out;
  int64_t n = 64;
  int size = 128;
  uint64_t seed = 0;
};

PNEUMO_COMMAND("make-synthetic", "write a lung-like synthetic image/mask set (demos, tests)", [](CLI::App& app) {
  using namespace pneumo;
  auto o = std::make_shared<SyntheticOptions>();
  cli::out_option(app, o->out, "folder for images/ and masks/").required();
  cli::option(app, "--n", o->n, "number of images", 1, 10000000);
  cli::option(app, "--size", o->size, "image size S x S", 16, 8192);
  cli::seed_option(app, o->seed);
  return [o] {
    train::write_synthetic_folder(o->out, o->n, o->size, o->seed);
    std::printf("%lld synthetic images %dx%d -> %s/images, %s/masks\n", static_cast<long long>(o->n), o->size,
                o->size, o->out.c_str(), o->out.c_str());
    return 0;
  };
});

}  // namespace
