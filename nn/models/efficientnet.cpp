// EfficientNet encoder (see efficientnet.h): efficientnet-pytorch 0.3.0 behaviour, timm tf_ names.
#include "nn/models/efficientnet.h"

#include <cmath>

#include "kernels/check.h"
#include "nn/squeeze_excite.h"

namespace pneumo::nn::models {

namespace {
// timm's EfficientNet SE child names, so ImageNet checkpoints load unchanged.
const std::pair<std::string, std::string> kTimmEffSENames{"conv_reduce", "conv_expand"};

struct StageDef {
  int64_t repeats, kernel, stride, expand, channels;
};
// EfficientNet-B0's stages (se ratio 0.25 everywhere); the first is depthwise-separable.
const StageDef kStages[7] = {{1, 3, 1, 1, 16}, {2, 3, 2, 6, 24}, {2, 5, 2, 6, 40}, {3, 3, 2, 6, 80},
                             {3, 5, 1, 6, 112}, {4, 5, 2, 6, 192}, {1, 3, 1, 6, 320}};
constexpr double kBnEps = 1e-3, kBnMomentum = 0.01;

std::shared_ptr<BatchNorm2d> bn_tf(int64_t c) { return std::make_shared<BatchNorm2d>(c, kBnEps, kBnMomentum); }
std::shared_ptr<Conv2d> conv_same(int64_t cin, int64_t cout, int64_t k, int64_t stride = 1, int64_t groups = 1) {
  return Conv2d::tf_same(cin, cout, k, stride, 1, groups, false);
}
}  // namespace

int64_t efficientnet_round_filters(int64_t channels, double width) {
  const double c = static_cast<double>(channels) * width;
  int64_t rounded = std::max<int64_t>(8, static_cast<int64_t>(c + 4) / 8 * 8);
  if (static_cast<double>(rounded) < 0.9 * c) rounded += 8;
  return rounded;
}

int64_t efficientnet_round_repeats(int64_t repeats, double depth) {
  return static_cast<int64_t>(std::ceil(depth * static_cast<double>(repeats)));
}

MBConvBlock::MBConvBlock(int64_t cin, int64_t cout, int64_t k, int64_t stride, int64_t expand)
    : expand_(expand), has_skip_(stride == 1 && cin == cout) {
  const int64_t reduced = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(cin) * 0.25));
  if (expand == 1) {
    conv_dw_ = register_module("conv_dw", conv_same(cin, cin, k, stride, cin));
    bn1_ = register_module("bn1", bn_tf(cin));
    se_ = register_module("se", std::make_shared<SqueezeExcite>(cin, reduced, SEActivation::Swish, kTimmEffSENames));
    conv_pw_ = register_module("conv_pw", conv_same(cin, cout, 1));
    bn2_ = register_module("bn2", bn_tf(cout));
  } else {
    const int64_t mid = cin * expand;
    conv_pw_ = register_module("conv_pw", conv_same(cin, mid, 1));
    bn1_ = register_module("bn1", bn_tf(mid));
    conv_dw_ = register_module("conv_dw", conv_same(mid, mid, k, stride, mid));
    bn2_ = register_module("bn2", bn_tf(mid));
    se_ = register_module("se", std::make_shared<SqueezeExcite>(mid, reduced, SEActivation::Swish, kTimmEffSENames));
    conv_pwl_ = register_module("conv_pwl", conv_same(mid, cout, 1));
    bn3_ = register_module("bn3", bn_tf(cout));
  }
}

Variable MBConvBlock::forward(const Variable& x) {
  Variable y;
  if (expand_ == 1) {
    y = bn1_->forward_swish(conv_dw_->forward(x));
    y = bn2_->forward(conv_pw_->forward(se_->forward(y)));
  } else {
    y = bn1_->forward_swish(conv_pw_->forward(x));
    y = bn2_->forward_swish(conv_dw_->forward(y));
    y = bn3_->forward(conv_pwl_->forward(se_->forward(y)));
  }
  if (!has_skip_) return y;
  if (drop_rate_ > 0) y = F::drop_connect(y, drop_rate_, is_training(), default_generator());
  return ag::add(y, x);
}

EfficientNet::EfficientNet(const EfficientNetConfig& c) : config_(c) {
  const int64_t stem = efficientnet_round_filters(32, c.width);
  conv_stem_ = register_module("conv_stem", conv_same(3, stem, 3, 2));
  bn1_ = register_module("bn1", bn_tf(stem));
  auto blocks = register_module("blocks", std::make_shared<Sequential>());
  int64_t cin = stem;
  for (const StageDef& s : kStages) {
    const int64_t cout = efficientnet_round_filters(s.channels, c.width);
    auto stage = std::make_shared<Sequential>();
    const int64_t n = efficientnet_round_repeats(s.repeats, c.depth);
    for (int64_t b = 0; b < n; ++b) {
      auto block = std::make_shared<MBConvBlock>(b == 0 ? cin : cout, cout, s.kernel, b == 0 ? s.stride : 1, s.expand);
      flat_blocks_.push_back(block.get());
      stage->push_back(block);
    }
    blocks->push_back(stage);
    stages_.push_back(stage);
    stage_end_.push_back(static_cast<int64_t>(flat_blocks_.size()) - 1);
    stage_channels_.push_back(cout);
    cin = cout;
  }
  const int64_t head = efficientnet_round_filters(1280, c.width);
  conv_head_ = register_module("conv_head", conv_same(cin, head, 1));
  bn2_ = register_module("bn2", bn_tf(head));
  if (c.num_classes > 0) classifier_ = register_module("classifier", std::make_shared<Linear>(head, c.num_classes));
  out_channels_ = {head, stage_channels_[4], stage_channels_[2], stage_channels_[1], stage_channels_[0]};
  set_drop_connect_rate(c.drop_connect_rate);
}

void EfficientNet::set_drop_connect_rate(double rate) {
  PNEUMO_CHECK(rate >= 0 && rate < 1, "EfficientNet: drop_connect_rate must be in [0, 1), got ", rate);
  config_.drop_connect_rate = rate;
  // efficientnet-pytorch: rate * idx / len(blocks), idx the flat block index.
  const double n = static_cast<double>(flat_blocks_.size());
  for (size_t i = 0; i < flat_blocks_.size(); ++i)
    flat_blocks_[i]->set_drop_connect_rate(rate * static_cast<double>(i) / n);
}

std::vector<int64_t> EfficientNet::feature_block_indices() const {
  return {stage_end_[0], stage_end_[1], stage_end_[2], stage_end_[4]};
}

std::vector<Variable> EfficientNet::features(const Variable& x) {
  PNEUMO_CHECK(x.shape().size() == 4 && x.shape()[3] == 3,
               "EfficientNet: expected an NHWC image batch [N, H, W, 3], got ", shape_str(x.shape()));
  Variable y = bn1_->forward_swish(conv_stem_->forward(x));
  std::vector<Variable> skips;
  for (size_t s = 0; s < stages_.size(); ++s) {
    y = stages_[s]->forward(y);
    if (s == 0 || s == 1 || s == 2 || s == 4) skips.push_back(y);
  }
  y = bn2_->forward_swish(conv_head_->forward(y));
  return {y, skips[3], skips[2], skips[1], skips[0]};
}

NetworkOutput EfficientNet::run(const Variable& x) {
  PNEUMO_CHECK(classifier_, "EfficientNet: built without a classifier (num_classes 0); use features()");
  return {Variable(), classifier_->forward(F::global_avg_pool(features(x)[0]))};
}

std::vector<StageInfo> EfficientNet::stages() const {
  std::vector<StageInfo> out;
  out.push_back({"stem (conv_stem, bn1)",
                 child_parameter_count(*this, "conv_stem") + child_parameter_count(*this, "bn1"),
                 efficientnet_round_filters(32, config_.width), 2});
  const int64_t strides[7] = {2, 4, 8, 16, 16, 32, 32};
  int64_t first = 0;
  for (size_t s = 0; s < stages_.size(); ++s) {
    std::string name = "blocks." + std::to_string(s) + " (flat " + std::to_string(first) + "-" +
                       std::to_string(stage_end_[s]) + ")";
    if (s == 0 || s == 1 || s == 2 || s == 4) name += " -> skip";
    out.push_back({name, stages_[s]->parameter_count(), stage_channels_[s], strides[s]});
    first = stage_end_[s] + 1;
  }
  out.push_back({"head (conv_head, bn2)",
                 child_parameter_count(*this, "conv_head") + child_parameter_count(*this, "bn2"),
                 out_channels_[0], 32});
  if (classifier_) out.push_back({"classifier", child_parameter_count(*this, "classifier"), config_.num_classes, 0});
  return out;
}

}  // namespace pneumo::nn::models
