// Per-image outputs a radiologist's tools open, and the per-study report that lists them:
//   <stem>.mask.png     the binary mask (0/255) at the X-ray's size
//   <stem>.overlay.png  the X-ray with the contour, a translucent fill, probability and area (augment/overlay.h)
//   <stem>.seg.dcm      for DICOM inputs (when built with DCMTK), a DICOM SEG referencing the source
//   report.csv / report.json   one row per image: probability, area in pixels and in mm² (when the DICOM
//                              states a pixel spacing), spacing, and the files written.
// The predict command calls write_clinical_outputs per image, then write_report_csv/json once.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "augment/dicom.h"
#include "augment/image.h"

namespace pneumo::train {

struct ClinicalResult {
  std::string image;        // the input's path as given
  std::string id;           // its file stem (the competition's ImageId for SIIM files)
  double probability = 0;   // pneumothorax probability, 0..1
  int64_t area_px = 0;      // mask pixels
  double row_spacing_mm = 0, column_spacing_mm = 0;  // 0 when unknown (PNG/JPEG, or no spacing in the DICOM)
  std::string spacing_source;                        // PixelSpacing, ImagerPixelSpacing or ""
  std::string study_instance_uid, sop_instance_uid;  // DICOM inputs: which study and image the row is about
  std::string mask_png, overlay_png, dicom_seg;      // written files ("" when not written)

  bool has_area_mm2() const { return row_spacing_mm > 0 && column_spacing_mm > 0; }
  double area_mm2() const { return static_cast<double>(area_px) * row_spacing_mm * column_spacing_mm; }
};

struct ClinicalOutputOptions {
  std::string out_dir;    // created when missing
  bool mask_png = true;
  bool overlay_png = true;
  bool dicom_seg = true;  // only for DICOM inputs; an error when asked for and the build has no DCMTK
};

// `xray` is the input as read (read_image), `mask` nonzero = pneumothorax, the X-ray's size. For a DICOM input
// the spacing comes from `dicom` (read from image_path when null) and the SEG references that file.
ClinicalResult write_clinical_outputs(const std::string& image_path, const aug::Image& xray, const aug::Image& mask,
                                      double probability, const ClinicalOutputOptions& options,
                                      const aug::DicomImage* dicom = nullptr);

// The overlay's text lines for a result, e.g. "PNEUMOTHORAX P=0.87" and "AREA 1234.5 MM² (43210 PX)".
std::vector<std::string> overlay_lines(const ClinicalResult& r);

// Columns: image,id,study_instance_uid,sop_instance_uid,probability,area_px,area_mm2,row_spacing_mm,
// column_spacing_mm,spacing_source,mask_png,overlay_png,dicom_seg; area_mm2 and the spacings are empty when
// unknown, the UIDs for PNG/JPEG inputs. Both writers are atomic.
void write_report_csv(const std::string& path, const std::vector<ClinicalResult>& rows);
// {"images": [{"image": ..., "area_mm2": null when unknown, ...}]}
void write_report_json(const std::string& path, const std::vector<ClinicalResult>& rows);

}  // namespace pneumo::train
