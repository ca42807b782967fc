// Reading the OpenCV fixtures of tests/fixtures/augment (written by tests/augment/make_opencv_fixtures.py)
// and comparing images. Fixture format: optional "# params" line, "rows cols channels", values row-major.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "augment/image.h"

namespace pneumo::test {

struct AugFixture {
  std::string params;  // text after "# " on the first line, "" when absent
  aug::Image image;
};

inline AugFixture load_aug_fixture(const std::string& name) {
  const std::string path = std::string(PNEUMO_TEST_FIXTURES) + "/augment/" + name + ".txt";
  std::ifstream in(path);
  AugFixture f;
  if (!in) {
    ADD_FAILURE() << "missing fixture " << path << " (run tests/augment/make_opencv_fixtures.py)";
    return f;
  }
  std::string line;
  if (in.peek() == '#') {
    std::getline(in, line);
    f.params = line.size() > 2 ? line.substr(2) : "";
  }
  int h = 0, w = 0, c = 0;
  in >> h >> w >> c;
  f.image = aug::Image(h, w, c);
  for (auto& p : f.image.pixels) {
    int v = 0;
    in >> v;
    p = static_cast<uint8_t>(v);
  }
  if (!in) ADD_FAILURE() << "truncated fixture " << path;
  return f;
}

// Value of `key` in a params line such as "angle 13.7 scale 1.13".
inline double fixture_param(const AugFixture& f, const std::string& key) {
  std::istringstream is(f.params);
  std::string k, v;
  while (is >> k >> v)
    if (k == key) return std::strtod(v.c_str(), nullptr);
  ADD_FAILURE() << "fixture params '" << f.params << "' lack " << key;
  return 0;
}

struct ImageDiff {
  int max_abs = 0;
  int64_t count_differing = 0;
  std::string first;  // "(y, x, c): actual vs expected" of the first difference
};
inline ImageDiff image_diff(const aug::Image& actual, const aug::Image& expected) {
  ImageDiff d;
  if (actual.height != expected.height || actual.width != expected.width || actual.channels != expected.channels) {
    d.max_abs = 256;
    d.first = "shape " + std::to_string(actual.height) + "x" + std::to_string(actual.width) + "x" +
              std::to_string(actual.channels) + " vs " + std::to_string(expected.height) + "x" +
              std::to_string(expected.width) + "x" + std::to_string(expected.channels);
    return d;
  }
  for (size_t i = 0; i < actual.pixels.size(); ++i) {
    const int diff = std::abs(static_cast<int>(actual.pixels[i]) - static_cast<int>(expected.pixels[i]));
    if (diff == 0) continue;
    if (d.count_differing++ == 0) {
      const size_t px = i / actual.channels;
      d.first = "(" + std::to_string(px / actual.width) + ", " + std::to_string(px % actual.width) + ", " +
                std::to_string(i % actual.channels) + "): " + std::to_string(actual.pixels[i]) + " vs " +
                std::to_string(expected.pixels[i]);
    }
    d.max_abs = std::max(d.max_abs, diff);
  }
  return d;
}

#define PNEUMO_EXPECT_IMAGES_WITHIN(actual, expected, tolerance)                                          \
  do {                                                                                                   \
    ::pneumo::test::ImageDiff _d = ::pneumo::test::image_diff((actual), (expected));                     \
    EXPECT_LE(_d.max_abs, (tolerance)) << _d.count_differing << " values differ, first at " << _d.first; \
  } while (0)

}  // namespace pneumo::test
