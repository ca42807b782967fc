// The networks by name, with the reference's architectures and arguments:
//   unet_se50, unet_se101          UNet + classification head on SE-ResNeXt50/101 (segmentation models)
//   unet_ef3, unet_ef5             UNet on EfficientNet-B3/B5
//   deeplab_se50                   DeepLabV3+ on the dilated SE-ResNeXt50
//   cls_se50, cls_ef3              classification UNets (UNet + head; cls_se50 has unet_se50's architecture)
//   seresnext50_32x4d, seresnext101_32x4d, tf_efficientnet_b3, tf_efficientnet_b5
//                                  the bare encoders with their 1000-class ImageNet head (timm's names)
//   tiny_unet_se, tiny_unet_ef, tiny_deeplab_se, tiny_cls_ef
//                                  test-sized members of each family (same code, small widths/depths)
// Convention: models are built on the CPU in float32 with PyTorch-default initialisation drawn from
// default_generator() (so a seed fixes them); move them with Module::to.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/models/network.h"

namespace pneumo::nn::models {

struct ModelOptions {
  double drop_connect_rate = -1;  // EfficientNet families: < 0 keeps the reference's 0.2
};

std::shared_ptr<Network> create_model(const std::string& name, const ModelOptions& options = {});
std::vector<std::string> model_names();
bool is_model_name(const std::string& name);
std::string model_summary_line(const std::string& name);  // one line of what it is

// Deterministic weights any implementation can reproduce without a random generator (the PyTorch parity
// fixtures of full-size networks use them): for a tensor named `name` with PyTorch shape S (conv KCRS),
// v[i] = amp * sin(0.7 i + phase) + centre, phase = (fnv1a32(name) % 10007) * 1e-3, i the flat index in
// PyTorch order; conv/linear weights amp 2/sqrt(fan_in) centre 0, other "weight" 0.1/0.5, running_var
// 0.2/1, everything else 0.1/0. Sets every floating parameter and buffer of `model`.
void set_formula_weights(Module& model);

}  // namespace pneumo::nn::models

namespace pneumo::nn {
// Parameter count and per-stage summary of a registered model, for `pneumo info --model NAME`.
std::string describe_model(const std::string& name);
}  // namespace pneumo::nn::models
