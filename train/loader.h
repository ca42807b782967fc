// The batch loader: worker threads read, decode, augment and normalise samples ahead of the consumer into a
// ring of reusable batch buffers in pinned host memory (plain memory without CUDA).
// Determinism: the batch order is a seeded Philox shuffle of (seed, epoch); a sample's augmentation gets
// (sample_seed(seed, epoch), dataset index) and nothing else; each sample is written at its fixed place in
// its batch. So batches are bit-identical for a seed whatever the number of workers or thread timing.
// Layout: images float32 NHWC [N, H, W, 3] (the gray image repeated, ImageNet-normalised), masks float32
// [N, H, W, 1] in {0, 1}, labels float32 [N] (1 when the sample's original mask is non-empty).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "augment/image.h"
#include "tensor/tensor.h"
#include "train/dataset.h"

namespace pneumo::train {

// Applied to every sample in place: (image, mask, seed, sample_index). Must be thread-safe and must derive
// all randomness from (seed, sample_index). aug::Pipeline::apply has this signature.
using AugmentFn = std::function<void(aug::Image& image, aug::Image& mask, uint64_t seed, uint64_t sample_index)>;

struct LoaderOptions {
  int batch_size = 4;
  int workers = 2;        // 0: samples are loaded on the calling thread inside next()
  bool shuffle = true;
  bool drop_last = true;  // drop a final partial batch
  uint64_t seed = 1992;
  int prefetch = 2;       // batches being prepared beyond the one the consumer holds
  // Size every augmented sample must have; 0: taken from sample 0 after augmentation.
  int height = 0, width = 0;
};

struct Batch {
  int64_t index = 0;      // batch number within the epoch
  int size = 0;           // samples in this batch (< batch_size only for a final partial batch)
  int height = 0, width = 0;
  const float* images = nullptr;  // [size, H, W, 3]
  const float* masks = nullptr;   // [size, H, W, 1]
  const float* labels = nullptr;  // [size]
  std::vector<int64_t> samples;   // dataset indices
  std::vector<std::string> ids;
  // Copies to new tensors on `device` ([size, H, W, 3], [size, H, W, 1], [size]).
  Tensor images_tensor(Device device = Device::cpu()) const;
  Tensor masks_tensor(Device device = Device::cpu()) const;
  Tensor labels_tensor(Device device = Device::cpu()) const;

  // Set by the Loader: the slot's CUDA event, recorded after each device copy so the slot is not refilled
  // before the copy is done.
  void* copy_event_ = nullptr;
  bool* copy_pending_ = nullptr;
};

// The per-epoch seed handed to the augmentation with each sample index.
uint64_t sample_seed(uint64_t seed, int epoch);
// The epoch's sample order (a permutation of 0..n-1, or the identity without shuffle).
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int epoch, bool shuffle);

class Loader {
 public:
  Loader(std::shared_ptr<const Dataset> dataset, AugmentFn augment, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  int64_t batches_per_epoch() const;
  const LoaderOptions& options() const { return opt_; }
  int height() const { return height_; }
  int width() const { return width_; }

  // Starts producing the batches of `epoch` (abandoning what is left of the previous one), from batch
  // `first_batch` on (a run resumed mid-epoch skips the batches it has already trained on, unread).
  void start_epoch(int epoch, int64_t first_batch = 0);
  // The next batch of the current epoch, or nullptr at its end. Valid until the next call to next() or
  // start_epoch(). Rethrows a worker's error (naming the sample's file) for the batch that holds it.
  const Batch* next();

 private:
  struct Slot;
  void worker_loop();
  void produce(int64_t position, uint64_t generation);
  void assign_slot(int64_t batch);
  int batch_size_of(int64_t batch) const;

  std::shared_ptr<const Dataset> dataset_;
  AugmentFn augment_;
  LoaderOptions opt_;
  int height_ = 0, width_ = 0;

  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  bool stop_ = false;
  uint64_t generation_ = 0;  // bumped by start_epoch; stale jobs are dropped
  int epoch_ = -1;
  std::vector<int64_t> order_;
  int64_t total_positions_ = 0, n_batches_ = 0;
  int64_t next_position_ = 0;  // next job for a worker
  int64_t next_batch_ = 0;     // next batch for the consumer
  int active_ = 0;             // jobs being worked on
  Batch current_;
};

}  // namespace pneumo::train
