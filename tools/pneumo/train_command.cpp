// `pneumo train`: the reference's training for every network (train/trainer.h), and `pneumo make-synthetic`,
// the lung-like synthetic set for demos and tests. Written against the Args parser of command.h.
#include <cstdio>
#include <sstream>

#include "kernels/check.h"
#include "tools/pneumo/command.h"
#include "train/synthetic.h"
#include "train/trainer.h"

namespace {

using pneumo::cli::Args;

std::vector<double> parse_list(const std::string& s) {
  std::vector<double> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(std::stod(item));
  return out;
}

int run_train(const Args& args) {
  pneumo::train::TrainConfig c;
  const bool resume = args.flag("resume");
  c.out = args.require("out");
  c.model = args.get("model", "");
  c.data = args.get("data", "");
  c.images_subdir = args.get("images-subdir", c.images_subdir);
  c.masks_subdir = args.get("masks-subdir", c.masks_subdir);
  c.rle_csv = args.get("rle-csv", c.rle_csv);
  c.folds = args.get("folds", "");
  c.fold = static_cast<int>(args.get_int("fold", 0));
  c.num_folds = static_cast<int>(args.get_int("num-folds", 5));
  c.task = args.get("task", "");
  c.extra_data = args.get("extra-data", "");
  c.init = args.get("init", "");
  c.size = static_cast<int>(args.get_int("size", 0));
  c.batch = static_cast<int>(args.get_int("batch", 0));
  c.val_batch = static_cast<int>(args.get_int("val-batch", 0));
  c.epochs = static_cast<int>(args.get_int("epochs", 0));
  c.optimizer = args.get("optimizer", c.optimizer);
  c.lr = args.get_double("lr", c.lr);
  c.beta1 = args.get_double("beta1", c.beta1);
  c.beta2 = args.get_double("beta2", c.beta2);
  c.eps = args.get_double("eps", c.eps);
  c.weight_decay = args.get_double("weight-decay", c.weight_decay);
  c.eta_min = args.get_double("eta-min", c.eta_min);
  c.period = static_cast<int>(args.get_int("period", c.period));
  c.cosine_epochs = static_cast<int>(args.get_int("cosine-epochs", c.cosine_epochs));
  if (args.has("lr-tail")) c.tail = parse_list(args.get("lr-tail", ""));
  c.loss = args.get("loss", "");
  c.augment = args.get("augment", c.augment);
  c.device = args.get("device", c.device);
  c.dtype = args.get("dtype", c.dtype);
  c.seed = static_cast<uint64_t>(args.get_int("seed", 1992));
  c.workers = static_cast<int>(args.get_int("workers", c.workers));
  c.threads = static_cast<int>(args.get_int("threads", 0));
  c.skip_bad = args.flag("skip-bad");
  c.max_steps = args.get_int("max-steps", 0);
  c.max_train = args.get_int("max-train", 0);
  c.max_val = args.get_int("max-val", 0);
  c.overlays = static_cast<int>(args.get_int("overlays", c.overlays));
  c.save_val_predictions = args.flag("save-val-predictions");
  c.log_every = static_cast<int>(args.get_int("log-every", c.log_every));
  c.debug_nan_step = args.get_int("debug-nan-step", -1);
  c.debug_stop_step = args.get_int("debug-stop-step", -1);
  args.finish();
  if (!resume) {
    PNEUMO_CHECK(!c.model.empty(), "pneumo train: --model NAME is required");
    PNEUMO_CHECK(!c.data.empty(), "pneumo train: --data DIR is required");
  }
  const pneumo::train::TrainResult r = pneumo::train::run_training(c, resume);
  if (r.exit_code != 0) {
    std::fprintf(stderr, "pneumo train: %s\n", r.message.c_str());
    return r.exit_code;
  }
  std::printf("done: %d epochs, last val_dice %.4f; run folder %s (metrics.csv, curves.png, overlays/, checkpoints/)\n",
              r.epochs_done, r.last_val_dice, c.out.c_str());
  return 0;
}

PNEUMO_COMMAND(
    "train", "train a segmentation or classification network (the reference's recipe per model)",
    "usage: pneumo train --model NAME --data DIR --out RUN [--fold K] [--size S] [--batch B] [--epochs N]\n"
    "                    [--device cpu|cuda] [--resume] [options]\n"
    "  --data DIR        images/ + masks/ (same stems; masks thresholded at >127), or images + train-rle.csv\n"
    "                    (the competition layout); synthetic:N[:SIZE] generates a lung-like set in memory\n"
    "  --folds DIR       fold{k}/{train,val}.txt (e.g. the seed's det_fold_5 or cls_fold_5_all_images);\n"
    "                    default: stratified folds generated (--num-folds 5, --seed) and saved in RUN/folds\n"
    "  --task segmentation|classification   positives-only or all-image folds (default: by model)\n"
    "  --resume          continue RUN from its last complete checkpoint (settings from RUN/config.json;\n"
    "                    --epochs may extend the run)\n"
    "  Defaults per model follow the reference: size/batch/val-batch, 44 epochs (segmentation) or 34\n"
    "  (classification), loss dice | dice+bce | focal+bce, Adam lr 5e-4 betas 0.9/0.999 eps 1e-8, warm-restart\n"
    "  cosine per epoch (period 5, eta-min 1e-6 / 1e-5, tail 1e-5,1e-5,5e-6,5e-6), seed 1992.\n"
    "  Other options: --val-batch B --optimizer adam|adamw --lr --beta1 --beta2 --eps --weight-decay\n"
    "  --eta-min --period --cosine-epochs --lr-tail a,b,.. --loss NAME --augment reference|none\n"
    "  --dtype f32|bf16 (bf16: CUDA) --seed --workers N --threads N --skip-bad --init WEIGHTS.safetensors\n"
    "  --extra-data DIR (pseudo-labelled, training only) --images-subdir --masks-subdir --rle-csv\n"
    "  --num-folds K --max-steps N (per epoch) --max-train N --max-val N --overlays N\n"
    "  --save-val-predictions --log-every N --debug-nan-step N --debug-stop-step N (tests)\n"
    "  Exit status: 0 done, 1 error, 2 NaN/Inf loss, 128+signal when interrupted (state saved).",
    run_train);

int run_make_synthetic(const Args& args) {
  const std::string out = args.require("out");
  const int64_t n = args.get_int("n", 64);
  const int size = static_cast<int>(args.get_int("size", 128));
  const uint64_t seed = static_cast<uint64_t>(args.get_int("seed", 1992));
  args.finish();
  pneumo::train::write_synthetic_folder(out, n, size, seed);
  std::printf("%lld synthetic images %dx%d -> %s/images, %s/masks\n", static_cast<long long>(n), size, size,
              out.c_str(), out.c_str());
  return 0;
}

PNEUMO_COMMAND("make-synthetic", "write a lung-like synthetic image/mask set (demos, tests)",
               "usage: pneumo make-synthetic --out DIR [--n 64] [--size 128] [--seed 1992]\n"
               "  Writes DIR/images/syn_NNNNN.png and DIR/masks/syn_NNNNN.png (the --data layout of pneumo train).",
               run_make_synthetic);

}  // namespace
