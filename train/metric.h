// The competition metric: mean over images of Dice = 2|X & Y| / (|X| + |Y|), 1 when both masks are empty,
// 0 when exactly one is. Convention: a pixel belongs to X (prediction) when pred > pred_threshold and to Y
// (truth) when truth > truth_threshold; counts are exact integers on both backends.
#pragma once
#include <cstdint>
#include <vector>

#include "augment/image.h"
#include "tensor/tensor.h"
#include "train/rle.h"

namespace pneumo::train {

struct DiceCounts {
  int64_t intersection = 0, pred = 0, truth = 0;
  // The competition's per-image Dice (empty/empty = 1).
  double dice() const {
    if (pred + truth == 0) return 1.0;
    return 2.0 * static_cast<double>(intersection) / static_cast<double>(pred + truth);
  }
};

// One image pair (same size, 1 channel).
DiceCounts dice_counts(const aug::Image& pred, const aug::Image& truth, float pred_threshold = 127.0f,
                       float truth_threshold = 127.0f);
// From RLE runs directly (no decoding): interval intersection of the merged runs.
DiceCounts dice_counts(const std::vector<RleRun>& pred, const std::vector<RleRun>& truth);
// A batch [N, H, W] or [N, H, W, 1] (U8, F32, BF16, F16; pred and truth may differ in dtype), on the CPU or
// on a CUDA device (both tensors on the same device).
std::vector<DiceCounts> dice_counts(const Tensor& pred, const Tensor& truth, float pred_threshold,
                                    float truth_threshold);

std::vector<double> dice_per_image(const std::vector<DiceCounts>& counts);
// Mean of the per-image Dice; 1 for an empty set is meaningless, so an empty set throws.
double mean_dice(const std::vector<DiceCounts>& counts);

}  // namespace pneumo::train
