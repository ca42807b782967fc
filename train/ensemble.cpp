#include "train/ensemble.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "kernels/check.h"

namespace pneumo::train {

namespace fs = std::filesystem;

MaskRule MaskRule::parse(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) parts.push_back(item);
  auto number = [&](const std::string& s) {
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    PNEUMO_CHECK(!s.empty() && end && *end == 0 && std::isfinite(v), "mask rule '", text, "': '", s,
                 "' is not a number");
    return v;
  };
  MaskRule r;
  if (parts.size() == 1) {
    r.threshold = number(parts[0]);
    PNEUMO_CHECK(r.threshold >= 0 && r.threshold < 1, "mask rule '", text, "': the threshold must be in [0, 1)");
    return r;
  }
  PNEUMO_CHECK(parts.size() == 3, "mask rule '", text,
               "': give a threshold (0.4) or a triplet top,min_area,bottom (0.75,2000,0.3)");
  r.triplet = true;
  r.top = number(parts[0]);
  const double area = number(parts[1]);
  r.bottom = number(parts[2]);
  PNEUMO_CHECK(r.top >= 0 && r.top < 1 && r.bottom >= 0 && r.bottom < 1 && area >= 0 && area == std::floor(area),
               "mask rule '", text, "': thresholds must be in [0, 1) and the area a whole number of pixels");
  r.min_area = static_cast<int64_t>(area);
  return r;
}

std::string MaskRule::str() const {
  char buf[96];
  if (triplet)
    std::snprintf(buf, sizeof(buf), "triplet top %.4g, min area %lld, bottom %.4g", top,
                  static_cast<long long>(min_area), bottom);
  else
    std::snprintf(buf, sizeof(buf), "p > %.4g", threshold);
  return buf;
}

aug::Image apply_mask_rule(const float* p, int height, int width, const MaskRule& rule) {
  aug::Image m(height, width, 1, 0);
  const size_t n = m.size();
  float thr = static_cast<float>(rule.threshold);
  if (rule.triplet) {
    int64_t above = 0;
    const float top = static_cast<float>(rule.top);
    for (size_t i = 0; i < n; ++i) above += p[i] > top;
    if (above < rule.min_area) return m;
    thr = static_cast<float>(rule.bottom);
  }
  for (size_t i = 0; i < n; ++i) m.pixels[i] = p[i] > thr ? 255 : 0;
  return m;
}

aug::Image apply_mask_rule(const aug::Image& prob8, const MaskRule& rule) {
  PNEUMO_CHECK(prob8.channels == 1, "apply_mask_rule: probability images have one channel");
  std::vector<float> p(prob8.size());
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<float>(prob8.pixels[i]) / 255.0f;
  return apply_mask_rule(p.data(), prob8.height, prob8.width, rule);
}

uint8_t probability_to_u8(float p) {
  const float v = std::nearbyint(std::clamp(p, 0.0f, 1.0f) * 255.0f);
  return static_cast<uint8_t>(v);
}

std::vector<std::string> probability_stems(const std::string& dir) {
  PNEUMO_CHECK(fs::is_directory(dir), "probability folder '", dir, "' does not exist");
  std::vector<std::string> stems;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".png") stems.push_back(e.path().stem().string());
  std::sort(stems.begin(), stems.end());
  PNEUMO_CHECK(!stems.empty(), "probability folder '", dir, "' holds no .png files");
  return stems;
}

std::vector<float> mean_probability(const std::vector<std::string>& dirs, const std::string& stem, int* height,
                                    int* width, const std::vector<double>& weights) {
  PNEUMO_CHECK(!dirs.empty(), "no probability folders");
  PNEUMO_CHECK(weights.empty() || weights.size() == dirs.size(), "", weights.size(), " weights for ",
               dirs.size(), " folders");
  double total = 0;
  for (size_t k = 0; k < dirs.size(); ++k) total += weights.empty() ? 1.0 : weights[k];
  PNEUMO_CHECK(total > 0, "the weights sum to ", total);
  std::vector<double> sum;
  int h = 0, w = 0;
  for (size_t k = 0; k < dirs.size(); ++k) {
    const std::string path = dirs[k] + "/" + stem + ".png";
    PNEUMO_CHECK(fs::is_regular_file(path), "'", path, "' is missing (every folder needs every image)");
    const aug::Image im = aug::read_image(path);
    if (k == 0) {
      h = im.height;
      w = im.width;
      sum.assign(im.size(), 0.0);
    }
    PNEUMO_CHECK(im.height == h && im.width == w, "'", path, "' is ", im.height, "x", im.width, ", '",
                 dirs[0], "/", stem, ".png' ", h, "x", w);
    const double wk = (weights.empty() ? 1.0 : weights[k]) / (255.0 * total);
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += wk * im.pixels[i];
  }
  *height = h;
  *width = w;
  return std::vector<float>(sum.begin(), sum.end());
}

}  // namespace pneumo::train
