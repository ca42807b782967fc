#include "train/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "kernels/check.h"

namespace pneumo::train {

namespace {

// 3x5 glyphs, 5 rows of 3 bits (top row first, left pixel = highest bit).
uint16_t glyph(char ch) {
  auto g = [](int a, int b, int c, int d, int e) { return static_cast<uint16_t>(a << 12 | b << 9 | c << 6 | d << 3 | e); };
  if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  switch (ch) {
    case '0': return g(7, 5, 5, 5, 7);  case '1': return g(2, 6, 2, 2, 7);  case '2': return g(7, 1, 7, 4, 7);
    case '3': return g(7, 1, 7, 1, 7);  case '4': return g(5, 5, 7, 1, 1);  case '5': return g(7, 4, 7, 1, 7);
    case '6': return g(7, 4, 7, 5, 7);  case '7': return g(7, 1, 1, 1, 1);  case '8': return g(7, 5, 7, 5, 7);
    case '9': return g(7, 5, 7, 1, 7);  case '.': return g(0, 0, 0, 0, 2);  case '-': return g(0, 0, 7, 0, 0);
    case '_': return g(0, 0, 0, 0, 7);  case ':': return g(0, 2, 0, 2, 0);  case '/': return g(1, 1, 2, 4, 4);
    case '(': return g(1, 2, 2, 2, 1);  case ')': return g(4, 2, 2, 2, 4);  case '+': return g(0, 2, 7, 2, 0);
    case 'A': return g(2, 5, 7, 5, 5);  case 'B': return g(6, 5, 6, 5, 6);  case 'C': return g(3, 4, 4, 4, 3);
    case 'D': return g(6, 5, 5, 5, 6);  case 'E': return g(7, 4, 6, 4, 7);  case 'F': return g(7, 4, 6, 4, 4);
    case 'G': return g(3, 4, 5, 5, 3);  case 'H': return g(5, 5, 7, 5, 5);  case 'I': return g(7, 2, 2, 2, 7);
    case 'J': return g(1, 1, 1, 5, 2);  case 'K': return g(5, 5, 6, 5, 5);  case 'L': return g(4, 4, 4, 4, 7);
    case 'M': return g(5, 7, 7, 5, 5);  case 'N': return g(6, 5, 5, 5, 5);  case 'O': return g(2, 5, 5, 5, 2);
    case 'P': return g(6, 5, 6, 4, 4);  case 'Q': return g(2, 5, 5, 6, 3);  case 'R': return g(6, 5, 6, 5, 5);
    case 'S': return g(3, 4, 2, 1, 6);  case 'T': return g(7, 2, 2, 2, 2);  case 'U': return g(5, 5, 5, 5, 7);
    case 'V': return g(5, 5, 5, 5, 2);  case 'W': return g(5, 5, 7, 7, 5);  case 'X': return g(5, 5, 2, 5, 5);
    case 'Y': return g(5, 5, 2, 2, 2);  case 'Z': return g(7, 1, 2, 4, 7);  default: return 0;
  }
}

void put(aug::Image& img, int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  uint8_t* p = &img.at(y, x, 0);
  p[0] = c.r;
  p[1] = c.g;
  p[2] = c.b;
}

std::string tick(double v) {
  char buf[32];
  if (v != 0 && (std::fabs(v) < 1e-2 || std::fabs(v) >= 1e4)) std::snprintf(buf, sizeof buf, "%.1e", v);
  else std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace

void fill_rect(aug::Image& img, int x0, int y0, int x1, int y1, Rgb c) {
  for (int y = std::max(0, y0); y < std::min(img.height, y1); ++y)
    for (int x = std::max(0, x0); x < std::min(img.width, x1); ++x) put(img, x, y, c);
}

void draw_line(aug::Image& img, double x0, double y0, double x1, double y1, Rgb c, int thickness) {
  const double len = std::max(std::fabs(x1 - x0), std::fabs(y1 - y0));
  const int steps = std::max(1, static_cast<int>(std::ceil(len)));
  const int lo = -(thickness - 1) / 2, hi = thickness / 2;
  for (int i = 0; i <= steps; ++i) {
    const double t = static_cast<double>(i) / steps;
    const int x = static_cast<int>(std::lround(x0 + (x1 - x0) * t)), y = static_cast<int>(std::lround(y0 + (y1 - y0) * t));
    for (int dy = lo; dy <= hi; ++dy)
      for (int dx = lo; dx <= hi; ++dx) put(img, x + dx, y + dy, c);
  }
}

void draw_text(aug::Image& img, int x, int y, const std::string& text, Rgb c, int scale) {
  for (size_t k = 0; k < text.size(); ++k) {
    const uint16_t g = glyph(text[k]);
    const int ox = x + static_cast<int>(k) * 4 * scale;
    for (int row = 0; row < 5; ++row)
      for (int col = 0; col < 3; ++col)
        if (g >> ((4 - row) * 3 + (2 - col)) & 1)
          fill_rect(img, ox + col * scale, y + row * scale, ox + (col + 1) * scale, y + (row + 1) * scale, c);
  }
}

aug::Image plot_panels(const std::vector<PlotPanel>& panels, int panel_width, int panel_height) {
  PNEUMO_CHECK(!panels.empty() && panel_width >= 120 && panel_height >= 100, "plot_panels: bad layout");
  aug::Image img(panel_height, panel_width * static_cast<int>(panels.size()), 3, 255);
  const Rgb axis{60, 60, 60}, grid{225, 225, 225};
  for (size_t p = 0; p < panels.size(); ++p) {
    const PlotPanel& panel = panels[p];
    const int ox = static_cast<int>(p) * panel_width;
    const int left = ox + 60, right = ox + panel_width - 12, top = 28, bottom = panel_height - 30;
    double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
    for (const Series& s : panel.series)
      for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
        if (!std::isfinite(s.y[i])) continue;
        xmin = std::min(xmin, s.x[i]);
        xmax = std::max(xmax, s.x[i]);
        ymin = std::min(ymin, s.y[i]);
        ymax = std::max(ymax, s.y[i]);
      }
    if (xmin > xmax) xmin = 0, xmax = 1, ymin = 0, ymax = 1;
    if (panel.y_from_zero) ymin = std::min(0.0, ymin);
    if (xmax - xmin < 1e-12) xmax = xmin + 1;
    if (ymax - ymin < 1e-12) ymax = ymin + 1;
    const double span = ymax - ymin;
    ymax += span * 0.05;
    if (!panel.y_from_zero) ymin -= span * 0.05;
    auto px = [&](double x) { return left + (x - xmin) / (xmax - xmin) * (right - left); };
    auto py = [&](double y) { return bottom - (y - ymin) / (ymax - ymin) * (bottom - top); };
    for (int k = 1; k < 4; ++k) draw_line(img, left, top + (bottom - top) * k / 4.0, right, top + (bottom - top) * k / 4.0, grid);
    draw_line(img, left, top, left, bottom, axis);
    draw_line(img, left, bottom, right, bottom, axis);
    draw_text(img, ox + 4, top - 2, tick(ymax), axis);
    draw_text(img, ox + 4, bottom - 10, tick(ymin), axis);
    draw_text(img, left, bottom + 8, tick(xmin), axis);
    const std::string xm = tick(xmax);
    draw_text(img, right - static_cast<int>(xm.size()) * 8, bottom + 8, xm, axis);
    draw_text(img, left, 6, panel.title, axis);
    // The legend goes top right unless the curves run through that corner (a Dice near its maximum did):
    // then bottom right, or whichever corner fewer curve points fall in.
    size_t name_len = 0;
    for (const Series& s : panel.series) name_len = std::max(name_len, s.name.size());
    const int legend_w = 8 * static_cast<int>(name_len) + 26, legend_h = 14 * static_cast<int>(panel.series.size()) + 4;
    auto points_under = [&](int y0) {
      int hits = 0;
      for (const Series& s : panel.series)
        for (size_t i = 0; i + 1 < s.x.size() && i + 1 < s.y.size(); ++i) {
          if (!std::isfinite(s.y[i]) || !std::isfinite(s.y[i + 1])) continue;
          for (int t = 0; t <= 32; ++t) {  // samples along the segment
            const double cx = px(s.x[i] + (s.x[i + 1] - s.x[i]) * t / 32.0);
            const double cy = py(s.y[i] + (s.y[i + 1] - s.y[i]) * t / 32.0);
            hits += cx >= right - legend_w - 4 && cx <= right + 4 && cy >= y0 - 4 && cy <= y0 + legend_h + 4;
          }
        }
      return hits;
    };
    const int top_y = top + 6, bottom_y = bottom - legend_h - 4;
    int legend_y = points_under(top_y) <= points_under(bottom_y) ? top_y : bottom_y;
    for (const Series& s : panel.series) {
      bool have_prev = false;
      double lx = 0, ly = 0;
      for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
        if (!std::isfinite(s.y[i])) { have_prev = false; continue; }
        const double cx = px(s.x[i]), cy = py(s.y[i]);
        if (have_prev) draw_line(img, lx, ly, cx, cy, s.colour, 2);
        fill_rect(img, static_cast<int>(cx) - 2, static_cast<int>(cy) - 2, static_cast<int>(cx) + 3, static_cast<int>(cy) + 3, s.colour);
        lx = cx, ly = cy, have_prev = true;
      }
      const int lx0 = right - 8 * static_cast<int>(s.name.size()) - 22;
      fill_rect(img, lx0, legend_y + 2, lx0 + 14, legend_y + 8, s.colour);
      draw_text(img, lx0 + 18, legend_y, s.name, axis);
      legend_y += 14;
    }
  }
  return img;
}

aug::Image mask_overlay(const aug::Image& gray, const aug::Image& truth, const aug::Image& pred) {
  PNEUMO_CHECK(gray.channels == 1 && truth.height == gray.height && truth.width == gray.width &&
                   pred.height == gray.height && pred.width == gray.width,
               "mask_overlay: image, truth and prediction must be 1-channel images of one size");
  aug::Image out(gray.height, gray.width, 3);
  for (int y = 0; y < gray.height; ++y)
    for (int x = 0; x < gray.width; ++x) {
      const int v = gray.at(y, x);
      uint8_t* p = &out.at(y, x, 0);
      if (pred.at(y, x) > 127) {  // prediction: 45% red tint
        p[0] = static_cast<uint8_t>(v * 0.55 + 255 * 0.45);
        p[1] = static_cast<uint8_t>(v * 0.55);
        p[2] = static_cast<uint8_t>(v * 0.55);
      } else {
        p[0] = p[1] = p[2] = static_cast<uint8_t>(v);
      }
      const bool in = truth.at(y, x) > 127;
      bool edge = false;
      if (in)
        for (int d = 0; d < 4 && !edge; ++d) {
          const int yy = y + (d == 0) - (d == 1), xx = x + (d == 2) - (d == 3);
          edge = yy < 0 || xx < 0 || yy >= gray.height || xx >= gray.width || truth.at(yy, xx) <= 127;
        }
      if (edge) p[0] = 0, p[1] = 255, p[2] = 0;  // ground truth outline
    }
  return out;
}

aug::Image tile_horizontal(const std::vector<aug::Image>& images, int gap) {
  PNEUMO_CHECK(!images.empty(), "tile_horizontal: no images");
  int w = 0;
  const int h = images[0].height;
  for (const aug::Image& im : images) {
    PNEUMO_CHECK(im.height == h && im.channels == 3, "tile_horizontal: images must be RGB of one height");
    w += im.width + gap;
  }
  aug::Image out(h, w - gap, 3, 255);
  int ox = 0;
  for (const aug::Image& im : images) {
    for (int y = 0; y < h; ++y) std::copy(im.row(y), im.row(y) + im.width * 3, out.row(y) + ox * 3);
    ox += im.width + gap;
  }
  return out;
}

}  // namespace pneumo::train
