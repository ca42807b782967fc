// CPU reference kernels of the data pipeline: competition RLE run detection / painting and Dice counts.
// Convention: masks are row-major [h, w] (pixel (y, x) at y * w + x) but RLE pixel order is column-major
// (flat index k = x * h + y); runs are absolute (start, length) pairs in that column-major order.
// A pixel is foreground when its value > threshold (U8, F32, BF16 or F16 masks, chosen at run time).
#pragma once
#include <cstdint>

#include "kernels/dtype.h"

namespace pneumo::kernels::cpu {

// Column-major foreground runs of one [h, w] mask, written as pairs runs[2i] = start, runs[2i+1] = length.
// `runs` must hold 2 * ((h * w + 1) / 2) values (the worst case, alternating pixels). Returns the run count.
// A run reaching the last pixel is closed (unlike the competition's own encoder).
int64_t rle_runs(DType dt, const void* mask, int64_t h, int64_t w, float threshold, int64_t* runs);

// out[y * w + x] = value for every pixel of the given absolute column-major runs; other pixels untouched.
// Runs must lie inside [0, h * w) (callers validate, naming the file and line).
void rle_paint(const int64_t* runs, int64_t n_runs, int64_t h, int64_t w, uint8_t value, uint8_t* out);

// For n masks of hw pixels each: out[3i] = |pred & truth|, out[3i+1] = |pred|, out[3i+2] = |truth|,
// pred = pred_value > pred_threshold, truth = truth_value > truth_threshold.
void dice_counts(DType pred_dt, const void* pred, float pred_threshold, DType truth_dt, const void* truth,
                 float truth_threshold, int64_t n, int64_t hw, int64_t* out);

}  // namespace pneumo::kernels::cpu
