// SE-ResNeXt encoder (see senet.h): Cadene behaviour, timm names.
#include "nn/models/senet.h"

#include <cmath>

#include "kernels/check.h"
#include "nn/squeeze_excite.h"

namespace pneumo::nn::models {

SEResNeXtBottleneck::SEResNeXtBottleneck(int64_t inplanes, int64_t planes, const SEResNeXtConfig& c, int64_t stride,
                                         int64_t dilation, bool downsample) {
  // Cadene/timm: width = floor(planes * base_width / 64) * groups.
  const int64_t width = (planes * c.base_width / 64) * c.groups;
  const int64_t out = planes * 4;
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(inplanes, width, 1, 1, 0, 1, 1, false));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(width));
  conv2_ = register_module("conv2",
                           std::make_shared<Conv2d>(width, width, 3, stride, dilation, dilation, c.groups, false));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(width));
  conv3_ = register_module("conv3", std::make_shared<Conv2d>(width, out, 1, 1, 0, 1, 1, false));
  bn3_ = register_module("bn3", std::make_shared<BatchNorm2d>(out));
  se_ = register_module("se", std::make_shared<SqueezeExcite>(out, out / c.reduction, SEActivation::ReLU,
                                                               std::pair<std::string, std::string>{"fc1", "fc2"}));
  if (downsample) {
    downsample_ = register_module("downsample", std::make_shared<Sequential>());
    downsample_->push_back(std::make_shared<Conv2d>(inplanes, out, 1, stride, 0, 1, 1, false));
    downsample_->push_back(std::make_shared<BatchNorm2d>(out));
  }
}

Variable SEResNeXtBottleneck::forward(const Variable& x) {
  Variable y = bn1_->forward_relu(conv1_->forward(x));
  y = bn2_->forward_relu(conv2_->forward(y));
  Variable residual = downsample_ ? downsample_->forward(x) : x;
  // relu(se(bn3(conv3 y)) + residual); one fused op under PNEUMO_FUSED_BN=1. The residual is computed
  // first in both paths (the order of the parameters' use does not change any value).
  return bn3_->forward_tail(conv3_->forward(y), *se_, residual);
}

SEResNeXt::SEResNeXt(const SEResNeXtConfig& c) : config_(c) {
  PNEUMO_CHECK(c.layers.size() == 4, "SEResNeXt: expected 4 layers, got ", c.layers.size());
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(3, c.stem, 7, 2, 3, 1, 1, false));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(c.stem));
  int64_t inplanes = c.stem;
  for (int l = 0; l < 4; ++l) {
    const int64_t d = c.dilations[l];
    const int64_t stride = (l == 0 || d > 1) ? 1 : 2;
    auto layer = register_module("layer" + std::to_string(l + 1), std::make_shared<Sequential>());
    for (int64_t b = 0; b < c.layers[l]; ++b) {
      const int64_t s = b == 0 ? stride : 1;
      const bool down = b == 0 && (s != 1 || inplanes != c.planes[l] * 4);
      layer->push_back(std::make_shared<SEResNeXtBottleneck>(inplanes, c.planes[l], c, s, d, down));
      inplanes = c.planes[l] * 4;
    }
    layers_[l] = layer;
  }
  if (c.num_classes > 0) fc_ = register_module("fc", std::make_shared<Linear>(inplanes, c.num_classes));
  out_channels_ = {c.planes[3] * 4, c.planes[2] * 4, c.planes[1] * 4, c.planes[0] * 4, c.stem};
}

std::vector<Variable> SEResNeXt::features(const Variable& x) {
  PNEUMO_CHECK(x.shape().size() == 4 && x.shape()[3] == 3, "SEResNeXt: expected an NHWC image batch [N, H, W, 3], got ",
               shape_str(x.shape()));
  Variable x0 = bn1_->forward_relu(conv1_->forward(x));
  Variable x1 = layers_[0]->forward(F::max_pool2d(x0, 3, 2, 0, /*ceil_mode=*/true));
  Variable x2 = layers_[1]->forward(x1);
  Variable x3 = layers_[2]->forward(x2);
  Variable x4 = layers_[3]->forward(x3);
  return {x4, x3, x2, x1, x0};
}

NetworkOutput SEResNeXt::run(const Variable& x) {
  PNEUMO_CHECK(fc_, "SEResNeXt: built without a classifier (num_classes 0); use features()");
  return {Variable(), fc_->forward(F::global_avg_pool(features(x)[0]))};
}

std::vector<StageInfo> SEResNeXt::stages() const {
  std::vector<StageInfo> s;
  s.push_back({"stem (conv1, bn1; maxpool after)", child_parameter_count(*this, "conv1") +
                                                        child_parameter_count(*this, "bn1"),
               config_.stem, 2});
  int64_t stride = 4;
  for (int l = 0; l < 4; ++l) {
    if (l > 0 && config_.dilations[l] == 1) stride *= 2;
    std::string name = "layer" + std::to_string(l + 1);
    s.push_back({name + " (" + std::to_string(config_.layers[l]) + " blocks" +
                     (config_.dilations[l] > 1 ? ", dilation " + std::to_string(config_.dilations[l]) : "") + ")",
                 child_parameter_count(*this, name), config_.planes[l] * 4, stride});
  }
  if (fc_) s.push_back({"fc", child_parameter_count(*this, "fc"), config_.num_classes, 0});
  return s;
}

int64_t child_parameter_count(const Module& m, const std::string& child) {
  for (const auto& kv : m.named_children())
    if (kv.first == child) return kv.second->parameter_count();
  return 0;
}

}  // namespace pneumo::nn::models
