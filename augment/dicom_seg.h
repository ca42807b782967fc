// DICOM Segmentation (SEG) output through DCMTK's dcmseg: one binary segment "Pneumothorax" (SNOMED CT
// 36118008) over the source X-ray, in the source's study, referencing its series and SOP instance (Derivation
// Image functional group and Referenced Series Sequence), so a PACS viewer lays it over the image.
// Convention: the mask is the source image's size, nonzero = pneumothorax. Without DCMTK the writer throws.
#pragma once
#include <string>

#include "augment/image.h"

namespace pneumo::aug {

struct DicomSegOptions {
  std::string series_description = "pneumo pneumothorax segmentation";
  std::string series_number = "9901";
  std::string segment_label = "Pneumothorax";
  std::string algorithm_name = "pneumo";  // SegmentAlgorithmName
  std::string algorithm_version;          // empty: the engine version
};

// Writes `out_path` (atomically: a temporary file, then rename). Throws pneumo::Error naming the file when
// the source is not a readable DICOM image, the mask's size differs from the source's, or writing fails.
void write_dicom_seg(const std::string& source_dicom_path, const Image& mask, const std::string& out_path,
                     const DicomSegOptions& options = {});

// What a SEG file holds, read back through DCMTK (for tests and `pneumo report --check`).
struct DicomSegInfo {
  std::string sop_class_uid, sop_instance_uid, study_instance_uid, series_instance_uid;
  std::string referenced_series_uid;        // Referenced Series Sequence
  std::string referenced_sop_instance_uid;  // Derivation Image -> Source Image Sequence
  std::string referenced_sop_class_uid;
  std::string patient_id, segment_label, segmentation_type;
  int rows = 0, columns = 0;
  size_t frames = 0, segments = 0;
  Image frame;  // frame 1 unpacked to 0/255
};
DicomSegInfo read_dicom_seg(const std::string& path);

}  // namespace pneumo::aug
