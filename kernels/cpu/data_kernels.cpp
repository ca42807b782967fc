// CPU reference for RLE runs and Dice counts (see data_kernels.h). Straightforward loops: the column-major
// scan of a row-major mask is done a block of columns at a time so each cache line is read once.
#include "kernels/cpu/data_kernels.h"

#include <algorithm>
#include <vector>

#include "kernels/check.h"

namespace pneumo::kernels::cpu {

namespace {

// Converts a row range of any supported dtype into 0/1 foreground flags.
void foreground_flags(DType dt, const void* data, int64_t begin, int64_t count, float threshold, uint8_t* flags) {
  switch (dt) {
    case DType::U8: {
      const uint8_t* p = static_cast<const uint8_t*>(data) + begin;
      for (int64_t i = 0; i < count; ++i) flags[i] = static_cast<float>(p[i]) > threshold;
      break;
    }
    case DType::F32: {
      const float* p = static_cast<const float*>(data) + begin;
      for (int64_t i = 0; i < count; ++i) flags[i] = p[i] > threshold;
      break;
    }
    case DType::BF16: {
      const uint16_t* p = static_cast<const uint16_t*>(data) + begin;
      for (int64_t i = 0; i < count; ++i) flags[i] = bf16_bits_to_float(p[i]) > threshold;
      break;
    }
    case DType::F16: {
      const uint16_t* p = static_cast<const uint16_t*>(data) + begin;
      for (int64_t i = 0; i < count; ++i) flags[i] = f16_bits_to_float(p[i]) > threshold;
      break;
    }
    default:
      PNEUMO_FAIL("mask dtype ", dtype_name(dt), " is not supported (U8, F32, BF16, F16)");
  }
}

}  // namespace

int64_t rle_runs(DType dt, const void* mask, int64_t h, int64_t w, float threshold, int64_t* runs) {
  PNEUMO_CHECK(h > 0 && w > 0, "rle_runs: bad mask size ", h, "x", w);
  // Transpose blocks of kBlock columns into flags (column-major), then scan them in order.
  constexpr int64_t kBlock = 64;
  std::vector<uint8_t> row(static_cast<size_t>(w));
  std::vector<uint8_t> block(static_cast<size_t>(kBlock * h));
  int64_t n_runs = 0;
  bool in_run = false;
  int64_t run_start = 0;
  for (int64_t x0 = 0; x0 < w; x0 += kBlock) {
    const int64_t bw = std::min(kBlock, w - x0);
    for (int64_t y = 0; y < h; ++y) {
      foreground_flags(dt, mask, y * w + x0, bw, threshold, row.data());
      for (int64_t c = 0; c < bw; ++c) block[c * h + y] = row[c];
    }
    const int64_t base = x0 * h;
    const int64_t len = bw * h;
    for (int64_t i = 0; i < len; ++i) {
      const bool fg = block[i] != 0;
      if (fg != in_run) {
        if (fg) {
          run_start = base + i;
        } else {
          runs[2 * n_runs] = run_start;
          runs[2 * n_runs + 1] = base + i - run_start;
          ++n_runs;
        }
        in_run = fg;
      }
    }
  }
  if (in_run) {  // a run reaching the last pixel is closed here
    runs[2 * n_runs] = run_start;
    runs[2 * n_runs + 1] = h * w - run_start;
    ++n_runs;
  }
  return n_runs;
}

void rle_paint(const int64_t* runs, int64_t n_runs, int64_t h, int64_t w, uint8_t value, uint8_t* out) {
  for (int64_t r = 0; r < n_runs; ++r) {
    int64_t k = runs[2 * r];
    const int64_t end = k + runs[2 * r + 1];
    PNEUMO_CHECK(k >= 0 && end <= h * w && end >= k, "rle_paint: run (", runs[2 * r], ", ", runs[2 * r + 1],
                 ") outside the ", h, "x", w, " mask");
    while (k < end) {
      int64_t x = k / h, y = k % h;
      const int64_t stop = std::min(end, (x + 1) * h);  // this column's part of the run
      for (; k < stop; ++k, ++y) out[y * w + x] = value;
    }
  }
}

void dice_counts(DType pred_dt, const void* pred, float pred_threshold, DType truth_dt, const void* truth,
                 float truth_threshold, int64_t n, int64_t hw, int64_t* out) {
  // Checked here because nothing may throw inside the parallel region.
  for (DType dt : {pred_dt, truth_dt})
    PNEUMO_CHECK(dt == DType::U8 || dt == DType::F32 || dt == DType::BF16 || dt == DType::F16,
                 "dice_counts: mask dtype ", dtype_name(dt), " is not supported (U8, F32, BF16, F16)");
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
  for (int64_t i = 0; i < n; ++i) {
    constexpr int64_t kChunk = 4096;
    uint8_t pf[kChunk], tf[kChunk];
    int64_t inter = 0, np = 0, nt = 0;
    for (int64_t b = 0; b < hw; b += kChunk) {
      const int64_t len = std::min(kChunk, hw - b);
      foreground_flags(pred_dt, pred, i * hw + b, len, pred_threshold, pf);
      foreground_flags(truth_dt, truth, i * hw + b, len, truth_threshold, tf);
      for (int64_t j = 0; j < len; ++j) {
        inter += pf[j] & tf[j];
        np += pf[j];
        nt += tf[j];
      }
    }
    out[3 * i] = inter;
    out[3 * i + 1] = np;
    out[3 * i + 2] = nt;
  }
}

}  // namespace pneumo::kernels::cpu
