// Model registry (see registry.h): names, architectures and arguments of the reference's networks.
#include "nn/models/registry.h"

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <sstream>

#include "kernels/check.h"
#include "nn/models/deeplab.h"
#include "nn/models/efficientnet.h"
#include "nn/models/senet.h"
#include "nn/models/unet.h"
#include "nn/models/weights_import.h"

namespace pneumo::nn::models {

namespace {

const std::vector<int64_t> kDecoder{256, 128, 64, 32, 16};
const std::vector<int64_t> kTinyDecoder{16, 16, 8, 8, 8};

SEResNeXtConfig se50(int64_t classes = 0) {
  SEResNeXtConfig c;
  c.layers = {3, 4, 6, 3};
  c.num_classes = classes;
  return c;
}
SEResNeXtConfig se101(int64_t classes = 0) {
  SEResNeXtConfig c = se50(classes);
  c.layers = {3, 4, 23, 3};
  return c;
}
SEResNeXtConfig tiny_se() {
  SEResNeXtConfig c;
  c.layers = {1, 2, 1, 1};
  c.stem = 8;
  c.planes = {4, 8, 16, 32};
  c.groups = 4;
  c.base_width = 32;
  return c;
}
SEResNeXtConfig dilated(SEResNeXtConfig c) {
  c.dilations = {1, 1, 2, 4};
  return c;
}
EfficientNetConfig effnet(double width, double depth, const ModelOptions& o, int64_t classes = 0) {
  EfficientNetConfig c;
  c.width = width;
  c.depth = depth;
  c.num_classes = classes;
  if (o.drop_connect_rate >= 0) c.drop_connect_rate = o.drop_connect_rate;
  return c;
}

struct Entry {
  std::string summary;
  std::function<std::shared_ptr<Network>(const ModelOptions&)> make;
};

std::shared_ptr<Encoder> se(const SEResNeXtConfig& c) { return std::make_shared<SEResNeXt>(c); }
std::shared_ptr<Encoder> ef(const EfficientNetConfig& c) { return std::make_shared<EfficientNet>(c); }

const std::vector<std::pair<std::string, Entry>>& entries() {
  using O = const ModelOptions&;
  static const std::vector<std::pair<std::string, Entry>> table = {
      {"unet_se50", {"UNet (256,128,64,32,16) + classification head on SE-ResNeXt50 32x4d",
                     [](O) { return std::make_shared<Unet>(se(se50()), kDecoder, true); }}},
      {"unet_se101", {"UNet + classification head on SE-ResNeXt101 32x4d",
                      [](O) { return std::make_shared<Unet>(se(se101()), kDecoder, true); }}},
      {"unet_ef3", {"UNet on EfficientNet-B3 (TF same padding, drop-connect 0.2)",
                    [](O o) { return std::make_shared<Unet>(ef(effnet(1.2, 1.4, o)), kDecoder, false); }}},
      {"unet_ef5", {"UNet on EfficientNet-B5 (TF same padding, drop-connect 0.2)",
                    [](O o) { return std::make_shared<Unet>(ef(effnet(1.6, 2.2, o)), kDecoder, false); }}},
      {"deeplab_se50", {"DeepLabV3+ (ASPP 12/24/36, skip 48) on dilated SE-ResNeXt50 (output stride 8)",
                        [](O) { return std::make_shared<DeepLabV3Plus>(se(dilated(se50()))); }}},
      {"cls_se50", {"classification UNet on SE-ResNeXt50: (cls logit, seg logit)",
                    [](O) { return std::make_shared<Unet>(se(se50()), kDecoder, true); }}},
      {"cls_ef3", {"classification UNet on EfficientNet-B3: (cls logit, seg logit)",
                   [](O o) { return std::make_shared<Unet>(ef(effnet(1.2, 1.4, o)), kDecoder, true); }}},
      {"seresnext50_32x4d", {"SE-ResNeXt50 32x4d with its 1000-class ImageNet head (timm names)",
                             [](O) { return std::make_shared<SEResNeXt>(se50(1000)); }}},
      {"seresnext101_32x4d", {"SE-ResNeXt101 32x4d with its 1000-class ImageNet head (timm names)",
                              [](O) { return std::make_shared<SEResNeXt>(se101(1000)); }}},
      {"tf_efficientnet_b3", {"EfficientNet-B3 with its 1000-class ImageNet head (timm tf_ names)",
                              [](O o) { return std::make_shared<EfficientNet>(effnet(1.2, 1.4, o, 1000)); }}},
      {"tf_efficientnet_b5", {"EfficientNet-B5 with its 1000-class ImageNet head (timm tf_ names)",
                              [](O o) { return std::make_shared<EfficientNet>(effnet(1.6, 2.2, o, 1000)); }}},
      {"tiny_unet_se", {"test-sized UNet + head on a small SE-ResNeXt (layers 1,2,1,1)",
                        [](O) { return std::make_shared<Unet>(se(tiny_se()), kTinyDecoder, true); }}},
      {"tiny_unet_ef", {"test-sized UNet on a small EfficientNet (width 0.2, depth 0.5)",
                        [](O o) { return std::make_shared<Unet>(ef(effnet(0.2, 0.5, o)), kTinyDecoder, false); }}},
      {"tiny_deeplab_se", {"test-sized DeepLabV3+ (ASPP 16, skip 8) on a small dilated SE-ResNeXt",
                           [](O) { return std::make_shared<DeepLabV3Plus>(se(dilated(tiny_se())), 16, 8); }}},
      {"tiny_cls_ef", {"test-sized classification UNet on a small EfficientNet",
                       [](O o) { return std::make_shared<Unet>(ef(effnet(0.2, 0.5, o)), kTinyDecoder, true); }}},
  };
  return table;
}

const Entry* find_entry(const std::string& name) {
  for (const auto& kv : entries())
    if (kv.first == name) return &kv.second;
  return nullptr;
}

std::string known_names() {
  std::string s;
  for (const auto& kv : entries()) s += (s.empty() ? "" : ", ") + kv.first;
  return s;
}

uint32_t fnv1a32(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

std::string thousands(int64_t v) {
  std::string d = std::to_string(v), out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i > 0 && (d.size() - i) % 3 == 0) out += ',';
    out += d[i];
  }
  return out;
}

}  // namespace

std::shared_ptr<Network> create_model(const std::string& name, const ModelOptions& options) {
  const Entry* e = find_entry(name);
  PNEUMO_CHECK(e, "unknown model '", name, "'; known: ", known_names());
  return e->make(options);
}

std::vector<std::string> model_names() {
  std::vector<std::string> v;
  for (const auto& kv : entries()) v.push_back(kv.first);
  return v;
}

bool is_model_name(const std::string& name) { return find_entry(name) != nullptr; }

std::string model_summary_line(const std::string& name) {
  const Entry* e = find_entry(name);
  PNEUMO_CHECK(e, "unknown model '", name, "'; known: ", known_names());
  return e->summary;
}

void set_formula_weights(Module& model) {
  for (auto& kv : model.state_dict()) {
    const Tensor& t = kv.second;
    if (t.dtype() != DType::F32 && t.dtype() != DType::F64) continue;
    const std::string& name = kv.first;
    const Shape pt_shape = engine_to_pytorch_shape(t.shape());
    const int64_t n = t.numel();
    const double phase = static_cast<double>(fnv1a32(name) % 10007u) * 1e-3;
    const std::string leaf = name.substr(name.rfind('.') + 1);
    double amp = 0.1, centre = 0.0;
    if (leaf == "weight" && pt_shape.size() >= 2) {
      amp = 2.0 / std::sqrt(static_cast<double>(n / pt_shape[0]));
    } else if (leaf == "weight") {
      centre = 0.5;
    } else if (leaf == "running_var") {
      amp = 0.2;
      centre = 1.0;
    }
    std::vector<double> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      v[static_cast<size_t>(i)] = static_cast<double>(static_cast<float>(amp * std::sin(0.7 * static_cast<double>(i) + phase) + centre));
    Tensor pt = Tensor::from_vector_f64(v, pt_shape, DType::F64);
    model.set_tensor(name, pytorch_to_engine_layout(pt).to(t.dtype()).to(t.device()));
  }
}

}  // namespace pneumo::nn::models

namespace pneumo::nn {

std::string describe_model(const std::string& name) {
  using namespace models;
  std::shared_ptr<Network> m = create_model(name);
  std::ostringstream os;
  os << name << ": " << model_summary_line(name) << "\n";
  os << "parameters: " << thousands(m->parameter_count()) << "\n";
  char line[256];
  std::snprintf(line, sizeof line, "  %-52s %14s %9s %7s\n", "stage", "parameters", "channels", "stride");
  os << line;
  for (const StageInfo& s : m->stages()) {
    std::snprintf(line, sizeof line, "  %-52s %14s %9s %7s\n", s.name.c_str(), thousands(s.parameters).c_str(),
                  s.channels ? std::to_string(s.channels).c_str() : "-",
                  s.stride ? ("1/" + std::to_string(s.stride)).c_str() : "-");
    os << line;
  }
  return os.str();
}

}  // namespace pneumo::nn
