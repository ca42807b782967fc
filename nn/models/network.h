// Base classes of the networks: a Network maps an NHWC image batch to {segmentation logits, classification
// logits} (either may be undefined), an Encoder additionally returns its skip features deepest first
// ([x4, x3, x2, x1, x0], as the reference's encoders do). Parameter names follow timm for the encoders so
// ImageNet weights exported from PyTorch load by name (see nn/models/weights_import.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/module.h"

namespace pneumo::nn::models {

struct NetworkOutput {
  Variable seg;  // [N, H, W, 1] logits, undefined for classifiers
  Variable cls;  // [N, classes] logits, undefined when the network has no classification head
};

// One line of `pneumo info --model`: a named part, its parameter count, its output channels and stride.
struct StageInfo {
  std::string name;
  int64_t parameters = 0;
  int64_t channels = 0;  // 0 where not meaningful
  int64_t stride = 0;    // output stride relative to the input, 0 where not meaningful
};

class Network : public Module {
 public:
  virtual NetworkOutput run(const Variable& x) = 0;
  // Single-output forward: the segmentation logits, or the classification logits of a classifier.
  Variable forward(const Variable& x) override {
    NetworkOutput out = run(x);
    return out.seg.defined() ? out.seg : out.cls;
  }
  virtual std::vector<StageInfo> stages() const = 0;
};

class Encoder : public Network {
 public:
  // Deepest first: [x4 (1/32 or 1/8 dilated), x3, x2, x1, x0 (1/2)].
  virtual std::vector<Variable> features(const Variable& x) = 0;
  // Channels of features(), deepest first.
  const std::vector<int64_t>& out_channels() const { return out_channels_; }
  // The drop-connect rate of every block (EfficientNet); other encoders have none.
  virtual void set_drop_connect_rate(double rate) { (void)rate; }

 protected:
  std::vector<int64_t> out_channels_;
};

// Sum of the parameter counts of one child (by name) of `m`; 0 when absent.
int64_t child_parameter_count(const Module& m, const std::string& child);

}  // namespace pneumo::nn::models
