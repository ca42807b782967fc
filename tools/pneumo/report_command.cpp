// `pneumo report`: the outputs a radiologist's tools open, from an X-ray and a probability map or mask PNG:
// <id>.mask.png, <id>.overlay.png, <id>.seg.dcm (DICOM inputs) and report.csv / report.json for all images.
// One pair as two arguments, or two folders paired by file stem. A pair that fails is reported, the others
// are still written, and the report lists those that succeeded.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "augment/dicom.h"
#include "augment/image.h"
#include "augment/transforms.h"
#include "tools/pneumo/command.h"
#include "train/clinical_report.h"

namespace {

namespace fs = std::filesystem;
using namespace pneumo;

struct ReportOptions {
  std::string image, map, images, maps, out;
  double probability = -1, threshold = 127;
  bool no_seg = false;
};

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || aug::has_dicom_extension(p.string());
}

train::ClinicalResult one(const std::string& image_path, const std::string& map_path, const ReportOptions& o) {
  const aug::Image xray = aug::read_image(image_path);
  aug::Image map = aug::read_image(map_path);
  if (map.channels != 1) cli::user_error(map_path, ": a probability map or mask must have 1 channel");
  if (map.height != xray.height || map.width != xray.width) {
    std::printf("%s: %dx%d map resized (bilinear) to the image's %dx%d\n", map_path.c_str(), map.width, map.height,
                xray.width, xray.height);
    map = aug::resize_linear(map, xray.height, xray.width);
  }
  aug::Image mask(map.height, map.width, 1);
  int peak = 0;
  for (size_t i = 0; i < map.pixels.size(); ++i) {
    mask.pixels[i] = map.pixels[i] > o.threshold ? 255 : 0;
    peak = std::max<int>(peak, map.pixels[i]);
  }
  const double p = o.probability >= 0 ? o.probability : peak / 255.0;
  train::ClinicalOutputOptions out;
  out.out_dir = o.out;
  out.dicom_seg = !o.no_seg && aug::dicom_available();
  return train::write_clinical_outputs(image_path, xray, mask, p, out);
}

int run_report(const ReportOptions& o) {
  std::vector<std::pair<std::string, std::string>> pairs;
  if (!o.image.empty()) {
    if (o.map.empty()) cli::usage_error("give the image and its probability map or mask");
    if (!o.images.empty() || !o.maps.empty()) cli::usage_error("give either IMAGE MAP or --images/--maps, not both");
    pairs.emplace_back(o.image, o.map);
  } else {
    if (o.images.empty() || o.maps.empty()) cli::usage_error("give IMAGE MAP, or --images DIR --maps DIR");
    if (o.probability >= 0) cli::usage_error("--probability applies to one image; folders take each map's peak");
    for (const auto& e : fs::directory_iterator(o.images)) {
      if (!e.is_regular_file() || !is_image_file(e.path())) continue;
      pairs.emplace_back(e.path().string(), (fs::path(o.maps) / (e.path().stem().string() + ".png")).string());
    }
    std::sort(pairs.begin(), pairs.end());
    if (pairs.empty()) cli::user_error("no .png/.jpg/.dcm image in '", o.images, "'");
  }
  std::vector<train::ClinicalResult> rows;
  int failed = 0;
  for (const auto& [image, map] : pairs) {
    try {
      rows.push_back(one(image, map, o));
      const train::ClinicalResult& r = rows.back();
      std::printf("%s: p=%.3f, %lld px", r.id.c_str(), r.probability, static_cast<long long>(r.area_px));
      if (r.has_area_mm2()) std::printf(" = %.1f mm2", r.area_mm2());
      std::printf(" -> %s%s%s\n", r.overlay_png.c_str(), r.dicom_seg.empty() ? "" : ", ", r.dicom_seg.c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "pneumo report: %s\n", e.what());
      ++failed;
    }
  }
  if (!rows.empty()) {
    const std::string csv = (fs::path(o.out) / "report.csv").string(), json = (fs::path(o.out) / "report.json").string();
    train::write_report_csv(csv, rows);
    train::write_report_json(json, rows);
    std::printf("wrote %s and %s (%zu images)\n", csv.c_str(), json.c_str(), rows.size());
  }
  if (failed) cli::user_error(failed, " of ", pairs.size(), " images failed (see above)");
  return 0;
}

PNEUMO_COMMAND("report", "mask PNG, overlay PNG, DICOM SEG and a CSV/JSON report from an image and its map",
               [](CLI::App& app) {
                 auto o = std::make_shared<ReportOptions>();
                 cli::positional(app, "image", o->image, "the X-ray (PNG, JPEG or DICOM)").existing_file();
                 cli::positional(app, "map", o->map, "its probability map or mask (8-bit PNG, 255 = certain)")
                     .existing_file();
                 cli::option(app, "--images", o->images, "a folder of X-rays (instead of IMAGE)").existing_dir();
                 cli::option(app, "--maps", o->maps, "a folder of maps named <image stem>.png (instead of MAP)")
                     .existing_dir();
                 cli::out_option(app, o->out, "output folder (created)").required();
                 cli::option(app, "--probability", o->probability,
                             "pneumothorax probability to report (default: the map's peak / 255)", 0.0, 1.0);
                 cli::threshold_option(app, o->threshold);
                 cli::flag(app, "--no-seg", o->no_seg, "do not write a DICOM SEG for DICOM inputs");
                 cli::footer(app,
                             "The mask is map > threshold. Area in mm2 needs a DICOM pixel spacing; see docs/dicom.md.");
                 return [o] { return run_report(*o); };
               });

}  // namespace
