// DICOM input: one chest radiograph decoded to the 8-bit gray Image the rest of the pipeline uses, plus the
// facts kept for outputs (pixel spacing for areas in mm², UIDs for the DICOM SEG writer).
// Convention (docs/dicom.md): stored values of at most 8 bits are kept as they are, as the competition's PNGs
// were (pydicom pixel_array written by cv2.imwrite); wider values go through the rescale, then the VOI LUT,
// else the first window centre/width, else min-max over the image; MONOCHROME1 is inverted last.
// Built only with DCMTK (cmake/Dicom.cmake); without it every reader throws, naming the missing component.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "augment/image.h"

namespace pneumo::aug {

// Largest image accepted (rows * columns), so a hostile header cannot ask for gigabytes.
constexpr int64_t kDicomMaxPixels = int64_t{1} << 27;

// How the stored values were mapped to 8 bits (DicomImage::conversion).
enum class DicomConversion { Identity, Window, VoiLut, MinMax };
const char* dicom_conversion_name(DicomConversion c);

struct DicomImage {
  Image image;  // 8-bit gray, display-ready (MONOCHROME1 already inverted)
  // Millimetres between row centres and between column centres; 0 when the file states no spacing.
  double row_spacing_mm = 0.0, column_spacing_mm = 0.0;
  std::string spacing_source;  // "PixelSpacing", "ImagerPixelSpacing" or "" (none)
  std::string study_instance_uid, series_instance_uid, sop_instance_uid, sop_class_uid;
  std::string transfer_syntax_uid;  // of the pixel data as stored
  std::string photometric;          // MONOCHROME1, MONOCHROME2, RGB ...
  int bits_allocated = 0, bits_stored = 0;
  bool is_signed = false;
  int frames = 1;  // NumberOfFrames; always 1 (files of several frames are refused, docs/dicom.md)
  DicomConversion conversion = DicomConversion::Identity;
  double window_center = 0.0, window_width = 0.0;  // the values used when conversion == Window
  std::string window_function;                     // LINEAR, LINEAR_EXACT or SIGMOID when conversion == Window

  bool has_spacing() const { return row_spacing_mm > 0.0 && column_spacing_mm > 0.0; }
  double pixel_area_mm2() const { return row_spacing_mm * column_spacing_mm; }
};

// Build components: DCMTK (DICOM at all) and OpenJPEG (JPEG 2000 transfer syntaxes).
bool dicom_available();
bool dicom_jpeg2000_available();

// True for a name ending in .dcm or .dicom (any case).
bool has_dicom_extension(const std::string& path);
// True when the bytes look like DICOM: "DICM" at offset 128 (Part 10 file), or a raw little-endian data set
// starting with a group 0002 or 0008 element (old files without preamble or meta header).
bool looks_like_dicom(const uint8_t* bytes, size_t size);

// Reads a DICOM file. Throws pneumo::Error naming the file and the problem (not DICOM, truncated, no pixel
// data, unsupported photometric/bits/transfer syntax, dimensions over the limit, this build has no DCMTK).
DicomImage read_dicom(const std::string& path);
// The same from memory (for the fuzz harness and decode_image); `name` is used in error messages.
// `max_pixels` (at most kDicomMaxPixels) lowers the size limit: the fuzz harness uses it so that mutants
// claiming big images are refused instead of decoded (the big-size paths have their own tests).
DicomImage read_dicom_memory(const uint8_t* data, size_t size, const std::string& name,
                             int64_t max_pixels = kDicomMaxPixels);

// The pixel arithmetic, exposed for tests (docs/dicom.md gives the formulas, from DICOM PS3.3 C.11.2.1.2).
// Window: LINEAR (the standard's default), LINEAR_EXACT, SIGMOID; returns 0..255 before any inversion.
uint8_t dicom_window_to_8bit(double value, double center, double width, const std::string& function);
// Min-max: round((value - lo) * 255 / (hi - lo)); 0 when hi == lo.
uint8_t dicom_minmax_to_8bit(double value, double lo, double hi);

}  // namespace pneumo::aug
