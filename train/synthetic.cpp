#include "train/synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "kernels/check.h"
#include "kernels/philox.h"

namespace pneumo::train {

namespace {

// Uniform in [0, 1) from Philox(seed, index, slot).
double u(uint64_t seed, int64_t index, uint32_t slot) {
  const Philox4 r = philox4x32_10(static_cast<uint64_t>(index), 0x5E7Aull << 32 | slot, seed);
  return static_cast<double>(r.v[0] >> 8) / 16777216.0;
}

}  // namespace

Sample make_synthetic_sample(uint64_t seed, int64_t index, int size) {
  PNEUMO_CHECK(size >= 16, "synthetic data: size must be >= 16, got ", size);
  Sample s;
  s.image = aug::Image(size, size);
  s.mask = aug::Image(size, size);
  s.positive = true;
  const double n = size;
  // Lung ellipses: centre, half-axes and tilt jittered per sample; the right lung (image left) is larger.
  struct Ellipse { double cx, cy, rx, ry, angle; };
  Ellipse lungs[2];
  for (int k = 0; k < 2; ++k) {
    const uint32_t b = static_cast<uint32_t>(k) * 8;
    const double side = k == 0 ? -1 : 1;
    lungs[k].cx = n * (0.5 + side * (0.19 + 0.04 * (u(seed, index, b) - 0.5)));
    lungs[k].cy = n * (0.50 + 0.08 * (u(seed, index, b + 1) - 0.5));
    lungs[k].rx = n * (0.13 + 0.04 * u(seed, index, b + 2)) * (k == 0 ? 1.05 : 0.95);
    lungs[k].ry = n * (0.25 + 0.06 * u(seed, index, b + 3));
    lungs[k].angle = side * (0.05 + 0.15 * u(seed, index, b + 4));
  }
  const double body_rx = n * (0.42 + 0.05 * u(seed, index, 20)), body_ry = n * (0.55 + 0.05 * u(seed, index, 21));
  const double rib_freq = 2 * M_PI / (n * (0.07 + 0.02 * u(seed, index, 22))), rib_phase = 6.28 * u(seed, index, 23);
  const double tex_a = 6.28 * u(seed, index, 24), tex_b = 6.28 * u(seed, index, 25);
  const double brightness = 0.85 + 0.3 * u(seed, index, 26);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const double dx = (x + 0.5 - n / 2) / body_rx, dy = (y + 0.5 - n * 0.55) / body_ry;
      double v = dx * dx + dy * dy < 1 ? 150 : 25;  // body against the air around it
      bool in_lung = false;
      for (const Ellipse& e : lungs) {
        const double px = x + 0.5 - e.cx, py = y + 0.5 - e.cy;
        const double c = std::cos(e.angle), sn = std::sin(e.angle);
        const double qx = (c * px + sn * py) / e.rx, qy = (-sn * px + c * py) / e.ry;
        const double r2 = qx * qx + qy * qy;
        if (r2 < 1) {
          in_lung = true;
          v = 70 + 25 * r2;  // darker fields, brighter towards the edge
          v += 22 * std::max(0.0, std::sin(y * rib_freq + rib_phase + 0.8 * qx * qx));  // ribs
        }
      }
      v += 10 * std::sin(x * 0.11 + tex_a) * std::sin(y * 0.07 + tex_b);  // soft texture
      const Philox4 r = philox4x32_10(static_cast<uint64_t>(y) * size + x, static_cast<uint64_t>(index), seed ^ 0x9015Eull);
      v += 12 * ((r.v[0] >> 8) / 16777216.0 - 0.5) + 12 * ((r.v[1] >> 8) / 16777216.0 - 0.5);  // noise
      v *= brightness;
      s.image.at(y, x) = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
      s.mask.at(y, x) = in_lung ? 255 : 0;
    }
  }
  return s;
}

SyntheticDataset::SyntheticDataset(int64_t count, int size, uint64_t seed) : size_(size), seed_(seed) {
  PNEUMO_CHECK(count >= 1, "synthetic data: count must be >= 1, got ", count);
  PNEUMO_CHECK(size >= 16, "synthetic data: size must be >= 16, got ", size);
  char name[32];
  for (int64_t i = 0; i < count; ++i) {
    std::snprintf(name, sizeof name, "syn_%05lld", static_cast<long long>(i));
    ids_.emplace_back(name);
  }
}

void write_synthetic_folder(const std::string& dir, int64_t count, int size, uint64_t seed) {
  SyntheticDataset ds(count, size, seed);
  std::filesystem::create_directories(dir + "/images");
  std::filesystem::create_directories(dir + "/masks");
  for (size_t i = 0; i < ds.size(); ++i) {
    const Sample s = ds.load(i);
    aug::write_png(dir + "/images/" + ds.id(i) + ".png", s.image);
    aug::write_png(dir + "/masks/" + ds.id(i) + ".png", s.mask);
  }
}

}  // namespace pneumo::train
