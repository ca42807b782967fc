// Overlay drawing (overlay.h). The font is this project's own 5x7 design, written as pictures ('#' = ink) so
// a reader can check each glyph; it covers what the reports print (upper case, digits, a little punctuation).
#include "augment/overlay.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/check.h"

namespace pneumo::aug {

namespace {

struct Glyph {
  char code;
  const char* rows[7];
};

constexpr char kSquared = 1;  // internal code of "²"

// clang-format off
const Glyph kFont[] = {
  {' ', {".....", ".....", ".....", ".....", ".....", ".....", "....."}},
  {'0', {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}},
  {'1', {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}},
  {'2', {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
  {'3', {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."}},
  {'4', {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
  {'5', {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
  {'6', {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}},
  {'7', {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
  {'8', {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
  {'9', {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}},
  {'A', {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
  {'B', {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."}},
  {'C', {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."}},
  {'D', {"###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."}},
  {'E', {"#####", "#....", "#....", "####.", "#....", "#....", "#####"}},
  {'F', {"#####", "#....", "#....", "####.", "#....", "#....", "#...."}},
  {'G', {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"}},
  {'H', {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
  {'I', {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
  {'J', {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."}},
  {'K', {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"}},
  {'L', {"#....", "#....", "#....", "#....", "#....", "#....", "#####"}},
  {'M', {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"}},
  {'N', {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"}},
  {'O', {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
  {'P', {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."}},
  {'Q', {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"}},
  {'R', {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"}},
  {'S', {".####", "#....", "#....", ".###.", "....#", "....#", "####."}},
  {'T', {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."}},
  {'U', {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
  {'V', {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
  {'W', {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."}},
  {'X', {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"}},
  {'Y', {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."}},
  {'Z', {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"}},
  {'.', {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}},
  {',', {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."}},
  {':', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}},
  {';', {".....", ".##..", ".##..", ".....", ".##..", "..#..", ".#..."}},
  {'=', {".....", ".....", "#####", ".....", "#####", ".....", "....."}},
  {'%', {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"}},
  {'(', {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}},
  {')', {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}},
  {'-', {".....", ".....", ".....", "#####", ".....", ".....", "....."}},
  {'+', {".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."}},
  {'/', {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."}},
  {'_', {".....", ".....", ".....", ".....", ".....", ".....", "#####"}},
  {'\'', {"..#..", "..#..", ".#...", ".....", ".....", ".....", "....."}},
  {kSquared, {".##..", "#..#.", "..#..", ".#...", "####.", ".....", "....."}},
  {'?', {".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."}},
};
// clang-format on

const Glyph& glyph_for(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  for (const Glyph& g : kFont)
    if (g.code == c) return g;
  for (const Glyph& g : kFont)
    if (g.code == '?') return g;
  return kFont[0];
}

// The text as glyph codes: UTF-8 "²" becomes kSquared; other multi-byte sequences one '?'.
std::string to_codes(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0xB2) {
      out.push_back(kSquared);
      ++i;
    } else if (c >= 0xC0) {
      out.push_back('?');  // the lead byte of another character; its continuation bytes are skipped
    }
  }
  return out;
}

void put(Image& img, int y, int x, Rgb c) {
  if (y < 0 || x < 0 || y >= img.height || x >= img.width) return;
  uint8_t* p = &img.at(y, x, 0);
  p[0] = c.r, p[1] = c.g, p[2] = c.b;
}

}  // namespace

int text_width(const std::string& text, int scale) {
  return static_cast<int>(to_codes(text).size()) * kFontCellWidth * scale;
}

void draw_text(Image& rgb, int x, int y, const std::string& text, int scale, Rgb color) {
  PNEUMO_CHECK(rgb.channels == 3, "draw_text: expected an RGB image, got ", rgb.channels, " channels");
  PNEUMO_CHECK(scale >= 1 && scale <= 64, "draw_text: scale ", scale, " out of 1..64");
  const std::string codes = to_codes(text);
  for (size_t k = 0; k < codes.size(); ++k) {
    const Glyph& g = glyph_for(codes[k]);
    const int x0 = x + static_cast<int>(k) * kFontCellWidth * scale;
    for (int r = 0; r < 7; ++r)
      for (int c = 0; c < 5; ++c)
        if (g.rows[r][c] == '#')
          for (int dy = 0; dy < scale; ++dy)
            for (int dx = 0; dx < scale; ++dx) put(rgb, y + r * scale + dy, x0 + c * scale + dx, color);
  }
}

Image mask_contour(const Image& mask, int width) {
  PNEUMO_CHECK(mask.channels == 1, "mask_contour: expected a 1-channel mask, got ", mask.channels);
  PNEUMO_CHECK(width >= 1, "mask_contour: width ", width, " must be at least 1");
  const int h = mask.height, w = mask.width;
  // Distance (in 4-neighbour steps, capped at width) from outside the mask, by `width` erosion passes.
  std::vector<uint8_t> inside(mask.pixels.size());
  for (size_t i = 0; i < inside.size(); ++i) inside[i] = mask.pixels[i] != 0;
  Image out(h, w, 1, 0);
  std::vector<uint8_t> next(inside.size());
  for (int pass = 0; pass < width; ++pass) {
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const size_t i = static_cast<size_t>(y) * w + x;
        if (!inside[i]) {
          next[i] = 0;
          continue;
        }
        const bool edge = y == 0 || x == 0 || y == h - 1 || x == w - 1 || !inside[i - w] || !inside[i + w] ||
                          !inside[i - 1] || !inside[i + 1];
        if (edge) out.pixels[i] = 255;
        next[i] = !edge;
      }
    inside.swap(next);
  }
  return out;
}

Image make_overlay(const Image& xray, const Image& mask, const std::vector<std::string>& lines, const OverlayStyle& style) {
  PNEUMO_CHECK(xray.channels == 1 && mask.channels == 1, "make_overlay: expected 1-channel X-ray and mask, got ",
               xray.channels, " and ", mask.channels);
  PNEUMO_CHECK(xray.height == mask.height && xray.width == mask.width, "make_overlay: X-ray ", xray.width, "x",
               xray.height, " and mask ", mask.width, "x", mask.height, " differ in size");
  PNEUMO_CHECK(style.fill_alpha >= 0.0f && style.fill_alpha <= 1.0f, "make_overlay: fill_alpha ", style.fill_alpha,
               " out of 0..1");
  const int shortest = std::min(xray.height, xray.width);
  const int cw = style.contour_width > 0 ? style.contour_width : std::max(1, shortest / 512);
  const int scale = style.text_scale > 0 ? style.text_scale : std::max(1, shortest / 340);
  const Image contour = mask_contour(mask, cw);
  Image out(xray.height, xray.width, 3);
  const float a = style.fill_alpha;
  auto blend = [a](uint8_t g, uint8_t f) {
    return static_cast<uint8_t>(std::lround((1.0f - a) * static_cast<float>(g) + a * static_cast<float>(f)));
  };
  const size_t n = xray.pixels.size();
  for (size_t i = 0; i < n; ++i) {
    uint8_t* p = out.pixels.data() + 3 * i;
    const uint8_t g = xray.pixels[i];
    if (contour.pixels[i]) {
      p[0] = style.contour.r, p[1] = style.contour.g, p[2] = style.contour.b;
    } else if (mask.pixels[i]) {
      p[0] = blend(g, style.fill.r), p[1] = blend(g, style.fill.g), p[2] = blend(g, style.fill.b);
    } else {
      p[0] = p[1] = p[2] = g;
    }
  }
  if (!lines.empty()) {
    // A dark box under the text (the X-ray darkened to a quarter) keeps it legible on bright bone.
    int box_w = 0;
    for (const std::string& l : lines) box_w = std::max(box_w, text_width(l, scale));
    const int margin = 2 * scale;
    const int box_h = static_cast<int>(lines.size()) * kFontCellHeight * scale + 2 * margin;
    box_w += 2 * margin;
    for (int y = 0; y < std::min(box_h, out.height); ++y)
      for (int x = 0; x < std::min(box_w, out.width); ++x)
        for (int c = 0; c < 3; ++c) out.at(y, x, c) = static_cast<uint8_t>(out.at(y, x, c) / 4);
    for (size_t l = 0; l < lines.size(); ++l)
      draw_text(out, margin, margin + static_cast<int>(l) * kFontCellHeight * scale, lines[l], scale, style.text);
  }
  return out;
}

}  // namespace pneumo::aug
