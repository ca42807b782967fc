// The image type shared by the data pipeline (reading, augmentation, loader) and its file I/O.
// Convention: pixels are 8-bit, HWC row-major (pixel (y, x) channel c at (y * width + x) * channels + c);
// X-rays and masks are single-channel (channels = 1). Masks hold 0 or 255.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace pneumo::aug {

struct Image {
  int height = 0, width = 0, channels = 1;
  std::vector<uint8_t> pixels;  // HWC row-major, height * width * channels bytes

  Image() = default;
  Image(int h, int w, int c = 1, uint8_t fill = 0)
      : height(h), width(w), channels(c), pixels(static_cast<size_t>(h) * w * c, fill) {}

  bool empty() const { return pixels.empty(); }
  size_t size() const { return pixels.size(); }
  int64_t pixel_count() const { return static_cast<int64_t>(height) * width; }
  uint8_t* data() { return pixels.data(); }
  const uint8_t* data() const { return pixels.data(); }
  uint8_t* row(int y) { return pixels.data() + static_cast<size_t>(y) * width * channels; }
  const uint8_t* row(int y) const { return pixels.data() + static_cast<size_t>(y) * width * channels; }
  uint8_t& at(int y, int x, int c = 0) { return pixels[(static_cast<size_t>(y) * width + x) * channels + c]; }
  uint8_t at(int y, int x, int c = 0) const { return pixels[(static_cast<size_t>(y) * width + x) * channels + c]; }
};

// True when the build found stb_image (PNEUMO_HAVE_STB); without it read_image/write_png throw.
bool image_io_available();

// Reads PNG or JPEG as 8-bit grayscale, as cv2.imread(path, cv2.IMREAD_GRAYSCALE) does: colour becomes
// round(0.299 R + 0.587 G + 0.114 B); alpha is dropped; 16-bit PNG is scaled by round(v * 255 / 65535).
// DICOM (.dcm/.dicom, or DICOM content) goes through read_dicom (augment/dicom.h).
// Throws pneumo::Error naming the file and stb's reason (missing, unreadable, corrupt).
Image read_image(const std::string& path);
// Decodes an in-memory PNG/JPEG/DICOM the same way; `name` is used in error messages.
Image decode_image(const uint8_t* bytes, size_t size, const std::string& name);
// The whole file; throws naming it when it cannot be opened or read.
std::vector<uint8_t> read_file_bytes(const std::string& path);

// Writes an 8-bit PNG (1, 3 or 4 channels), atomically (write_file_atomic, kernels/atomic_file.h).
void write_png(const std::string& path, const Image& img);

// ImageNet normalisation of the reference (albumentations Normalize, max_pixel_value 255): the gray image is
// repeated into 3 identical channels, channel c = (p / 255 - mean[c]) / std[c] with mean (0.485, 0.456, 0.406)
// and std (0.229, 0.224, 0.225). Output float32 HWC3.
constexpr float kImagenetMean[3] = {0.485f, 0.456f, 0.406f};
constexpr float kImagenetStd[3] = {0.229f, 0.224f, 0.225f};
// Into a buffer of height * width * 3 floats.
void normalize_imagenet(const Image& gray, float* out_hwc3);
// As a CPU float32 tensor of shape [H, W, 3].
Tensor normalize_imagenet(const Image& gray);

}  // namespace pneumo::aug
