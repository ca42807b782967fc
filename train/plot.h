// Small image-drawing helpers for the training artefacts: line plots (learning curves) and segmentation
// overlays, drawn into 8-bit RGB aug::Images (written with aug::write_png). Text uses a built-in 3x5 pixel
// font (digits, A-Z, a few signs; lower case is drawn as upper case).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "augment/image.h"

namespace pneumo::train {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length; non-finite y values are skipped
  Rgb colour;
};

struct PlotPanel {
  std::string title;
  std::vector<Series> series;
  bool y_from_zero = true;  // the y axis starts at 0 (else at the data minimum)
};

void fill_rect(aug::Image& img, int x0, int y0, int x1, int y1, Rgb c);  // [x0, x1) x [y0, y1), clipped
void draw_line(aug::Image& img, double x0, double y0, double x1, double y1, Rgb c, int thickness = 1);
// Text with its top-left corner at (x, y), each font pixel scale x scale.
void draw_text(aug::Image& img, int x, int y, const std::string& text, Rgb c, int scale = 2);

// The panels side by side, each panel_width x panel_height, with axes, min/max tick labels and a legend.
aug::Image plot_panels(const std::vector<PlotPanel>& panels, int panel_width = 480, int panel_height = 320);

// RGB overlay of a gray image (1 channel): predicted mask (> 127) tinted red, ground-truth outline green.
aug::Image mask_overlay(const aug::Image& gray, const aug::Image& truth, const aug::Image& pred);
// Images (same height, 3 channels) left to right with a gap.
aug::Image tile_horizontal(const std::vector<aug::Image>& images, int gap = 4);

}  // namespace pneumo::train
