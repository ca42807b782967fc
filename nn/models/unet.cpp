// UNet decoder, classification head and the UNet network (see unet.h).
#include "nn/models/unet.h"

#include "autograd/layer_functions.h"
#include "kernels/check.h"
#include "nn/init.h"
#include "tensor/fused_bn_ops.h"

namespace pneumo::nn::models {

Conv2dReLU::Conv2dReLU(int64_t cin, int64_t cout) {
  block_ = register_module("block", std::make_shared<FusingSequential>());
  block_->push_back(std::make_shared<Conv2d>(cin, cout, 3, 1, 1, 1, 1, false));
  block_->push_back(std::make_shared<BatchNorm2d>(cout));
  block_->push_back(std::make_shared<ReLU>());
}

UnetDecoderBlock::UnetDecoderBlock(int64_t cin, int64_t cout) {
  block_ = register_module("block", std::make_shared<Sequential>());
  block_->push_back(std::make_shared<Conv2dReLU>(cin, cout));
  block_->push_back(std::make_shared<Conv2dReLU>(cout, cout));
}

Variable UnetDecoderBlock::forward(const Variable& x, const Variable& skip) {
  if (skip.defined()) {
    PNEUMO_CHECK(skip.shape()[1] == 2 * x.shape()[1] && skip.shape()[2] == 2 * x.shape()[2],
                 "UNet decoder: upsampled ", shape_str(x.shape()), " x2 does not match skip ", shape_str(skip.shape()),
                 " (input sides must be multiples of 32)");
    // One pass into the concat buffer under PNEUMO_FUSED_CONCAT=1; else upsample, then concat.
    if (layer_ops::fused_concat_enabled()) return block_->forward(ag::upsample2x_concat(x, skip));
    return block_->forward(F::concat({F::upsample_nearest2x(x), skip}));
  }
  return block_->forward(F::upsample_nearest2x(x));
}

UnetDecoder::UnetDecoder(const std::vector<int64_t>& enc, const std::vector<int64_t>& dec) {
  PNEUMO_CHECK(enc.size() == 5 && dec.size() == 5, "UnetDecoder: expected 5 encoder and 5 decoder channel counts");
  const int64_t in[5] = {enc[0] + enc[1], enc[2] + dec[0], enc[3] + dec[1], enc[4] + dec[2], dec[3]};
  for (int i = 0; i < 5; ++i)
    layers_[i] = register_module("layer" + std::to_string(i + 1), std::make_shared<UnetDecoderBlock>(in[i], dec[i]));
  final_conv_ = register_module("final_conv", std::make_shared<Conv2d>(dec[4], 1, 1, 1, 0, 1, 1, true));
}

void UnetDecoder::initialize(Generator& generator) {
  for (auto& kv : named_modules()) {
    if (auto* conv = dynamic_cast<Conv2d*>(kv.second)) {
      init::kaiming_normal_fan_out(conv->weight().mutable_value(), generator);
      if (conv->has_bias()) init::constant_(conv->bias().mutable_value(), 0.0);
    } else if (auto* bn = dynamic_cast<BatchNorm2d*>(kv.second)) {
      init::batch_norm_default_(bn->weight().mutable_value(), bn->bias().mutable_value());
    }
  }
}

Variable UnetDecoder::forward_features(const std::vector<Variable>& f) {
  PNEUMO_CHECK(f.size() == 5, "UnetDecoder: expected 5 encoder features, got ", f.size());
  Variable x = layers_[0]->forward(f[0], f[1]);
  x = layers_[1]->forward(x, f[2]);
  x = layers_[2]->forward(x, f[3]);
  x = layers_[3]->forward(x, f[4]);
  x = layers_[4]->forward(x, Variable());
  return final_conv_->forward(x);
}

ClassificationHead::ClassificationHead(int64_t c) {
  fc1_ = register_module("fc1", std::make_shared<Linear>(c, c));
  fc2_ = register_module("fc2", std::make_shared<Linear>(c, 1));
}

Variable ClassificationHead::forward(const Variable& deepest) {
  return fc2_->forward(fc1_->forward(F::global_avg_pool(deepest)));
}

Unet::Unet(std::shared_ptr<Encoder> encoder, const std::vector<int64_t>& decoder_channels, bool classification_head)
    : decoder_channels_(decoder_channels) {
  encoder_ = register_module("encoder", std::move(encoder));
  decoder_ = register_module("decoder", std::make_shared<UnetDecoder>(encoder_->out_channels(), decoder_channels));
  if (classification_head)
    cls_head_ = register_module("cls_head", std::make_shared<ClassificationHead>(encoder_->out_channels()[0]));
  decoder_->initialize(default_generator());
}

NetworkOutput Unet::run(const Variable& x) {
  std::vector<Variable> f = encoder_->features(x);
  NetworkOutput out;
  out.seg = decoder_->forward_features(f);
  if (cls_head_) out.cls = cls_head_->forward(f[0]);
  return out;
}

std::vector<StageInfo> Unet::stages() const {
  std::vector<StageInfo> s;
  for (StageInfo st : encoder_->stages()) {
    st.name = "encoder." + st.name;
    s.push_back(st);
  }
  int64_t stride = 16;
  for (int i = 0; i < 5; ++i, stride /= 2)
    s.push_back({"decoder.layer" + std::to_string(i + 1) + (i == 4 ? " (no skip)" : ""),
                 child_parameter_count(*decoder_, "layer" + std::to_string(i + 1)), decoder_channels_[i], stride});
  s.push_back({"decoder.final_conv", child_parameter_count(*decoder_, "final_conv"), 1, 1});
  if (cls_head_) s.push_back({"cls_head (pool, fc1, fc2)", cls_head_->parameter_count(), 1, 0});
  return s;
}

}  // namespace pneumo::nn::models
