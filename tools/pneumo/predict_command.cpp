// `pneumo predict`: probability PNGs (and classification probabilities, and optional masks) of a set of images
// from one network's fold models; with --clinical DIR also what a radiologist's tools open (mask PNG, overlay
// PNG, DICOM SEG for DICOM inputs, report.csv/json: train/clinical_report.h).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "augment/dicom.h"
#include "augment/image.h"
#include "nn/models/registry.h"
#include "tools/pneumo/command.h"
#include "tools/pneumo/list_option.h"
#include "train/clinical_report.h"
#include "train/ensemble.h"
#include "train/inference.h"
#include "train/submission.h"

namespace {

using namespace pneumo;

struct PredictCmd {
  std::string model, weights, images, out, tta = "none", cls = "auto", masks, rule = "0.4", dtype = "bf16", device;
  std::string clinical;
  bool no_seg = false;
  int size = -1, batch = 4;
  bool quiet = false;
};

// The reference's input sizes: b5 at 768, the other full networks at 1024; tiny test networks at their own size.
int default_size(const std::string& model) {
  if (model.rfind("tiny_", 0) == 0) return 0;
  if (model == "unet_ef5") return 768;
  return 1024;
}

int run_predict(const PredictCmd& c) {
  if (!nn::models::is_model_name(c.model)) cli::user_error("unknown network '", c.model, "'");
  const std::vector<std::string> weights = cli::split_list(c.weights);
  if (weights.empty()) cli::usage_error("--weights needs at least one file");
  train::PredictOptions opt;
  opt.device = cli::resolve_device(c.device);
  opt.batch = c.batch;
  opt.size = c.size >= 0 ? c.size : default_size(c.model);
  if (opt.size % 32 != 0) cli::usage_error("--size ", opt.size, " is not a multiple of 32");
  opt.hflip = c.tta == "hflip";
  opt.bf16 = c.dtype == "bf16";
  opt.classify = c.cls == "on" || (c.cls == "auto" && c.model.find("cls") != std::string::npos);
  const train::MaskRule rule = train::MaskRule::parse(c.rule);

  const std::vector<train::InputImage> inputs = train::list_images(c.images);
  train::Predictor predictor(c.model, weights, opt);
  std::filesystem::create_directories(c.out);
  if (!c.masks.empty()) std::filesystem::create_directories(c.masks);
  if (!c.clinical.empty()) std::filesystem::create_directories(c.clinical);
  train::ClinicalOutputOptions clinical;
  clinical.out_dir = c.clinical;
  clinical.dicom_seg = !c.no_seg && aug::dicom_available();
  std::vector<train::ClinicalResult> clinical_rows;
  const std::string input = opt.size ? std::to_string(opt.size) + "x" + std::to_string(opt.size) : "own size";
  std::printf("%s x %zu fold model%s, %zu images, input %s, batch %d, %s%s%s\n", c.model.c_str(),
              weights.size(), weights.size() == 1 ? "" : "s", inputs.size(), input.c_str(), opt.batch,
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
        aug::write_png(c.out + "/" + p.input.id + ".png", prob);
        if (!c.masks.empty()) {
          const aug::Image m = train::apply_mask_rule(p.probability.data(), p.height, p.width, rule);
          for (uint8_t v : m.pixels)
            if (v) {
              ++positive_masks;
              break;
            }
          aug::write_png(c.masks + "/" + p.input.id + ".png", m);
        }
        if (opt.classify) cls_rows.emplace_back(p.input.id, p.cls);
        if (!c.clinical.empty()) {
          // The mask by --mask-rule; the probability is the classifier's when there is one, else the map's peak.
          const aug::Image m = train::apply_mask_rule(p.probability.data(), p.height, p.width, rule);
          double peak = 0;
          for (float v : p.probability) peak = std::max<double>(peak, v);
          const double probability = opt.classify ? p.cls : peak;
          const double pr = std::clamp(probability, 0.0, 1.0);
          if (aug::has_dicom_extension(p.input.path)) {  // read once: pixels, spacing and UIDs
            const aug::DicomImage d = aug::read_dicom(p.input.path);
            clinical_rows.push_back(train::write_clinical_outputs(p.input.path, d.image, m, pr, clinical, &d));
          } else {
            clinical_rows.push_back(
                train::write_clinical_outputs(p.input.path, aug::read_image(p.input.path), m, pr, clinical));
          }
        }
      },
      !c.quiet);
  if (opt.classify) train::write_probability_csv(c.out + "/cls.csv", cls_rows);
  if (!c.clinical.empty()) {
    train::write_report_csv(c.clinical + "/report.csv", clinical_rows);
    train::write_report_json(c.clinical + "/report.json", clinical_rows);
  }
  std::printf("wrote %zu probability PNGs%s to %s", inputs.size(), opt.classify ? " and cls.csv" : "",
              c.out.c_str());
  if (!c.masks.empty())
    std::printf("; masks (%s) to %s, %lld non-empty", rule.str().c_str(), c.masks.c_str(),
                static_cast<long long>(positive_masks));
  if (!c.clinical.empty()) {
    size_t segs = 0;
    for (const train::ClinicalResult& r : clinical_rows) segs += !r.dicom_seg.empty();
    std::printf("; masks, overlays%s and report.csv/json to %s", segs ? " and DICOM SEGs" : "", c.clinical.c_str());
  }
  std::printf("\n");
  return 0;
}

PNEUMO_COMMAND("predict", "probability maps (and classifier probabilities) of images from fold models", [](CLI::App& app) {
  auto o = std::make_shared<PredictCmd>();
  cli::option(app, "--model", o->model, "network name").required();
  cli::option(app, "--weights", o->weights, "fold checkpoints W1,W2,... (their sigmoid outputs are averaged)").required();
  cli::option(app, "--images", o->images, "a folder (searched recursively) or a list file of image paths").required();
  cli::out_option(app, o->out, "folder for <stem>.png probabilities (and cls.csv)").required();
  cli::option(app, "--size", o->size, "network input side; -1: the reference's (768 unet_ef5, 1024 others, own size tiny_*); 0: own size", -1, 8192);
  cli::option(app, "--batch", o->batch, "images per forward pass", 1, 1024);
  cli::device_option(app, o->device);
  cli::choice(app, "--dtype", o->dtype, "activations on CUDA (the CPU computes in f32)", {"bf16", "f32"});
  cli::choice(app, "--tta", o->tta, "test-time augmentation", {"none", "hflip"});
  cli::choice(app, "--cls", o->cls, "write cls.csv (auto: networks whose name has 'cls')", {"auto", "on", "off"});
  cli::option(app, "--masks", o->masks, "also write 0/255 masks into this folder");
  cli::option(app, "--mask-rule", o->rule, "mask rule: a threshold (0.4) or a triplet top,min_area,bottom (0.75,2000,0.3)");
  cli::option(app, "--clinical", o->clinical,
              "also write <stem>.mask.png, <stem>.overlay.png, <stem>.seg.dcm (DICOM inputs) and report.csv/json here");
  cli::flag(app, "--no-seg", o->no_seg, "with --clinical: no DICOM SEG for DICOM inputs");
  cli::flag(app, "--quiet", o->quiet, "no progress output");
  cli::footer(app,
              "Writes OUT/<stem>.png per image: round(p * 255) of the mean sigmoid of the fold models, at the image's\n"
              "own size (the image is resized to S x S with cv2-style INTER_LINEAR, the probabilities resized back\n"
              "bilinearly; sides must be multiples of 32). Decoding and resizing run on a prefetch thread.\n"
              "--clinical DIR: the mask follows --mask-rule; the reported probability is the classifier's (--cls)\n"
              "or else the map's peak; area in mm2 when the DICOM states a pixel spacing (docs/dicom.md).");
  return [o] { return run_predict(*o); };
});

}  // namespace
