// EfficientNet-B3/B5 encoders with efficientnet-pytorch 0.3.0 behaviour (TF "same" padding on every conv,
// BatchNorm eps 1e-3 momentum 0.01, swish, SE with swish reduced from the block's INPUT channels * 0.25,
// drop-connect on skip blocks with rate = drop_connect_rate * flat_block_index / number_of_blocks) under
// timm's tf_efficientnet names: conv_stem, bn1, blocks.{stage}.{i}.(conv_dw, bn1, se.conv_reduce/conv_expand,
// conv_pw, bn2) for the depthwise-separable first stage and (conv_pw, bn1, conv_dw, bn2, se, conv_pwl, bn3)
// for inverted residuals, conv_head, bn2, classifier.
// Skip features: the reference's flat block indices (b3 [1,4,7,17], b5 [2,7,12,26]) are the last blocks of
// stages 0, 1, 2 and 4 (timm's nesting); features() returns [head, stage4, stage2, stage1, stage0].
#pragma once
#include <memory>
#include <vector>

#include "nn/layers.h"
#include "nn/models/network.h"

namespace pneumo::nn::models {

struct EfficientNetConfig {
  double width = 1.2, depth = 1.4;  // b3; b5 = 1.6, 2.2
  double drop_connect_rate = 0.2;
  int64_t num_classes = 0;  // > 0: "classifier" Linear on the pooled head (ImageNet)
};

// efficientnet-pytorch round_filters (divisor 8) and round_repeats (ceil).
int64_t efficientnet_round_filters(int64_t channels, double width);
int64_t efficientnet_round_repeats(int64_t repeats, double depth);

class MBConvBlock : public Module {
 public:
  // expand == 1: timm's DepthwiseSeparableConv; otherwise InvertedResidual.
  MBConvBlock(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t expand);
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return expand_ == 1 ? "DepthwiseSeparableConv" : "InvertedResidual"; }
  bool has_skip() const { return has_skip_; }
  double drop_connect_rate() const { return drop_rate_; }
  void set_drop_connect_rate(double rate) { drop_rate_ = rate; }

 private:
  int64_t expand_;
  bool has_skip_;
  double drop_rate_ = 0.0;
  std::shared_ptr<Conv2d> conv_pw_, conv_dw_, conv_pwl_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_, bn3_;
  std::shared_ptr<Module> se_;
};

class EfficientNet : public Encoder {
 public:
  explicit EfficientNet(const EfficientNetConfig& config);
  std::vector<Variable> features(const Variable& x) override;
  NetworkOutput run(const Variable& x) override;
  std::vector<StageInfo> stages() const override;
  std::string type_name() const override { return "EfficientNet"; }
  void set_drop_connect_rate(double rate) override;  // rescales every block by its flat index

  const EfficientNetConfig& config() const { return config_; }
  int64_t num_blocks() const { return static_cast<int64_t>(flat_blocks_.size()); }
  const MBConvBlock& block(int64_t flat_index) const { return *flat_blocks_.at(flat_index); }
  // Flat (efficientnet-pytorch) indices of the skip features, shallowest first (b3: 1, 4, 7, 17).
  std::vector<int64_t> feature_block_indices() const;

 private:
  EfficientNetConfig config_;
  std::shared_ptr<Conv2d> conv_stem_, conv_head_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::vector<std::shared_ptr<Sequential>> stages_;
  std::vector<MBConvBlock*> flat_blocks_;
  std::vector<int64_t> stage_end_;  // flat index of each stage's last block
  std::vector<int64_t> stage_channels_;
  std::shared_ptr<Linear> classifier_;
};

}  // namespace pneumo::nn::models
