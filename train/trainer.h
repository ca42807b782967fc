// The training loop of the reference (seed/SOLUTION-FACTS.md) for every segmentation and classification
// network: per-model defaults (loss table, batches, sizes, epochs, warm-restart schedule), fold selection
// (positives-only segmentation folds, all-image classification folds), reference augmentation on training
// batches and resize-only validation, and a run folder that holds everything needed to resume bit for bit:
//   RUN/config.json            every setting, engine version, git commit, device
//   RUN/metrics.csv            one row per epoch (epoch,lr,train_loss,val_loss,val_dice,...)
//   RUN/curves.png             learning curves, redrawn every epoch
//   RUN/overlays/epoch-NNN.png a few validation images: prediction red, ground-truth outline green
//   RUN/folds/fold{k}/...      the generated folds (when none were given)
//   RUN/checkpoints/epoch-NNN.safetensors        model state_dict (Module names; what SWA averages)
//   RUN/checkpoints/epoch-NNN.state.safetensors  optimiser state + loop position + RNG (written last: its
//                                                presence marks the checkpoint complete)
//   RUN/checkpoints/resume(.state).safetensors   mid-epoch state after SIGINT/SIGTERM
// Determinism: batches depend on (seed, epoch) only (train/loader.h), the model RNG offset is saved, the
// optimiser state round-trips bit for bit; so on the CPU a resumed run ends bit-identical to an
// uninterrupted one.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/models/network.h"
#include "train/optim.h"

namespace pneumo::train {

enum class LossKind { Dice, DiceBceCls, FocalBceCls };  // "dice", "dice+bce", "focal+bce"
LossKind parse_loss_kind(const std::string& name);
std::string loss_kind_name(LossKind kind);

struct TrainConfig {
  // What and where.
  std::string model;                 // registry name (nn/models/registry.h)
  std::string data;                  // folder (images/ + masks/, or images + train-rle.csv) or "synthetic:N[:SIZE]"
  std::string out;                   // the run folder
  std::string images_subdir = "images", masks_subdir = "masks", rle_csv = "train-rle.csv";
  std::string folds;                 // folder of fold{k}/{train,val}.txt; empty: generated into RUN/folds
  int fold = 0, num_folds = 5;
  std::string task;                  // "segmentation" (positives-only folds) | "classification" (all images); "" = model default
  std::string extra_data;            // pseudo-labelled set added to training only (same formats as data)
  std::string init;                  // weights to start from (converted ImageNet weights or a checkpoint)
  // Shapes and schedule (0 / negative / empty = the model's reference default).
  int size = 0, batch = 0, val_batch = 0, epochs = 0;
  std::string optimizer = "adam";    // adam | adamw
  double lr = 5e-4, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  double eta_min = -1;               // < 0: 1e-6 segmentation, 1e-5 classification
  int period = 5, cosine_epochs = -1;  // < 0: epochs - 4 (the reference's 40 of 44, 30 of 34)
  std::vector<double> tail = {1e-5, 1e-5, 5e-6, 5e-6};
  std::string loss;                  // "" = model default (loss_kind_name values)
  std::string augment = "reference";  // reference | none
  bool gpu_augment = false;          // CUDA: resize on the CPU workers, the rest of the augmentation on the GPU
  bool cuda_graph = false;           // CUDA: capture the training step once as a CUDA Graph and replay it (also
                                     // PNEUMO_CUDA_GRAPH=1)
  std::string device = "cpu";        // cpu | cuda[:N]
  std::string dtype = "auto";        // auto (bf16 on CUDA, as the reference's mixed precision; f32 on the CPU) | f32 | bf16
  uint64_t seed = 1992;
  int workers = 2, threads = 0;      // loader threads; OpenMP threads (0: default)
  bool skip_bad = false;
  int64_t max_steps = 0;             // > 0: at most this many training steps per epoch (tests, demos)
  int64_t max_train = 0, max_val = 0;  // > 0: first N images of the fold's train / val lists
  int64_t val_bn_batches = 0;        // > 0: validate with BatchNorm statistics recomputed over this many training
                                     // batches (cumulative, as SWA's bn_update), then restored: checkpoints unchanged
  int overlays = 4;                  // validation overlays per epoch
  bool save_val_predictions = false;  // RUN/predictions/epoch-NNN/<id>.png (0/255, at the training size)
  int log_every = 20;                // steps between loss reads on CUDA / log lines off a terminal
  int64_t debug_nan_step = -1;       // tests: the batch of this global step gets NaN targets
  int64_t debug_stop_step = -1;      // tests: behave as if SIGINT arrived during this global step
};

// The reference defaults of a model (size, batches, epochs, loss, task); tiny_* models get small sizes.
struct ModelDefaults {
  int size, batch, val_batch, epochs;
  LossKind loss;
  bool classification;
};
ModelDefaults model_defaults(const std::string& model);
// Fills every "default" field of cfg from the model's defaults; checks ranges (errors name the setting).
void resolve_config(TrainConfig& cfg);

// The loss of the reference's table on one batch: masks [N,H,W,1], labels [N] (0/1), float32 tensors on the
// logits' device.
ag::Variable compute_loss(LossKind kind, const nn::models::NetworkOutput& out, const Tensor& masks,
                          const Tensor& labels);
// One optimisation step (zero_grad, forward in train mode, loss, backward, step); returns the loss tensor
// (scalar, on the device: reading it is the caller's choice of synchronisation).
Tensor train_step(nn::models::Network& model, Optimizer& optimizer, LossKind kind, const Tensor& images,
                  const Tensor& masks, const Tensor& labels, DType compute_dtype = DType::F32);

// The 8-bit gray images [N, H, W] (U8) behind a normalised batch [N, H, W, 3] (channel 0 inverted, rounded):
// exact for the loader's normalisation. Used by --gpu-augment on the device.
Tensor gray_u8_from_normalised(const Tensor& images);

struct TrainResult {
  int exit_code = 0;            // 0 done; 1 error; 2 NaN/Inf loss; 128 + signal when interrupted
  int epochs_done = 0;          // epochs with a complete checkpoint
  double last_val_dice = -1;
  int64_t skipped_bad = 0;
  std::string message;          // the reason when exit_code != 0
};

// The settings of RUN/config.json (its "settings" object), as --resume reads them. Errors (pneumo::Error) name
// `file` and the key: not JSON, a missing key, a value of the wrong type or out of range.
TrainConfig parse_run_config(const std::string& json_text, const std::string& file);

// Runs (or with resume, continues) the training described by cfg. With resume, the settings come from
// RUN/config.json (cfg.epochs, when set, may extend the run). Errors in the data or settings throw
// pneumo::Error naming the file or setting; NaN/Inf and interruption are reported in the result.
TrainResult run_training(TrainConfig cfg, bool resume = false);

// Asks a running run_training to stop after the current step (what SIGINT/SIGTERM do), as signal `sig`.
void request_stop(int sig);

// Engine build facts for config.json.
std::string git_commit();

}  // namespace pneumo::train
