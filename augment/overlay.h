// Overlay images for a radiologist: the X-ray in gray with the mask's contour in a solid colour, its inside
// tinted (translucent fill), and lines of text (probability, area) drawn with a built-in 5x7 bitmap font.
// Convention: the result is 3-channel RGB of the X-ray's size; pixels outside the mask and the text box keep
// the X-ray's gray value in all three channels.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "augment/image.h"

namespace pneumo::aug {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

struct OverlayStyle {
  Rgb contour{255, 48, 48};
  Rgb fill{255, 48, 48};
  float fill_alpha = 0.30f;  // inside: (1 - alpha) * gray + alpha * fill, rounded
  int contour_width = 0;     // pixels; 0: max(1, min(H, W) / 512)
  Rgb text{255, 255, 0};
  int text_scale = 0;        // each font pixel as an s x s block; 0: max(1, min(H, W) / 340)
};

// Mask pixels (nonzero) within `width` pixels (4-neighbour steps) of a pixel outside the mask or of the image
// border: 255 there, 0 elsewhere.
Image mask_contour(const Image& mask, int width);

// The overlay; `lines` are drawn top-left on a dark box. The mask must be the X-ray's size (1 channel).
Image make_overlay(const Image& xray, const Image& mask, const std::vector<std::string>& lines,
                   const OverlayStyle& style = {});

// Text in the built-in font: upper-case letters, digits, space and . , : ; = % ( ) - + / _ ' and "²" (UTF-8);
// lower case is drawn as upper case, anything else as '?'. Glyphs are 5x7 in a 6x9 cell, times `scale`.
void draw_text(Image& rgb, int x, int y, const std::string& text, int scale, Rgb color);
int text_width(const std::string& text, int scale);
constexpr int kFontCellWidth = 6, kFontCellHeight = 9;

}  // namespace pneumo::aug
