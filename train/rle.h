// The competition's run-length encoding (SIIM-ACR): text "start length start length ..." where starts are
// relative (each counts the background pixels since the end of the previous run; the first is absolute) and
// pixels are numbered column-major (k = x * height + y); "-1" means an empty mask.
// Convention here: a RleRun is ABSOLUTE (start, length) in that column-major numbering; masks are aug::Image
// (row-major, 1 channel, 0 / 255). A run reaching the last pixel is encoded (the competition's own encoder
// dropped it). Errors name a `context` (file, line, image id) given by the caller.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "augment/image.h"
#include "tensor/tensor.h"

namespace pneumo::train {

struct RleRun {
  int64_t start = 0, length = 0;  // absolute, column-major
  bool operator==(const RleRun& o) const { return start == o.start && length == o.length; }
};

// Parses RLE text into absolute runs. "-1", "" and blanks mean empty. Throws pneumo::Error naming `context`
// for a non-numeric token, a negative value, a zero length or an odd number of values.
std::vector<RleRun> parse_rle(const std::string& text, const std::string& context = "");
// Throws naming `context` when a run passes the end of a height x width image.
void check_runs_fit(const std::vector<RleRun>& runs, int height, int width, const std::string& context = "");
// Sorted by start, overlapping or touching runs merged (the union of several instances).
std::vector<RleRun> normalize_runs(std::vector<RleRun> runs);
// Competition text of absolute runs (sorted, disjoint): relative starts, "-1" when empty.
std::string format_rle(const std::vector<RleRun>& runs);

// Decoding: a height x width 0/255 mask; `into` ORs more runs into an existing mask (merged instances).
aug::Image rle_decode(const std::string& text, int height, int width, const std::string& context = "");
void paint_runs(const std::vector<RleRun>& runs, aug::Image& mask, const std::string& context = "");

// Encoding: runs of the pixels > threshold. U8 masks (default threshold 127) or float probabilities.
std::vector<RleRun> mask_runs(const aug::Image& mask, float threshold = 127.0f);
std::vector<RleRun> mask_runs(const float* probabilities, int height, int width, float threshold);
std::string rle_encode(const aug::Image& mask, float threshold = 127.0f);
std::string rle_encode(const float* probabilities, int height, int width, float threshold);

// Batched encoding of a [N, H, W] or [N, H, W, 1] tensor (U8, F32, BF16, F16) on its own device: on CUDA
// the threshold and run detection run on the GPU and only the run boundaries come back to the host.
std::vector<std::vector<RleRun>> batch_runs(const Tensor& masks, float threshold);
std::vector<std::string> batch_encode(const Tensor& masks, float threshold);
// Batched decoding to a U8 [N, H, W] tensor of 0/255 on `device` (runs sorted+merged per mask first).
Tensor batch_decode(const std::vector<std::vector<RleRun>>& runs, int height, int width, Device device);

}  // namespace pneumo::train
