// The augmentation pipeline of the reference (albumentations 0.3.0 semantics) as two separate steps:
// draw() turns (seed, sample index) into AugmentParams on the host with Philox, and apply_params() runs the
// CPU reference on an image and its mask; the CUDA path (augment/pipeline_cuda.h) applies the same params.
// Convention: draw k of a sample is philox_uniform_at(seed, sample_index, kAugmentStream + k) with a fixed
// k per decision (DrawSlot), so a sample's values never depend on which branches were taken before.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "augment/image.h"

namespace pneumo::aug {

enum class Photometric : uint8_t { None = 0, Gamma, BrightnessContrast, Clahe };
enum class BlurKind : uint8_t { None = 0, Box, Motion, Median };

// Every random value of one sample. Photometric and blur transforms touch the image only; Resize,
// HorizontalFlip and ShiftScaleRotate move image (bilinear) and mask (nearest) together.
struct AugmentParams {
  int out_height = 0, out_width = 0;  // Resize target (0: no resize)
  Photometric photometric = Photometric::None;
  double gamma = 1.0;                        // RandomGamma: randint(lo, hi) / 100
  double contrast_alpha = 1.0, brightness_beta = 0.0;  // RandomBrightnessContrast
  double clahe_clip = 0.0;                   // CLAHE: uniform(1, clip_limit)
  int clahe_tiles_x = 4, clahe_tiles_y = 4;
  bool clahe_on_lightness = true;            // the reference's 3-channel input: CLAHE on Lab lightness
  BlurKind blur = BlurKind::None;
  int blur_ksize = 3;
  std::vector<uint8_t> motion_kernel;        // blur_ksize^2 0/1 entries (MotionBlur only)
  bool hflip = false;
  bool affine = false;                       // ShiftScaleRotate applied
  double angle = 0, scale = 1, shift_x = 0, shift_y = 0;

  std::string describe() const;  // one line, for the preview and logs
};

// The probabilities and limits of the pipeline (defaults: the reference train pipeline).
struct PipelineConfig {
  int size = 1024;                 // Resize(size, size); <= 0 disables resizing
  bool augment = true;             // false: resize only (validation)
  // OneOf([RandomGamma(p=.9), RandomBrightnessContrast(p=.9), CLAHE(p=.9)]) with OneOf's default p = 0.5.
  double photometric_p = 0.5;
  double gamma_weight = 0.9, brightness_contrast_weight = 0.9, clahe_weight = 0.9;
  int gamma_low = 60, gamma_high = 120;
  double brightness_limit = 0.2, contrast_limit = 0.2;
  double clahe_clip_limit = 4.0;
  int clahe_tiles = 4;
  bool clahe_on_lightness = true;
  // OneOf([Blur(4, p=1), MotionBlur(4, p=1), MedianBlur(4, p=1)], p=0.5).
  double blur_p = 0.5;
  double box_weight = 1, motion_weight = 1, median_weight = 1;
  int blur_limit = 4;
  double hflip_p = 0.5;
  // ShiftScaleRotate(0.2, 0.2, 20, INTER_LINEAR, BORDER_CONSTANT, p=1).
  double affine_p = 1.0;
  double shift_limit = 0.2, scale_limit = 0.2, rotate_limit = 20;
};

// Fixed draw slots (the k of each decision).
enum DrawSlot : uint32_t {
  kSlotPhotometricGate = 0, kSlotPhotometricChoice, kSlotGamma, kSlotContrast, kSlotBrightness, kSlotClahe,
  kSlotBlurGate, kSlotBlurChoice, kSlotBlurKsize, kSlotMotionXs, kSlotMotionXe, kSlotMotionYs, kSlotMotionYe,
  kSlotHflip, kSlotAffineGate, kSlotAngle, kSlotScale, kSlotShiftX, kSlotShiftY, kNumDrawSlots
};
constexpr uint64_t kAugmentStream = 0xA06ull << 48;  // keeps augmentation draws apart from other Philox users

class Pipeline {
 public:
  explicit Pipeline(PipelineConfig config = {});
  const PipelineConfig& config() const { return config_; }

  // Host draw of every random value for sample `sample_index` (deterministic in (seed, sample_index)).
  AugmentParams draw(uint64_t seed, uint64_t sample_index) const;
  // CPU reference: draw, then apply to the 1-channel image and its mask (0/255 or 0/1, same size).
  void apply(Image& image, Image& mask, uint64_t seed, uint64_t sample_index) const;
  // Image only (no mask), e.g. for classification.
  void apply(Image& image, uint64_t seed, uint64_t sample_index) const;

 private:
  PipelineConfig config_;
};

// Applies drawn parameters in the reference order: Resize, photometric, blur, HorizontalFlip,
// ShiftScaleRotate. `mask` may be null. Normalize is not applied here (normalize_imagenet does it when the
// batch tensor is made).
void apply_params(const AugmentParams& params, Image& image, Image* mask);

// The README's training pipeline at `size` (one named preset) and the validation/test one (resize only).
Pipeline reference_train_pipeline(int size);
Pipeline validation_pipeline(int size);
// Looks a preset up by name: "reference" / "train" or "validation" / "val" / "none".
Pipeline pipeline_preset(const std::string& name, int size);

// One uniform in [0, 1) for draw slot k of a sample (Philox lane 0, 24 bits).
double augment_uniform(uint64_t seed, uint64_t sample_index, uint32_t slot);

}  // namespace pneumo::aug
