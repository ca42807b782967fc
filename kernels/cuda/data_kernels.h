// CUDA RLE kernels of the data pipeline (kernels/cuda/rle.cu), same contract as kernels/cpu/data_kernels.h: raw device pointers +
// sizes + a stream, mask dtype (U8, F32, BF16, F16) chosen at run time, foreground = value > threshold.
// Masks are row-major [n, h, w]; RLE order is column-major (k = x * h + y). Everything is deterministic
// (ordered compaction). The Dice counts are kernels/cuda/metric_kernels.h.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace pneumo::kernels::cuda {

// Run boundaries of n masks. Position b in [0, h*w] of mask m is a boundary when fg(b) != fg(b-1) (with
// fg(-1) = fg(h*w) = 0), so a mask's boundaries alternate run start, run end, and a run reaching the last
// pixel is closed at h*w. The workspace (device, rle_boundaries_workspace_bytes) holds the thresholded,
// transposed mask and per-tile counts. Output: mask_offsets (device, n + 1 int64: boundaries of mask m
// are positions [mask_offsets[m], mask_offsets[m+1]) of `boundaries`) and boundaries (device, uint32
// positions inside the mask; capacity n * (h*w + 1), the worst case). Nothing is copied to the host here.
size_t rle_boundaries_workspace_bytes(int64_t n, int64_t h, int64_t w);
void rle_boundaries(DType dt, const void* masks, int64_t n, int64_t h, int64_t w, float threshold, void* workspace,
                    int64_t* mask_offsets, uint32_t* boundaries, cudaStream_t stream);

// Paints n row-major [h, w] uint8 masks: 255 inside the runs, 0 elsewhere. runs: device int64 pairs
// (absolute column-major start, length), sorted by start and disjoint within each mask; run_offsets:
// device, n + 1 values (runs of mask m are pairs [run_offsets[m], run_offsets[m+1])).
void rle_paint(const int64_t* runs, const int64_t* run_offsets, int64_t n, int64_t h, int64_t w, uint8_t* out,
               cudaStream_t stream);

}  // namespace pneumo::kernels::cuda
