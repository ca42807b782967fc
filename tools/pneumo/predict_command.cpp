// `pneumo predict`: probability PNGs (and classification probabilities, and optional masks) of a set of images
// from one network's fold models.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "augment/image.h"
#include "kernels/check.h"
#include "nn/models/registry.h"
#include "tools/pneumo/command.h"
#include "train/ensemble.h"
#include "train/inference.h"
#include "train/submission.h"

namespace {

using pneumo::cli::Args;

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// The reference's input sizes: b5 at 768, the other full networks at 1024; tiny test networks at their own size.
int default_size(const std::string& model) {
  if (model.rfind("tiny_", 0) == 0) return 0;
  if (model == "unet_ef5") return 768;
  return 1024;
}

int run_predict(const Args& args) {
  using namespace pneumo;
  const std::string model = args.require("model");
  const std::vector<std::string> weights = split_list(args.require("weights"));
  const std::string images = args.require("images");
  const std::string out = args.require("out");
  const int size = static_cast<int>(args.get_int("size", -1));
  const std::string tta = args.get("tta", "none");
  const std::string cls_mode = args.get("cls", "auto");
  const std::string masks_dir = args.get("masks", "");
  const std::string rule_text = args.get("mask-rule", "0.4");
  const std::string dtype = args.get("dtype", "bf16");
  train::PredictOptions opt;
  opt.device = Device::parse(args.get("device", "cpu"));
  opt.batch = static_cast<int>(args.get_int("batch", 4));
  const bool quiet = args.flag("quiet");
  args.finish();
  PNEUMO_CHECK(nn::models::is_model_name(model), "predict: unknown network '", model, "'");
  PNEUMO_CHECK(tta == "none" || tta == "hflip", "predict: --tta must be none or hflip, got '", tta, "'");
  PNEUMO_CHECK(cls_mode == "auto" || cls_mode == "on" || cls_mode == "off", "predict: --cls must be auto, on or off");
  PNEUMO_CHECK(dtype == "bf16" || dtype == "f32", "predict: --dtype must be bf16 or f32");
  PNEUMO_CHECK(opt.batch >= 1, "predict: --batch must be at least 1");
  opt.size = size >= 0 ? size : default_size(model);
  PNEUMO_CHECK(opt.size == 0 || opt.size % 32 == 0, "predict: --size ", opt.size, " is not a multiple of 32");
  opt.hflip = tta == "hflip";
  opt.bf16 = dtype == "bf16";
  opt.classify = cls_mode == "on" || (cls_mode == "auto" && model.find("cls") != std::string::npos);
  const train::MaskRule rule = train::MaskRule::parse(rule_text);

  const std::vector<train::InputImage> inputs = train::list_images(images);
  train::Predictor predictor(model, weights, opt);
  std::filesystem::create_directories(out);
  if (!masks_dir.empty()) std::filesystem::create_directories(masks_dir);
  std::printf("predict: %s x %zu fold model%s, %zu images, input %s, batch %d, %s%s%s\n", model.c_str(),
              weights.size(), weights.size() == 1 ? "" : "s", inputs.size(),
              opt.size ? (std::to_string(opt.size) + "x" + std::to_string(opt.size)).c_str() : "own size", opt.batch,
              opt.device.str().c_str(), opt.device.is_cuda() && opt.bf16 ? " bf16" : " f32",
              opt.hflip ? ", hflip TTA" : "");
  std::fflush(stdout);
  std::vector<std::pair<std::string, double>> cls_rows;
  int64_t positive_masks = 0;
  train::predict_images(
      predictor, inputs,
      [&](const train::ImagePrediction& p) {
        aug::Image prob(p.height, p.width, 1);
        for (size_t i = 0; i < prob.size(); ++i) prob.pixels[i] = train::probability_to_u8(p.probability[i]);
        aug::write_png(out + "/" + p.input.id + ".png", prob);
        if (!masks_dir.empty()) {
          const aug::Image m = train::apply_mask_rule(p.probability.data(), p.height, p.width, rule);
          for (uint8_t v : m.pixels)
            if (v) {
              ++positive_masks;
              break;
            }
          aug::write_png(masks_dir + "/" + p.input.id + ".png", m);
        }
        if (opt.classify) cls_rows.emplace_back(p.input.id, p.cls);
      },
      !quiet);
  if (opt.classify) train::write_probability_csv(out + "/cls.csv", cls_rows);
  std::printf("predict: wrote %zu probability PNGs%s to %s", inputs.size(), opt.classify ? " and cls.csv" : "",
              out.c_str());
  if (!masks_dir.empty())
    std::printf("; masks (%s) to %s, %lld non-empty", rule.str().c_str(), masks_dir.c_str(),
                static_cast<long long>(positive_masks));
  std::printf("\n");
  return 0;
}

PNEUMO_COMMAND("predict", "probability maps (and classifier probabilities) of images from fold models",
               "usage: pneumo predict --model NAME --weights W1[,W2,...] --images DIR|LIST --out DIR\n"
               "                      [--size S] [--batch 4] [--device cpu|cuda] [--dtype bf16|f32]\n"
               "                      [--tta none|hflip] [--cls auto|on|off] [--masks DIR [--mask-rule 0.4]] [--quiet]\n"
               "Writes DIR/<stem>.png per image: round(p * 255) of the mean sigmoid of the fold models, at the\n"
               "image's own size (network input resized to S x S with cv2-style INTER_LINEAR, probabilities\n"
               "resized back bilinearly). Default S: 768 for unet_ef5, 1024 for the other networks, the image's\n"
               "own size for tiny_* networks (--size 0 for the own size; sides must be multiples of 32).\n"
               "--images: a folder (searched recursively: the competition's DICOM test layout works), or a list\n"
               "file of image paths. Classification networks (--cls auto: names with 'cls') also write\n"
               "DIR/cls.csv (image,probability). --masks writes 0/255 masks by --mask-rule: a threshold (0.4) or\n"
               "the 1st place's triplet top,min_area,bottom (e.g. 0.75,2000,0.3). bf16 applies on CUDA only.",
               run_predict);

}  // namespace
