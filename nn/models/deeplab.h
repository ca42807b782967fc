// DeepLabV3+ as NVIDIA semantic-segmentation's DeepSRNX50V3PlusD_m1 (the reference's), with its parameter
// names: encoder = dilated SE-ResNeXt50 (layer3 dilation 2, layer4 dilation 4: output stride 8);
// aspp.img_conv.{0,1} (image pooling -> 1x1 -> BN -> ReLU, upsampled), aspp.features.0 (1x1) and
// aspp.features.{1,2,3} (3x3 at rates 12/24/36), each conv-BN-ReLU; concat 5*256 -> bot_aspp (1x1, no BN);
// low-level skip from layer1: bot_fine (1x1 256 -> 48, no BN); final.{0,1,3,4,6}: [conv3x3-BN-ReLU] x2 at 256
// then 1x1 -> 1 class, no bias. All resizing is bilinear with align_corners=True.
#pragma once
#include <memory>
#include <vector>

#include "nn/layers.h"
#include "nn/models/network.h"

namespace pneumo::nn::models {

class ASPP : public Module {
 public:
  ASPP(int64_t in_channels, int64_t channels, const std::vector<int64_t>& rates);
  Variable forward(const Variable& x) override;  // -> [N, H, W, (rates + 2) * channels]
  std::string type_name() const override { return "AtrousSpatialPyramidPooling"; }

 private:
  std::shared_ptr<Sequential> features_, img_conv_;
};

class DeepLabV3Plus : public Network {
 public:
  DeepLabV3Plus(std::shared_ptr<Encoder> encoder, int64_t aspp_channels = 256, int64_t skip_channels = 48,
                std::vector<int64_t> rates = {12, 24, 36});
  NetworkOutput run(const Variable& x) override;  // {seg [N, H, W, 1], undefined}
  std::vector<StageInfo> stages() const override;
  std::string type_name() const override { return "DeepLabV3Plus"; }

 private:
  std::shared_ptr<Encoder> encoder_;
  std::shared_ptr<ASPP> aspp_;
  std::shared_ptr<Conv2d> bot_fine_, bot_aspp_;
  std::shared_ptr<Sequential> final_;
  int64_t aspp_channels_, skip_channels_;
};

}  // namespace pneumo::nn::models
