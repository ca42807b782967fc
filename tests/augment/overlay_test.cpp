// Overlay drawing (augment/overlay.h): the contour lies exactly on the mask's inner boundary, the fill is the
// stated blend, every pixel outside the mask and the text box keeps the X-ray's gray value, and the built-in
// font draws the glyphs as pictured.
#include <gtest/gtest.h>

#include <cmath>

#include "augment/overlay.h"
#include "kernels/check.h"

namespace pneumo::aug {
namespace {

Image square_mask(int h, int w, int y0, int y1, int x0, int x1) {  // [y0, y1) x [x0, x1)
  Image m(h, w, 1, 0);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) m.at(y, x) = 255;
  return m;
}

Image ramp(int h, int w) {
  Image g(h, w, 1);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) g.at(y, x) = static_cast<uint8_t>((7 * x + 13 * y) % 256);
  return g;
}

TEST(Overlay, ContourIsTheInnerBoundary) {
  const Image m = square_mask(16, 16, 3, 8, 2, 9);
  const Image c1 = mask_contour(m, 1);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x) {
      const bool inside = y >= 3 && y < 8 && x >= 2 && x < 9;
      const bool border = inside && (y == 3 || y == 7 || x == 2 || x == 8);
      EXPECT_EQ(c1.at(y, x), border ? 255 : 0) << y << "," << x;
    }
  const Image c2 = mask_contour(m, 2);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x) {
      const bool inside = y >= 3 && y < 8 && x >= 2 && x < 9;
      const bool ring = inside && (y <= 4 || y >= 6 || x <= 3 || x >= 7);
      EXPECT_EQ(c2.at(y, x), ring ? 255 : 0) << y << "," << x;
    }
  // A mask that touches the image edge has its contour along the edge.
  const Image edge = mask_contour(square_mask(8, 8, 0, 8, 0, 4), 1);
  EXPECT_EQ(edge.at(0, 1), 255);
  EXPECT_EQ(edge.at(4, 0), 255);
  EXPECT_EQ(edge.at(4, 1), 0);
  EXPECT_EQ(edge.at(4, 3), 255);
}

TEST(Overlay, ContourFillAndUntouchedOutside) {
  const Image xray = ramp(64, 80), mask = square_mask(64, 80, 20, 50, 30, 70);
  OverlayStyle style;
  style.contour_width = 1;
  const Image out = make_overlay(xray, mask, {}, style);
  ASSERT_EQ(out.channels, 3);
  ASSERT_EQ(out.height, 64);
  ASSERT_EQ(out.width, 80);
  const Image contour = mask_contour(mask, 1);
  int contour_pixels = 0;
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 80; ++x) {
      const uint8_t g = xray.at(y, x);
      if (contour.at(y, x)) {
        ++contour_pixels;
        EXPECT_EQ(out.at(y, x, 0), style.contour.r);
        EXPECT_EQ(out.at(y, x, 1), style.contour.g);
        EXPECT_EQ(out.at(y, x, 2), style.contour.b);
      } else if (mask.at(y, x)) {
        EXPECT_EQ(out.at(y, x, 0), std::lround(0.7f * g + 0.3f * 255));
        EXPECT_EQ(out.at(y, x, 1), std::lround(0.7f * g + 0.3f * 48));
        EXPECT_EQ(out.at(y, x, 2), std::lround(0.7f * g + 0.3f * 48));
      } else {
        ASSERT_EQ(out.at(y, x, 0), g) << y << "," << x;
        ASSERT_EQ(out.at(y, x, 1), g);
        ASSERT_EQ(out.at(y, x, 2), g);
      }
    }
  EXPECT_EQ(contour_pixels, 2 * 30 + 2 * 40 - 4);
}

TEST(Overlay, TextBoxOnlyChangesItsCorner) {
  const Image xray = ramp(200, 300), mask(200, 300, 1, 0);
  OverlayStyle style;
  style.text_scale = 2;
  const Image out = make_overlay(xray, mask, {"P=0.87", "AREA 12.5 MM\xC2\xB2"}, style);
  // Box: widest line (13 glyphs) + margins, two lines of 9-pixel cells, all at scale 2.
  const int box_w = 13 * kFontCellWidth * 2 + 8, box_h = 2 * kFontCellHeight * 2 + 8;
  int text_pixels = 0;
  for (int y = 0; y < 200; ++y)
    for (int x = 0; x < 300; ++x) {
      const uint8_t g = xray.at(y, x);
      if (y >= box_h || x >= box_w) {
        ASSERT_EQ(out.at(y, x, 0), g) << y << "," << x;
        ASSERT_EQ(out.at(y, x, 2), g);
      } else if (out.at(y, x, 0) == 255 && out.at(y, x, 1) == 255 && out.at(y, x, 2) == 0) {
        ++text_pixels;
      } else {
        ASSERT_EQ(out.at(y, x, 0), g / 4) << y << "," << x << " g " << int(g);  // the darkened box
      }
    }
  EXPECT_GT(text_pixels, 100);
}

TEST(Overlay, FontDrawsTheGlyphsAsPictured) {
  Image img(9, 24, 3, 0);
  draw_text(img, 0, 0, "1-", 1, Rgb{10, 20, 30});
  const char* one[7] = {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."};
  for (int r = 0; r < 7; ++r)
    for (int c = 0; c < 5; ++c) {
      EXPECT_EQ(img.at(r, c, 0), one[r][c] == '#' ? 10 : 0) << r << "," << c;
      EXPECT_EQ(img.at(r, c, 2), one[r][c] == '#' ? 30 : 0);
    }
  for (int c = 0; c < 5; ++c) EXPECT_EQ(img.at(3, kFontCellWidth + c, 1), 20);  // '-' is row 3, full width
  EXPECT_EQ(img.at(2, kFontCellWidth + 2, 1), 0);
  // Lower case draws as upper case; an unknown character as '?'; "²" is one glyph.
  Image a(9, 6, 3, 0), b(9, 6, 3, 0), q(9, 6, 3, 0), u(9, 6, 3, 0);
  draw_text(a, 0, 0, "a", 1, Rgb{1, 1, 1});
  draw_text(b, 0, 0, "A", 1, Rgb{1, 1, 1});
  draw_text(q, 0, 0, "?", 1, Rgb{1, 1, 1});
  draw_text(u, 0, 0, "\xC3\xA9", 1, Rgb{1, 1, 1});  // é
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_EQ(u.pixels, q.pixels);
  EXPECT_EQ(text_width("MM\xC2\xB2", 3), 3 * kFontCellWidth * 3);
  // Clipped at the image edge, never written outside.
  Image small(4, 4, 3, 0);
  draw_text(small, -3, -2, "88", 2, Rgb{9, 9, 9});
  EXPECT_EQ(small.pixels.size(), 48u);
}

TEST(Overlay, RejectsMismatchedInputs) {
  EXPECT_THROW(make_overlay(Image(10, 10, 1), Image(10, 11, 1), {}), Error);
  EXPECT_THROW(make_overlay(Image(10, 10, 3), Image(10, 10, 1), {}), Error);
  EXPECT_THROW(mask_contour(Image(4, 4, 1), 0), Error);
}

}  // namespace
}  // namespace pneumo::aug
