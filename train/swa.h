// Stochastic weight averaging as the reference's swa_models.py / swa.py do it: an equal average of the
// parameters of chosen epoch checkpoints, then BatchNorm recalibration (timgaripov/swa bn_update): every
// BatchNorm's running statistics are reset and rebuilt as a cumulative average (momentum = b / (n + b),
// PyTorch's momentum=None) over one pass of training batches in train mode.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"
#include "tensor/tensor.h"

namespace pneumo::train {

// The reference's default epochs (0-based, as its checkpoints are numbered).
std::vector<int> default_swa_epochs(bool classification);
// "<run>/checkpoints/epoch-NNN.safetensors" (NNN zero-padded to 3 digits).
std::string epoch_checkpoint_path(const std::string& run, int epoch);

struct AverageReport {
  std::vector<std::string> files;
  int64_t tensors = 0;                 // model tensors averaged
  std::vector<std::string> ignored;    // tensors of the files that are not in the model (e.g. optimiser state)
};

// Sets every floating parameter and buffer of `model` to the equal average (in float64, rounded once) of the
// same tensor in each file; integer buffers (num_batches_tracked) are taken from the first file. Every file
// must hold every model tensor with the model's shape: otherwise a pneumo::Error names the file and lists what
// is missing or mis-shaped. `expected_model`, when not empty, must equal a file's "model" metadata if it has one.
AverageReport average_checkpoints(nn::Module& model, const std::vector<std::string>& files,
                                  const std::string& expected_model = "");

// BatchNorm recalibration: resets every BatchNorm2d of `model`, switches on the cumulative average, runs
// `next_batch` (which fills an NHWC input on the model's device and returns false at the end) through
// model.forward in train mode without gradients, then restores the previous mode. Returns the samples seen.
// A model without BatchNorm is left untouched (0).
int64_t recalibrate_batchnorm(nn::Module& model, const std::function<bool(Tensor& input)>& next_batch);

class Dataset;
struct BnPassOptions {
  int size = 1024;        // training size (Resize of the augmentation)
  int batch = 4;
  int workers = 2;
  uint64_t seed = 1992;
  int64_t max_batches = 0;  // 0: the whole pass
  Device device = Device::cpu();
  bool progress = false;    // a line on stderr every 50 batches
};
// The reference's pass: one shuffled epoch of `dataset` through the training augmentation
// (aug::reference_train_pipeline(size)), batch 4, drop_last, then recalibrate_batchnorm. The model must
// already be on options.device. Returns the samples seen (a multiple of the batch size).
int64_t recalibrate_batchnorm_on(nn::Module& model, std::shared_ptr<const Dataset> dataset, const BnPassOptions& options);

}  // namespace pneumo::train
