// SE-ResNeXt encoders (32x4d) as the reference uses them: Cadene pretrainedmodels' architecture (7x7 stem,
// max-pool 3x3 s2 with NO padding and ceil_mode, SE reduction 16 after conv3) under timm's parameter names
// (conv1, bn1, layerL.B.conv1/bn1/conv2/bn2/conv3/bn3, layerL.B.se.fc1/fc2, layerL.B.downsample.0/1, fc).
// Dilated variant (DeepLabV3+, NVIDIA "variant D"): in a layer with dilation d > 1 EVERY block's conv2 has
// stride 1 and dilation d, and the downsample has stride 1.
#pragma once
#include <array>
#include <memory>
#include <vector>

#include "nn/layers.h"
#include "nn/models/network.h"

namespace pneumo::nn::models {

struct SEResNeXtConfig {
  std::vector<int64_t> layers{3, 4, 6, 3};  // blocks per layer: 50 = {3,4,6,3}, 101 = {3,4,23,3}
  int64_t stem = 64;
  std::array<int64_t, 4> planes{64, 128, 256, 512};  // output channels are planes * 4
  int64_t groups = 32, base_width = 4, reduction = 16;
  std::array<int64_t, 4> dilations{1, 1, 1, 1};
  int64_t num_classes = 0;  // > 0: an ImageNet-style classifier "fc" on the pooled deepest feature
};

class SEResNeXtBottleneck : public Module {
 public:
  SEResNeXtBottleneck(int64_t inplanes, int64_t planes, const SEResNeXtConfig& config, int64_t stride,
                      int64_t dilation, bool downsample);
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "SEResNeXtBottleneck"; }

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_, conv3_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_, bn3_;
  std::shared_ptr<Module> se_;
  std::shared_ptr<Sequential> downsample_;
};

class SEResNeXt : public Encoder {
 public:
  explicit SEResNeXt(const SEResNeXtConfig& config);
  std::vector<Variable> features(const Variable& x) override;
  NetworkOutput run(const Variable& x) override;  // {undefined, fc logits}; needs num_classes > 0
  std::vector<StageInfo> stages() const override;
  std::string type_name() const override { return "SEResNeXt"; }
  const SEResNeXtConfig& config() const { return config_; }

 private:
  SEResNeXtConfig config_;
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::array<std::shared_ptr<Sequential>, 4> layers_;
  std::shared_ptr<Linear> fc_;
};

}  // namespace pneumo::nn::models
