// Competition Dice on images, RLE runs and batched tensors (CPU reference kernel or CUDA kernel).
#include "train/metric.h"

#include <algorithm>

#include "kernels/check.h"
#include "kernels/cpu/data_kernels.h"
#include "kernels/cuda/metric_kernels.h"
#include "tensor/cuda_runtime.h"

namespace pneumo::train {

DiceCounts dice_counts(const aug::Image& pred, const aug::Image& truth, float pred_threshold, float truth_threshold) {
  PNEUMO_CHECK(pred.channels == 1 && truth.channels == 1 && pred.height == truth.height && pred.width == truth.width,
               "dice_counts: masks differ: prediction ", pred.height, "x", pred.width, "x", pred.channels, ", truth ",
               truth.height, "x", truth.width, "x", truth.channels);
  int64_t c[3];
  kernels::cpu::dice_counts(DType::U8, pred.data(), pred_threshold, DType::U8, truth.data(), truth_threshold, 1,
                            pred.pixel_count(), c);
  return DiceCounts{c[0], c[1], c[2]};
}

DiceCounts dice_counts(const std::vector<RleRun>& pred_runs, const std::vector<RleRun>& truth_runs) {
  const std::vector<RleRun> a = normalize_runs(pred_runs), b = normalize_runs(truth_runs);
  DiceCounts d;
  for (const RleRun& r : a) d.pred += r.length;
  for (const RleRun& r : b) d.truth += r.length;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const int64_t lo = std::max(a[i].start, b[j].start);
    const int64_t hi = std::min(a[i].start + a[i].length, b[j].start + b[j].length);
    if (hi > lo) d.intersection += hi - lo;
    if (a[i].start + a[i].length < b[j].start + b[j].length) ++i; else ++j;
  }
  return d;
}

std::vector<DiceCounts> dice_counts(const Tensor& pred, const Tensor& truth, float pred_threshold,
                                    float truth_threshold) {
  check_defined("dice_counts", pred);
  check_defined("dice_counts", truth);
  check_same_device("dice_counts", pred, truth);
  PNEUMO_CHECK(pred.dim() >= 1 && truth.dim() >= 1 && pred.size(0) == truth.size(0) && pred.numel() == truth.numel(),
               "dice_counts: prediction ", shape_str(pred.shape()), " and truth ", shape_str(truth.shape()),
               " must hold the same N masks of the same size");
  const int64_t n = pred.size(0);
  const int64_t hw = n ? pred.numel() / n : 0;
  std::vector<int64_t> c(static_cast<size_t>(3 * n));
  if (n == 0) return {};
  if (pred.device().is_cpu()) {
    kernels::cpu::dice_counts(pred.dtype(), pred.raw_data(), pred_threshold, truth.dtype(), truth.raw_data(),
                              truth_threshold, n, hw, c.data());
  } else {
#if PNEUMO_WITH_CUDA
    const int device = pred.device().index;
    Tensor out = Tensor::empty({3 * n}, DType::I64, pred.device());
    kernels::cuda::dice_counts(pred.dtype(), pred.raw_data(), pred_threshold, truth.dtype(), truth.raw_data(),
                               truth_threshold, n, hw, out.data<int64_t>(), cuda::current_stream(device));
    cuda::memcpy_d2h(c.data(), out.raw_data(), c.size() * sizeof(int64_t), device);
#else
    PNEUMO_FAIL("dice_counts: tensors on ", pred.device().str(), " but this build has no CUDA");
#endif
  }
  std::vector<DiceCounts> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = DiceCounts{c[3 * i], c[3 * i + 1], c[3 * i + 2]};
  return out;
}

std::vector<double> dice_per_image(const std::vector<DiceCounts>& counts) {
  std::vector<double> d(counts.size());
  for (size_t i = 0; i < counts.size(); ++i) d[i] = counts[i].dice();
  return d;
}

double mean_dice(const std::vector<DiceCounts>& counts) {
  PNEUMO_CHECK(!counts.empty(), "mean_dice: no images");
  double s = 0.0;
  for (const DiceCounts& c : counts) s += c.dice();
  return s / static_cast<double>(counts.size());
}

}  // namespace pneumo::train
