// Learning-curve panels (train/plot.h): the legend keeps clear of the curves, and a panel that does not start
// at zero spreads a curve that moves by hundredths over its height.
#include <gtest/gtest.h>

#include <algorithm>

#include "train/plot.h"

namespace pneumo::train {
namespace {

// One 420x300 panel: plot area x 60..408, y 28..270 (plot.cpp's margins).
constexpr int kW = 420, kH = 300, kRight = 408, kTop = 28, kBottom = 270;
const Rgb kGreen{44, 160, 44};

int count(const aug::Image& img, int x0, int y0, int x1, int y1, Rgb c) {
  int n = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      const uint8_t* p = &img.pixels[(static_cast<size_t>(y) * img.width + x) * 3];
      n += p[0] == c.r && p[1] == c.g && p[2] == c.b;
    }
  return n;
}

aug::Image panel(const std::vector<double>& y, bool from_zero) {
  Series s{"val dice", {}, y, kGreen};
  for (size_t i = 0; i < y.size(); ++i) s.x.push_back(static_cast<double>(i));
  return plot_panels({PlotPanel{"dice", {s}, from_zero}}, kW, kH);
}

TEST(Plot, LegendMovesOffACurveThatRunsThroughTheTopRight) {
  const Rgb text{60, 60, 60};  // the legend's text colour (also the axes', which lie outside these boxes)
  const int x0 = kRight - 100;
  // A Dice curve rising to its maximum ends in the top-right corner: the legend goes to the bottom right.
  const aug::Image rising = panel({0.929, 0.934, 0.951, 0.951, 0.953, 0.955, 0.957}, false);
  EXPECT_GT(count(rising, x0, kTop, kRight, kTop + 40, kGreen), 0) << "the curve runs through the top right";
  EXPECT_EQ(count(rising, x0, kTop, kRight, kTop + 40, text), 0) << "no legend text over it";
  EXPECT_GT(count(rising, x0, kBottom - 40, kRight, kBottom, text), 0) << "the legend is at the bottom right";
  // A falling loss curve leaves the top right free: the legend stays there.
  const aug::Image falling = panel({0.10, 0.06, 0.045, 0.04, 0.038}, true);
  EXPECT_GT(count(falling, x0, kTop, kRight, kTop + 40, text), 0);
  EXPECT_EQ(count(falling, x0, kBottom - 40, kRight, kBottom, text), 0);
}

TEST(Plot, PanelNotFromZeroSpreadsACurveOverItsHeight) {
  auto green_rows = [](const aug::Image& img) {
    int lo = kH, hi = -1;
    for (int y = kTop; y < kBottom; ++y)
      if (count(img, 61, y, 300, y + 1, kGreen) > 0) lo = std::min(lo, y), hi = std::max(hi, y);
    return hi - lo;
  };
  const std::vector<double> dice = {0.929, 0.934, 0.951, 0.951, 0.953, 0.955, 0.957};
  EXPECT_GT(green_rows(panel(dice, false)), (kBottom - kTop) * 6 / 10);  // from 0.929 to 0.957
  EXPECT_LT(green_rows(panel(dice, true)), (kBottom - kTop) / 10);       // on a 0-1 axis: a few pixels
}

}  // namespace
}  // namespace pneumo::train
