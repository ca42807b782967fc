// Loading PyTorch state dicts (timm ImageNet exports, the parity fixtures) into pneumo modules by name.
// PyTorch's conv weights are KCRS [out, in/groups, kh, kw]; pneumo's are KRSC [out, kh, kw, in/groups], so
// every 4-D tensor is permuted (0, 2, 3, 1) on load; 1-D and 2-D tensors (BN, biases, Linear [out, in]) are
// taken as they are. Keys are matched exactly, or with the model's "encoder." prefix added when the file holds
// a bare encoder (a timm export); the encoder's own ImageNet head (fc.*, classifier.*) is then reported as
// unused, not as an error.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "nn/module.h"

namespace pneumo::nn::models {

// [K, C, R, S] (PyTorch) -> [K, R, S, C] (pneumo); other ranks unchanged. CPU tensors.
Tensor pytorch_to_engine_layout(const Tensor& pytorch);
Shape engine_to_pytorch_shape(const Shape& engine);

struct ImportReport {
  std::vector<std::string> matched;                                  // model names loaded
  std::vector<std::string> missing;                                  // model tensors the file should hold
  std::vector<std::string> fresh;  // bare-encoder file: tensors outside "encoder." (decoder, heads) keep init
  std::vector<std::string> unused;                                   // file tensors the model has no use for
  std::vector<std::pair<std::string, std::string>> mismatched;       // name, "file [..] vs model [..]"
  std::string prefix;                                                // prefix added to the file's keys
  bool complete() const { return !matched.empty() && missing.empty() && mismatched.empty(); }
  std::string summary(bool list_all = false) const;
};

// Matches `tensors` (PyTorch layout) against model's parameters and floating buffers; when `apply`,
// copies every matching tensor into the model (cast to the model tensor's dtype and device). Integer
// buffers (num_batches_tracked) are matched if present and never required.
ImportReport import_pytorch_tensors(Module& model, const std::vector<std::pair<std::string, Tensor>>& tensors,
                                    bool apply);

}  // namespace pneumo::nn::models
