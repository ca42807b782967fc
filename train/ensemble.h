// Turning probabilities into masks, and averaging models' probability folders.
//  - MaskRule: a plain per-pixel threshold (the reference: p > 0.4) or the 1st place's "triplet" (top
//    threshold, minimum area, bottom threshold): the mask is empty when fewer than min_area pixels have
//    p > top, otherwise it is p > bottom.
//  - Probability folders: one 8-bit PNG per image, <stem>.png, value round(p * 255) (pneumo predict's output).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "augment/image.h"

namespace pneumo::train {

struct MaskRule {
  bool triplet = false;
  double threshold = 0.4;              // plain rule
  double top = 0.75, bottom = 0.3;     // triplet rule
  int64_t min_area = 2000;
  // "0.4" -> plain; "top,min_area,bottom" (e.g. "0.75,2000,0.3") -> triplet. Errors name the text.
  static MaskRule parse(const std::string& text);
  std::string str() const;
};

// 0/255 mask of a float probability map (row-major h x w).
aug::Image apply_mask_rule(const float* p, int height, int width, const MaskRule& rule);
// The same on an 8-bit probability image (p = value / 255).
aug::Image apply_mask_rule(const aug::Image& prob8, const MaskRule& rule);

// 8-bit probability PNG value of p in [0, 1]: round(p * 255), clamped.
uint8_t probability_to_u8(float p);

// The images (stems) of a probability folder: every .png, sorted. Throws when the folder is missing/empty.
std::vector<std::string> probability_stems(const std::string& dir);

// Mean of several folders' probability images of one stem, as floats in [0, 1] (row-major). Every folder must
// hold the stem with the same size; errors name the folder and the file. `weights` empty: equal weights.
std::vector<float> mean_probability(const std::vector<std::string>& dirs, const std::string& stem, int* height,
                                    int* width, const std::vector<double>& weights = {});

}  // namespace pneumo::train
