// CUDA RLE kernels (see data_kernels.h). Encoding: threshold + transpose to column-major flags (32x32
// shared tiles, coalesced both ways), count boundaries per 4096-position tile, one-block scan of the tile
// counts, then each tile writes its boundary positions in order: an ordered, deterministic compaction that
// leaves only the runs for the host to copy. Decoding: one thread per output pixel, binary search of the
// pixel's column-major index in its mask's sorted runs (coalesced row-major writes).
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda/data_kernels.h"
#include "kernels/cuda/cuda_util.cuh"

namespace pneumo::kernels::cuda {

namespace {

constexpr int kTile = 4096;          // boundary positions per compaction tile
constexpr int kTileThreads = 256;    // threads per tile, kTile / kTileThreads positions each
constexpr int kPerThread = kTile / kTileThreads;
constexpr int kScanThreads = 1024;

// fg[m][x][y] = masks[m][y][x] > threshold.
__global__ void transpose_threshold_kernel(DType dt, const void* masks, int64_t h, int64_t w, float threshold,
                                           uint8_t* fg) {
  __shared__ uint8_t tile[32][33];
  const int64_t m = blockIdx.z;
  const int64_t x0 = static_cast<int64_t>(blockIdx.x) * 32, y0 = static_cast<int64_t>(blockIdx.y) * 32;
  const int64_t base = m * h * w;
  for (int j = threadIdx.y; j < 32; j += blockDim.y) {
    const int64_t y = y0 + j, x = x0 + threadIdx.x;
    if (y < h && x < w) tile[j][threadIdx.x] = load_mask_value(dt, masks, base + y * w + x) > threshold;
  }
  __syncthreads();
  for (int j = threadIdx.y; j < 32; j += blockDim.y) {
    const int64_t x = x0 + j, y = y0 + threadIdx.x;
    if (y < h && x < w) fg[base + x * h + y] = tile[threadIdx.x][j];
  }
}

__device__ __forceinline__ bool is_boundary(const uint8_t* fg_mask, int64_t hw, int64_t b) {
  const uint8_t cur = b < hw ? fg_mask[b] : 0;
  const uint8_t prev = b > 0 ? fg_mask[b - 1] : 0;
  return cur != prev;
}

// Per-thread boundary count over its kPerThread positions of tile `t`; returns the thread's first position.
__device__ __forceinline__ int thread_boundaries(const uint8_t* fg, int64_t hw, int64_t tiles_per_mask, int64_t t,
                                                 int64_t& mask, int64_t& first) {
  mask = t / tiles_per_mask;
  first = (t % tiles_per_mask) * kTile + static_cast<int64_t>(threadIdx.x) * kPerThread;
  const uint8_t* fg_mask = fg + mask * hw;
  int count = 0;
  for (int i = 0; i < kPerThread; ++i) {
    const int64_t b = first + i;
    if (b <= hw && is_boundary(fg_mask, hw, b)) ++count;
  }
  return count;
}

// Exclusive scan of one value per thread over a block of kTileThreads threads; returns the block total.
__device__ __forceinline__ int block_exclusive_scan(int value, int& total) {
  __shared__ int buf[kTileThreads];
  buf[threadIdx.x] = value;
  __syncthreads();
  for (int off = 1; off < kTileThreads; off <<= 1) {
    int add = threadIdx.x >= off ? buf[threadIdx.x - off] : 0;
    __syncthreads();
    buf[threadIdx.x] += add;
    __syncthreads();
  }
  total = buf[kTileThreads - 1];
  return buf[threadIdx.x] - value;
}

__global__ void count_tiles_kernel(const uint8_t* fg, int64_t hw, int64_t tiles_per_mask, int64_t* tile_counts) {
  int64_t mask, first;
  const int c = thread_boundaries(fg, hw, tiles_per_mask, blockIdx.x, mask, first);
  int total;
  block_exclusive_scan(c, total);
  if (threadIdx.x == 0) tile_counts[blockIdx.x] = total;
}

// One block: exclusive scan of tile_counts in place (n_tiles + 1 entries, the last becomes the total), then
// the per-mask offsets.
__global__ void scan_tiles_kernel(int64_t* tile_counts, int64_t n_tiles, int64_t tiles_per_mask, int64_t n_masks,
                                  int64_t* mask_offsets) {
  __shared__ int64_t buf[kScanThreads];
  __shared__ int64_t carry;
  if (threadIdx.x == 0) carry = 0;
  __syncthreads();
  for (int64_t start = 0; start < n_tiles; start += kScanThreads) {
    const int64_t i = start + threadIdx.x;
    const int64_t v = i < n_tiles ? tile_counts[i] : 0;
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int off = 1; off < kScanThreads; off <<= 1) {
      int64_t add = threadIdx.x >= off ? buf[threadIdx.x - off] : 0;
      __syncthreads();
      buf[threadIdx.x] += add;
      __syncthreads();
    }
    if (i < n_tiles) tile_counts[i] = carry + buf[threadIdx.x] - v;
    __syncthreads();
    if (threadIdx.x == 0) carry += buf[kScanThreads - 1];
    __syncthreads();
  }
  if (threadIdx.x == 0) tile_counts[n_tiles] = carry;
  __syncthreads();
  for (int64_t m = threadIdx.x; m <= n_masks; m += kScanThreads) mask_offsets[m] = tile_counts[m * tiles_per_mask];
}

__global__ void write_tiles_kernel(const uint8_t* fg, int64_t hw, int64_t tiles_per_mask, const int64_t* tile_offsets,
                                   const int64_t* mask_offsets, uint32_t* boundaries) {
  int64_t mask, first;
  const int c = thread_boundaries(fg, hw, tiles_per_mask, blockIdx.x, mask, first);
  int total;
  const int prefix = block_exclusive_scan(c, total);
  if (c == 0) return;
  int64_t out = tile_offsets[blockIdx.x] + prefix;  // global position in `boundaries`
  const uint8_t* fg_mask = fg + mask * hw;
  for (int i = 0; i < kPerThread; ++i) {
    const int64_t b = first + i;
    if (b <= hw && is_boundary(fg_mask, hw, b)) boundaries[out++] = static_cast<uint32_t>(b);
  }
}

__global__ void paint_kernel(const int64_t* runs, const int64_t* run_offsets, int64_t n, int64_t h, int64_t w,
                             uint8_t* out) {
  const int64_t hw = h * w, total = n * hw;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t m = idx / hw, rem = idx % hw;
    const int64_t y = rem / w, x = rem % w;
    const int64_t k = x * h + y;
    // Last run with start <= k.
    int64_t lo = run_offsets[m], hi = run_offsets[m + 1];
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (runs[2 * mid] <= k) lo = mid + 1; else hi = mid;
    }
    uint8_t v = 0;
    if (lo > run_offsets[m]) {
      const int64_t r = lo - 1;
      v = k < runs[2 * r] + runs[2 * r + 1] ? 255 : 0;
    }
    out[idx] = v;
  }
}

int64_t tiles_per_mask_for(int64_t hw) { return (hw + 1 + kTile - 1) / kTile; }

}  // namespace

size_t rle_boundaries_workspace_bytes(int64_t n, int64_t h, int64_t w) {
  const int64_t hw = h * w;
  const int64_t n_tiles = n * tiles_per_mask_for(hw);
  return align256(static_cast<size_t>(n * hw)) + static_cast<size_t>(n_tiles + 1) * sizeof(int64_t);
}

void rle_boundaries(DType dt, const void* masks, int64_t n, int64_t h, int64_t w, float threshold, void* workspace,
                    int64_t* mask_offsets, uint32_t* boundaries, cudaStream_t stream) {
  PNEUMO_CHECK(dt == DType::U8 || dt == DType::F32 || dt == DType::BF16 || dt == DType::F16,
               "rle_boundaries: mask dtype ", dtype_name(dt), " is not supported (U8, F32, BF16, F16)");
  PNEUMO_CHECK(n > 0 && h > 0 && w > 0 && n <= 65535, "rle_boundaries: bad batch ", n, "x", h, "x", w,
               " (1 to 65535 masks)");
  PNEUMO_CHECK(h * w < (int64_t{1} << 32) - 1, "rle_boundaries: mask of ", h, "x", w, " pixels is too large");
  const int64_t hw = h * w;
  const int64_t tpm = tiles_per_mask_for(hw);
  const int64_t n_tiles = n * tpm;
  PNEUMO_CHECK(n_tiles < (int64_t{1} << 31), "rle_boundaries: batch too large (", n_tiles, " tiles)");
  uint8_t* fg = static_cast<uint8_t*>(workspace);
  int64_t* tile_counts = reinterpret_cast<int64_t*>(static_cast<char*>(workspace) + align256(static_cast<size_t>(n * hw)));

  dim3 tgrid(static_cast<unsigned>((w + 31) / 32), static_cast<unsigned>((h + 31) / 32), static_cast<unsigned>(n));
  transpose_threshold_kernel<<<tgrid, dim3(32, 8), 0, stream>>>(dt, masks, h, w, threshold, fg);
  PNEUMO_LAUNCH_CHECK("rle_transpose_threshold");
  count_tiles_kernel<<<static_cast<unsigned>(n_tiles), kTileThreads, 0, stream>>>(fg, hw, tpm, tile_counts);
  PNEUMO_LAUNCH_CHECK("rle_count_tiles");
  scan_tiles_kernel<<<1, kScanThreads, 0, stream>>>(tile_counts, n_tiles, tpm, n, mask_offsets);
  PNEUMO_LAUNCH_CHECK("rle_scan_tiles");
  write_tiles_kernel<<<static_cast<unsigned>(n_tiles), kTileThreads, 0, stream>>>(fg, hw, tpm, tile_counts,
                                                                                  mask_offsets, boundaries);
  PNEUMO_LAUNCH_CHECK("rle_write_tiles");
}

void rle_paint(const int64_t* runs, const int64_t* run_offsets, int64_t n, int64_t h, int64_t w, uint8_t* out,
               cudaStream_t stream) {
  if (n <= 0 || h <= 0 || w <= 0) return;
  const int64_t total = n * h * w;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((total + threads - 1) / threads, int64_t{1} << 20);
  paint_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(runs, run_offsets, n, h, w, out);
  PNEUMO_LAUNCH_CHECK("rle_paint");
}

}  // namespace pneumo::kernels::cuda
