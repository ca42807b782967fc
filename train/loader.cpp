// Loader implementation. Work is handed out one sample position at a time in epoch order; position p goes
// to slot (p / batch_size) % slots at index p % batch_size, so the result never depends on which worker
// did it. A slot is reused for batch b + slots only after the consumer has moved past batch b and any
// host->device copy taken from it has completed (a CUDA event per slot).
#include "train/loader.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kernels/check.h"
#include "kernels/philox.h"
#include "tensor/cuda_runtime.h"
#include "train/folds.h"

#if PNEUMO_WITH_CUDA
#include <cuda_runtime_api.h>

#include "kernels/cuda_check.h"
#endif

namespace pneumo::train {

namespace {

// Page-locked when a CUDA device is present (fast, asynchronous copies), plain memory otherwise.
struct HostBuffer {
  float* ptr = nullptr;
  bool pinned = false;
  void allocate(size_t floats) {
    const size_t bytes = std::max<size_t>(floats, 1) * sizeof(float);
    pinned = cuda::available();
    ptr = static_cast<float*>(pinned ? cuda::pinned_alloc(bytes) : std::malloc(bytes));
    PNEUMO_CHECK(ptr != nullptr, "loader: cannot allocate ", bytes, " bytes of batch memory");
  }
  ~HostBuffer() {  // never throws: after a sticky CUDA error cudaFreeHost fails too, and the error in flight
    if (!ptr) return;  // must reach the user instead of std::terminate
    if (!pinned) {
      std::free(ptr);
      return;
    }
    try {
      cuda::pinned_free(ptr);
    } catch (...) {
    }
  }
};

}  // namespace

struct Loader::Slot {
  HostBuffer images, masks, labels;
  int64_t batch = -1;
  int remaining = 0;
  std::exception_ptr error;
  int64_t error_position = -1;
  std::vector<int64_t> samples;
  std::vector<std::string> ids;
  void* copy_event = nullptr;  // cudaEvent_t recorded after copies from this slot
  bool copy_pending = false;
};

uint64_t sample_seed(uint64_t seed, int epoch) {
  const Philox4 r = philox4x32_10(static_cast<uint64_t>(epoch), 0x5A3D1E5EEDull, seed);
  return (static_cast<uint64_t>(r.v[0]) << 32) | r.v[1];
}

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int epoch, bool shuffle) {
  if (!shuffle) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
    return order;
  }
  return philox_permutation(n, seed, 0x0DE12000ull + static_cast<uint64_t>(epoch));
}

namespace {

Tensor host_to_tensor(const float* data, const Shape& shape, Device device, void* event, bool* pending) {
  Tensor t = Tensor::empty(shape, DType::F32, device);
  const size_t bytes = t.nbytes();
  if (device.is_cpu()) {
    std::memcpy(t.raw_data(), data, bytes);
  } else {
    cuda::memcpy_h2d(t.raw_data(), data, bytes, device.index);
#if PNEUMO_WITH_CUDA
    if (event) {
      PNEUMO_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), cuda::current_stream(device.index)));
      *pending = true;
    }
#endif
  }
  return t;
}

}  // namespace

Tensor Batch::images_tensor(Device device) const {
  return host_to_tensor(images, {size, height, width, 3}, device, copy_event_, copy_pending_);
}
Tensor Batch::masks_tensor(Device device) const {
  return host_to_tensor(masks, {size, height, width, 1}, device, copy_event_, copy_pending_);
}
Tensor Batch::labels_tensor(Device device) const {
  return host_to_tensor(labels, {size}, device, copy_event_, copy_pending_);
}

Loader::Loader(std::shared_ptr<const Dataset> dataset, AugmentFn augment, LoaderOptions options)
    : dataset_(std::move(dataset)), augment_(std::move(augment)), opt_(options) {
  PNEUMO_CHECK(dataset_ != nullptr, "Loader: no dataset");
  PNEUMO_CHECK(opt_.batch_size >= 1, "Loader: batch_size must be >= 1, got ", opt_.batch_size);
  PNEUMO_CHECK(opt_.workers >= 0 && opt_.workers <= 256, "Loader: workers must be 0..256, got ", opt_.workers);
  PNEUMO_CHECK(opt_.prefetch >= 1, "Loader: prefetch must be >= 1, got ", opt_.prefetch);
  PNEUMO_CHECK(dataset_->size() > 0, "Loader: the dataset is empty");
  height_ = opt_.height;
  width_ = opt_.width;
  if (height_ <= 0 || width_ <= 0) {
    // The output size is whatever the augmentation makes of sample 0.
    Sample s = dataset_->load(0);
    if (augment_) augment_(s.image, s.mask, sample_seed(opt_.seed, 0), 0);
    height_ = s.image.height;
    width_ = s.image.width;
  }
  const size_t hw = static_cast<size_t>(height_) * width_;
  const int n_slots = opt_.prefetch + 1;
  for (int i = 0; i < n_slots; ++i) {
    auto slot = std::make_unique<Slot>();
    slot->images.allocate(hw * 3 * opt_.batch_size);
    slot->masks.allocate(hw * opt_.batch_size);
    slot->labels.allocate(opt_.batch_size);
#if PNEUMO_WITH_CUDA
    if (slot->images.pinned) {
      cudaEvent_t ev;
      PNEUMO_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
      slot->copy_event = ev;
    }
#endif
    slots_.push_back(std::move(slot));
  }
  for (int i = 0; i < opt_.workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    ++generation_;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
#if PNEUMO_WITH_CUDA
  for (auto& s : slots_)
    if (s->copy_event) {
      cudaEventSynchronize(static_cast<cudaEvent_t>(s->copy_event));
      cudaEventDestroy(static_cast<cudaEvent_t>(s->copy_event));
    }
#endif
}

int64_t Loader::batches_per_epoch() const {
  const int64_t n = static_cast<int64_t>(dataset_->size());
  return opt_.drop_last ? n / opt_.batch_size : (n + opt_.batch_size - 1) / opt_.batch_size;
}

int Loader::batch_size_of(int64_t batch) const {
  return static_cast<int>(std::min<int64_t>(opt_.batch_size, total_positions_ - batch * opt_.batch_size));
}

void Loader::assign_slot(int64_t batch) {
  Slot& s = *slots_[static_cast<size_t>(batch % static_cast<int64_t>(slots_.size()))];
#if PNEUMO_WITH_CUDA
  // The consumer's copies out of this slot must be done before workers overwrite it.
  if (s.copy_pending) PNEUMO_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(s.copy_event)));
#endif
  s.copy_pending = false;
  s.batch = batch;
  s.remaining = batch_size_of(batch);
  s.error = nullptr;
  s.error_position = -1;
  s.samples.assign(static_cast<size_t>(s.remaining), -1);
  s.ids.assign(static_cast<size_t>(s.remaining), std::string());
}

void Loader::start_epoch(int epoch, int64_t first_batch) {
  std::unique_lock<std::mutex> lk(mu_);
  ++generation_;
  done_cv_.wait(lk, [&] { return active_ == 0; });  // stale jobs must not write into reassigned slots
  epoch_ = epoch;
  const int64_t n = static_cast<int64_t>(dataset_->size());
  order_ = epoch_order(n, opt_.seed, epoch, opt_.shuffle);
  n_batches_ = batches_per_epoch();
  total_positions_ = std::min<int64_t>(n, n_batches_ * opt_.batch_size);
  PNEUMO_CHECK(first_batch >= 0 && first_batch <= n_batches_, "Loader::start_epoch: first batch ", first_batch,
               " outside 0..", n_batches_);
  next_position_ = first_batch * opt_.batch_size;
  next_batch_ = first_batch;
  for (auto& s : slots_) s->batch = -1;
  const int64_t end = std::min<int64_t>(first_batch + static_cast<int64_t>(slots_.size()), n_batches_);
  for (int64_t b = first_batch; b < end; ++b) assign_slot(b);
  lk.unlock();
  work_cv_.notify_all();
}

void Loader::produce(int64_t position, uint64_t generation) {
  const int64_t batch = position / opt_.batch_size;
  const int64_t j = position % opt_.batch_size;
  Slot& slot = *slots_[static_cast<size_t>(batch % static_cast<int64_t>(slots_.size()))];
  const int64_t index = order_[static_cast<size_t>(position)];
  const std::string& id = dataset_->id(static_cast<size_t>(index));
  std::exception_ptr error;
  bool positive = false;
  try {
    Sample s = dataset_->load(static_cast<size_t>(index));
    positive = s.positive;
    if (augment_) augment_(s.image, s.mask, sample_seed(opt_.seed, epoch_), static_cast<uint64_t>(index));
    PNEUMO_CHECK(s.image.channels == 1 && s.image.height == height_ && s.image.width == width_,
                 "augmented image is ", s.image.height, "x", s.image.width, "x", s.image.channels, ", expected ",
                 height_, "x", width_, "x1");
    PNEUMO_CHECK(s.mask.channels == 1 && s.mask.height == height_ && s.mask.width == width_, "augmented mask is ",
                 s.mask.height, "x", s.mask.width, "x", s.mask.channels, ", expected ", height_, "x", width_, "x1");
    const size_t hw = static_cast<size_t>(height_) * width_;
    aug::normalize_imagenet(s.image, slot.images.ptr + static_cast<size_t>(j) * hw * 3);
    float* m = slot.masks.ptr + static_cast<size_t>(j) * hw;
    const uint8_t* src = s.mask.data();
    for (size_t i = 0; i < hw; ++i) m[i] = src[i] * (1.0f / 255.0f);
    slot.labels.ptr[j] = positive ? 1.0f : 0.0f;
  } catch (const std::exception& e) {
    error = std::make_exception_ptr(Error(detail::concat("loading sample ", index, " (image ", id, "): ", e.what())));
  }
  std::lock_guard<std::mutex> lk(mu_);
  if (generation != generation_) return;
  slot.samples[static_cast<size_t>(j)] = index;
  slot.ids[static_cast<size_t>(j)] = id;
  if (error && (!slot.error || position < slot.error_position)) {
    slot.error = error;
    slot.error_position = position;
  }
  if (--slot.remaining == 0) done_cv_.notify_all();
}

void Loader::worker_loop() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    work_cv_.wait(lk, [&] {
      if (stop_) return true;
      if (next_position_ >= total_positions_) return false;
      const int64_t b = next_position_ / opt_.batch_size;
      return slots_[static_cast<size_t>(b % static_cast<int64_t>(slots_.size()))]->batch == b;
    });
    if (stop_) return;
    const int64_t position = next_position_++;
    const uint64_t generation = generation_;
    ++active_;
    lk.unlock();
    produce(position, generation);
    lk.lock();
    --active_;
    if (active_ == 0) done_cv_.notify_all();
  }
}

const Batch* Loader::next() {
  std::unique_lock<std::mutex> lk(mu_);
  PNEUMO_CHECK(epoch_ >= 0, "Loader::next: call start_epoch first");
  // The batch returned last time is released: its slot takes the batch `slots` further on.
  if (next_batch_ > 0) {
    const int64_t reuse = next_batch_ - 1 + static_cast<int64_t>(slots_.size());
    Slot& old = *slots_[static_cast<size_t>((next_batch_ - 1) % static_cast<int64_t>(slots_.size()))];
    if (reuse < n_batches_ && old.batch == next_batch_ - 1) {
      assign_slot(reuse);
      work_cv_.notify_all();
    }
  }
  if (next_batch_ >= n_batches_) return nullptr;
  const int64_t b = next_batch_;
  Slot& slot = *slots_[static_cast<size_t>(b % static_cast<int64_t>(slots_.size()))];
  if (threads_.empty()) {
    // No workers: this thread produces the batch's positions itself.
    const uint64_t generation = generation_;
    const int64_t first = b * opt_.batch_size, last = first + batch_size_of(b);
    next_position_ = last;
    lk.unlock();
    for (int64_t p = first; p < last; ++p) produce(p, generation);
    lk.lock();
  } else {
    done_cv_.wait(lk, [&] { return slot.batch == b && slot.remaining == 0; });
  }
  ++next_batch_;
  if (slot.error) std::rethrow_exception(slot.error);
  current_.index = b;
  current_.size = static_cast<int>(slot.samples.size());
  current_.height = height_;
  current_.width = width_;
  current_.images = slot.images.ptr;
  current_.masks = slot.masks.ptr;
  current_.labels = slot.labels.ptr;
  current_.samples = slot.samples;
  current_.ids = slot.ids;
  current_.copy_event_ = slot.copy_event;
  current_.copy_pending_ = &slot.copy_pending;
  return &current_;
}

}  // namespace pneumo::train
