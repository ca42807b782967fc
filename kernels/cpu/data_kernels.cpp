// CPU reference for RLE runs and Dice counts (see data_kernels.h). The column-major runs of a row-major mask
// come from one row-major pass that records where each column toggles, so memory is read in order.
#include "kernels/cpu/data_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/check.h"

namespace pneumo::kernels::cpu {

namespace {

// Converts a row range of any supported dtype into 0/1 foreground flags.
void foreground_flags(DType dt, const void* data, int64_t begin, int64_t count, float threshold, uint8_t* flags) {
  switch (dt) {
    case DType::U8: {
      // v > t for an integer v is v > floor(t): an 8-bit compare the compiler vectorises.
      const uint8_t* p = static_cast<const uint8_t*>(data) + begin;
      if (threshold < 0.0f) {
        std::memset(flags, 1, static_cast<size_t>(count));
      } else if (threshold >= 255.0f) {
        std::memset(flags, 0, static_cast<size_t>(count));
      } else {
        const uint8_t t = static_cast<uint8_t>(std::floor(threshold));
        for (int64_t i = 0; i < count; ++i) flags[i] = p[i] > t;
      }
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
  // One row-major pass: a column toggles (background <-> foreground) at row y when fg(y, x) != fg(y-1, x);
  // rows are compared 8 flags at a time and only differing words are examined, so sparse masks cost little
  // more than reading them. Toggle k = x * h + y is a run boundary in column-major order, with a column that
  // is foreground at its last row toggling at (x + 1) * h. Where a run continues into the next column that
  // position appears twice (end of x, start of x + 1) and the pair cancels.
  std::vector<uint8_t> prev(static_cast<size_t>(w + 8), 0), cur(static_cast<size_t>(w + 8), 0);
  std::vector<int64_t> toggles;
  auto compare_rows = [&](int64_t y) {
    for (int64_t x0 = 0; x0 < w; x0 += 8) {
      uint64_t a, b;
      std::memcpy(&a, cur.data() + x0, 8);
      std::memcpy(&b, prev.data() + x0, 8);
      if (a == b) continue;
      const int64_t x1 = std::min<int64_t>(x0 + 8, w);
      for (int64_t x = x0; x < x1; ++x)
        if (cur[static_cast<size_t>(x)] != prev[static_cast<size_t>(x)]) toggles.push_back(x * h + y);
    }
  };
  for (int64_t y = 0; y < h; ++y) {
    foreground_flags(dt, mask, y * w, w, threshold, cur.data());
    compare_rows(y);
    std::swap(cur, prev);
  }
  std::fill(cur.begin(), cur.end(), 0);  // a virtual background row below the last closes open columns
  compare_rows(h);
  std::sort(toggles.begin(), toggles.end());
  int64_t n_bounds = 0;
  for (size_t i = 0; i < toggles.size(); ++i) {
    if (i + 1 < toggles.size() && toggles[i + 1] == toggles[i]) {
      ++i;  // a run crossing a column border: not a boundary
      continue;
    }
    runs[n_bounds++] = toggles[i];
  }
  // Boundaries alternate start, end; turn ends into lengths.
  for (int64_t r = 0; r + 1 < n_bounds; r += 2) runs[r + 1] -= runs[r];
  return n_bounds / 2;
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
