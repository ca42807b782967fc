// DeepLabV3+ (see deeplab.h).
#include "nn/models/deeplab.h"

#include <cmath>

#include "kernels/check.h"
#include "nn/init.h"

namespace pneumo::nn::models {

namespace {
std::shared_ptr<Sequential> conv_bn_relu(int64_t cin, int64_t cout, int64_t kernel, int64_t dilation = 1) {
  auto s = std::make_shared<FusingSequential>();
  s->push_back(std::make_shared<Conv2d>(cin, cout, kernel, 1, dilation * (kernel / 2), dilation, 1, false));
  s->push_back(std::make_shared<BatchNorm2d>(cout));
  s->push_back(std::make_shared<ReLU>());
  return s;
}
}  // namespace

ASPP::ASPP(int64_t cin, int64_t c, const std::vector<int64_t>& rates) {
  features_ = register_module("features", std::make_shared<Sequential>());  // a list: never run in sequence
  features_->push_back(conv_bn_relu(cin, c, 1));
  for (int64_t r : rates) features_->push_back(conv_bn_relu(cin, c, 3, r));
  img_conv_ = register_module("img_conv", conv_bn_relu(cin, c, 1));
}

Variable ASPP::forward(const Variable& x) {
  const int64_t h = x.shape()[1], w = x.shape()[2];
  std::vector<Variable> parts;
  parts.push_back(F::resize_bilinear(img_conv_->forward(F::global_avg_pool(x)), h, w, /*align_corners=*/true));
  for (size_t i = 0; i < features_->size(); ++i) parts.push_back(features_->at(i).forward(x));
  return F::concat(parts);
}

DeepLabV3Plus::DeepLabV3Plus(std::shared_ptr<Encoder> encoder, int64_t aspp_channels, int64_t skip_channels,
                             std::vector<int64_t> rates)
    : aspp_channels_(aspp_channels), skip_channels_(skip_channels) {
  encoder_ = register_module("encoder", std::move(encoder));
  const auto& ch = encoder_->out_channels();
  aspp_ = register_module("aspp", std::make_shared<ASPP>(ch[0], aspp_channels, rates));
  bot_fine_ = register_module("bot_fine", std::make_shared<Conv2d>(ch[3], skip_channels, 1, 1, 0, 1, 1, false));
  const int64_t cat = static_cast<int64_t>(rates.size() + 2) * aspp_channels;
  bot_aspp_ = register_module("bot_aspp", std::make_shared<Conv2d>(cat, aspp_channels, 1, 1, 0, 1, 1, false));
  final_ = register_module("final", std::make_shared<FusingSequential>());
  final_->push_back(std::make_shared<Conv2d>(aspp_channels + skip_channels, aspp_channels, 3, 1, 1, 1, 1, false));
  final_->push_back(std::make_shared<BatchNorm2d>(aspp_channels));
  final_->push_back(std::make_shared<ReLU>());
  final_->push_back(std::make_shared<Conv2d>(aspp_channels, aspp_channels, 3, 1, 1, 1, 1, false));
  final_->push_back(std::make_shared<BatchNorm2d>(aspp_channels));
  final_->push_back(std::make_shared<ReLU>());
  final_->push_back(std::make_shared<Conv2d>(aspp_channels, 1, 1, 1, 0, 1, 1, false));
  // NVIDIA's initialize_weights on the new parts: kaiming_normal_ (fan_in, ReLU gain) on convs, BN 1/0.
  for (auto& kv : named_modules()) {
    if (kv.first.rfind("encoder", 0) == 0) continue;
    if (auto* conv = dynamic_cast<Conv2d*>(kv.second)) {
      Tensor& w = conv->weight().mutable_value();
      init::normal_(w, 0.0, std::sqrt(2.0 / static_cast<double>(init::compute_fans(w.shape()).fan_in)),
                    default_generator());
    }
  }
}

NetworkOutput DeepLabV3Plus::run(const Variable& x) {
  std::vector<Variable> f = encoder_->features(x);
  const Variable& x1 = f[3];
  Variable up = F::resize_bilinear(bot_aspp_->forward(aspp_->forward(f[0])), x1.shape()[1], x1.shape()[2], true);
  Variable dec = final_->forward(F::concat({bot_fine_->forward(x1), up}));
  return {F::resize_bilinear(dec, x.shape()[1], x.shape()[2], true), Variable()};
}

std::vector<StageInfo> DeepLabV3Plus::stages() const {
  std::vector<StageInfo> s;
  for (StageInfo st : encoder_->stages()) {
    st.name = "encoder." + st.name;
    s.push_back(st);
  }
  s.push_back({"aspp (image pool, 1x1, 3x3 rates 12/24/36)", aspp_->parameter_count(), 5 * aspp_channels_, 8});
  s.push_back({"bot_aspp", bot_aspp_->parameter_count(), aspp_channels_, 8});
  s.push_back({"bot_fine (layer1 skip)", bot_fine_->parameter_count(), skip_channels_, 4});
  s.push_back({"final (x2 conv-BN-ReLU, 1x1)", final_->parameter_count(), 1, 4});
  return s;
}

}  // namespace pneumo::nn::models
