// The UNet of segmentation-models-pytorch 0.0.1 (the reference's), with its parameter names:
// decoder.layer{1..5}.block.{0,1}.block.{0 conv3x3 no bias, 1 BatchNorm} and decoder.final_conv (1x1, bias).
// Block = nearest x2 upsample -> concat [upsampled, skip] -> (conv3x3-BN-ReLU) x2; block 5 has no skip.
// Decoder init: Kaiming normal fan_out (convs), BN 1/0. Optional classification head on the deepest encoder
// feature: "cls_head.fc1" Linear(C, C) -> "cls_head.fc2" Linear(C, 1), no activation between (C = 2048, 1536
// for b3). The encoder's parameters live under "encoder.".
#pragma once
#include <array>
#include <memory>
#include <vector>

#include "nn/layers.h"
#include "nn/models/network.h"

namespace pneumo::nn::models {

class Conv2dReLU : public Module {  // smp: block = [Conv2d(3x3, no bias), BatchNorm2d, ReLU]
 public:
  Conv2dReLU(int64_t in_channels, int64_t out_channels);
  Variable forward(const Variable& x) override { return block_->forward(x); }
  std::string type_name() const override { return "Conv2dReLU"; }

 private:
  std::shared_ptr<Sequential> block_;
};

class UnetDecoderBlock : public Module {
 public:
  UnetDecoderBlock(int64_t in_channels, int64_t out_channels);
  Variable forward(const Variable& x, const Variable& skip);  // skip may be undefined
  std::string type_name() const override { return "DecoderBlock"; }

 private:
  std::shared_ptr<Sequential> block_;
};

class UnetDecoder : public Module {
 public:
  // encoder_channels deepest first (5), decoder_channels (5), e.g. 256, 128, 64, 32, 16.
  UnetDecoder(const std::vector<int64_t>& encoder_channels, const std::vector<int64_t>& decoder_channels);
  Variable forward_features(const std::vector<Variable>& features);  // -> [N, H, W, 1] logits
  std::string type_name() const override { return "UnetDecoder"; }
  // smp's initialize(): Kaiming normal fan_out on convs, BN weight 1 bias 0.
  void initialize(Generator& generator);

 private:
  std::array<std::shared_ptr<UnetDecoderBlock>, 5> layers_;
  std::shared_ptr<Conv2d> final_conv_;
};

class ClassificationHead : public Module {
 public:
  explicit ClassificationHead(int64_t channels);
  Variable forward(const Variable& deepest) override;  // [N, h, w, C] -> [N, 1]
  std::string type_name() const override { return "ClassificationHead"; }

 private:
  std::shared_ptr<Linear> fc1_, fc2_;
};

class Unet : public Network {
 public:
  Unet(std::shared_ptr<Encoder> encoder, const std::vector<int64_t>& decoder_channels, bool classification_head);
  NetworkOutput run(const Variable& x) override;  // {seg [N,H,W,1], cls [N,1] or undefined}
  std::vector<StageInfo> stages() const override;
  std::string type_name() const override { return "Unet"; }
  Encoder& encoder() { return *encoder_; }

 private:
  std::shared_ptr<Encoder> encoder_;
  std::shared_ptr<UnetDecoder> decoder_;
  std::shared_ptr<ClassificationHead> cls_head_;
  std::vector<int64_t> decoder_channels_;
};

}  // namespace pneumo::nn::models
