// Clinical outputs and the per-study report (clinical_report.h). Files are written atomically
// (write_file_atomic) so an interrupted run never leaves half a report.
#include "train/clinical_report.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "augment/dicom_seg.h"
#include "augment/overlay.h"
#include "kernels/atomic_file.h"
#include "kernels/check.h"

namespace pneumo::train {

namespace fs = std::filesystem;

namespace {

void write_text_atomic(const std::string& path, const std::string& text) { write_file_atomic(path, text); }

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// RFC 4180: quoted when it holds a comma, quote or line break; quotes doubled.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::vector<std::string> overlay_lines(const ClinicalResult& r) {
  std::vector<std::string> lines;
  lines.push_back("PNEUMOTHORAX P=" + fmt("%.2f", r.probability));
  std::string area = "AREA ";
  if (r.has_area_mm2()) area += fmt("%.1f", r.area_mm2()) + " MM\xC2\xB2 (" + std::to_string(r.area_px) + " PX)";
  else area += std::to_string(r.area_px) + " PX (NO PIXEL SPACING)";
  lines.push_back(area);
  return lines;
}

ClinicalResult write_clinical_outputs(const std::string& image_path, const aug::Image& xray, const aug::Image& mask,
                                      double probability, const ClinicalOutputOptions& options,
                                      const aug::DicomImage* dicom) {
  PNEUMO_CHECK(std::isfinite(probability) && probability >= 0.0 && probability <= 1.0, "'", image_path,
               "': probability ", probability, " is not in 0..1");
  PNEUMO_CHECK(mask.channels == 1 && mask.height == xray.height && mask.width == xray.width, "'", image_path,
               "': the mask is ", mask.width, "x", mask.height, "x", mask.channels, ", the image ", xray.width, "x",
               xray.height, " (a 1-channel mask of the image's size is needed)");
  PNEUMO_CHECK(!options.out_dir.empty(), "write_clinical_outputs: no output folder");
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  PNEUMO_CHECK(fs::is_directory(options.out_dir), "cannot create output folder '", options.out_dir, "'",
               ec ? ": " + ec.message() : std::string());

  ClinicalResult r;
  r.image = image_path;
  r.id = fs::path(image_path).stem().string();
  r.probability = probability;
  aug::Image binary(mask.height, mask.width, 1);
  for (size_t i = 0; i < mask.pixels.size(); ++i) {
    binary.pixels[i] = mask.pixels[i] ? 255 : 0;
    r.area_px += mask.pixels[i] != 0;
  }
  const bool is_dicom = dicom != nullptr || aug::has_dicom_extension(image_path) || [&] {
    std::ifstream in(image_path, std::ios::binary);
    char b[132] = {};
    in.read(b, sizeof b);
    return aug::looks_like_dicom(reinterpret_cast<const uint8_t*>(b), static_cast<size_t>(in.gcount()));
  }();
  aug::DicomImage read_here;
  if (is_dicom && dicom == nullptr) {
    read_here = aug::read_dicom(image_path);
    dicom = &read_here;
  }
  if (dicom) {
    r.row_spacing_mm = dicom->row_spacing_mm;
    r.column_spacing_mm = dicom->column_spacing_mm;
    r.spacing_source = dicom->spacing_source;
    r.study_instance_uid = dicom->study_instance_uid;
    r.sop_instance_uid = dicom->sop_instance_uid;
  }
  const std::string base = (fs::path(options.out_dir) / r.id).string();
  if (options.mask_png) {
    r.mask_png = base + ".mask.png";
    aug::write_png(r.mask_png, binary);
  }
  if (options.overlay_png) {
    r.overlay_png = base + ".overlay.png";
    aug::write_png(r.overlay_png, aug::make_overlay(xray, binary, overlay_lines(r)));
  }
  if (options.dicom_seg && is_dicom) {
    r.dicom_seg = base + ".seg.dcm";
    aug::write_dicom_seg(image_path, binary, r.dicom_seg);
  }
  return r;
}

void write_report_csv(const std::string& path, const std::vector<ClinicalResult>& rows) {
  std::ostringstream s;
  s << "image,id,study_instance_uid,sop_instance_uid,probability,area_px,area_mm2,row_spacing_mm,column_spacing_mm,"
       "spacing_source,mask_png,overlay_png,dicom_seg\n";
  for (const ClinicalResult& r : rows) {
    s << csv_field(r.image) << ',' << csv_field(r.id) << ',' << csv_field(r.study_instance_uid) << ','
      << csv_field(r.sop_instance_uid) << ',' << fmt("%.6f", r.probability) << ',' << r.area_px << ','
      << (r.has_area_mm2() ? fmt("%.3f", r.area_mm2()) : "") << ','
      << (r.has_area_mm2() ? fmt("%.6g", r.row_spacing_mm) : "") << ','
      << (r.has_area_mm2() ? fmt("%.6g", r.column_spacing_mm) : "") << ',' << csv_field(r.spacing_source) << ','
      << csv_field(r.mask_png) << ',' << csv_field(r.overlay_png) << ',' << csv_field(r.dicom_seg) << '\n';
  }
  write_text_atomic(path, s.str());
}

void write_report_json(const std::string& path, const std::vector<ClinicalResult>& rows) {
  nlohmann::json images = nlohmann::json::array();
  for (const ClinicalResult& r : rows) {
    nlohmann::json j;
    j["image"] = r.image;
    j["id"] = r.id;
    j["study_instance_uid"] = r.study_instance_uid;
    j["sop_instance_uid"] = r.sop_instance_uid;
    j["probability"] = r.probability;
    j["area_px"] = r.area_px;
    j["area_mm2"] = r.has_area_mm2() ? nlohmann::json(r.area_mm2()) : nlohmann::json(nullptr);
    j["pixel_spacing_mm"] = r.has_area_mm2() ? nlohmann::json::array({r.row_spacing_mm, r.column_spacing_mm})
                                             : nlohmann::json(nullptr);
    j["spacing_source"] = r.spacing_source;
    j["mask_png"] = r.mask_png;
    j["overlay_png"] = r.overlay_png;
    j["dicom_seg"] = r.dicom_seg;
    images.push_back(std::move(j));
  }
  write_text_atomic(path, nlohmann::json{{"images", images}}.dump(2) + "\n");
}

}  // namespace pneumo::train
