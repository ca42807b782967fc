// Competition RLE: decoder and encoder against naive transcriptions of the competition's rle2mask/mask2rle
// (plus the closed final run), round trips on random masks of odd sizes, malformed input, and the real files
// (sample masks pixel for pixel, every prediction row re-encoded exactly).
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <sstream>

#include "support/checkers.h"
#include "train/data_test_util.h"
#include "train/rle.h"
#include "train/rle_csv.h"

namespace pneumo::train {
namespace {

// rle2mask of the competition (mask_functions.py), column-major: array[pos] with pos relative.
aug::Image naive_decode(const std::string& rle, int h, int w) {
  aug::Image m(h, w, 1, 0);
  std::istringstream in(rle);
  std::vector<long long> v;
  long long x;
  while (in >> x) v.push_back(x);
  if (v.size() == 1 && v[0] == -1) return m;
  long long pos = 0;
  for (size_t i = 0; i + 1 < v.size(); i += 2) {
    pos += v[i];
    for (long long k = pos; k < pos + v[i + 1]; ++k) m.at(static_cast<int>(k % h), static_cast<int>(k / h)) = 255;
    pos += v[i + 1];
  }
  return m;
}

// mask2rle of the competition, transcribed (x outer, y inner), with the final run closed.
std::string naive_encode(const aug::Image& m) {
  std::vector<long long> out;
  int last = 0;
  long long current = 0, run_start = -1, run_length = 0;
  for (int x = 0; x < m.width; ++x)
    for (int y = 0; y < m.height; ++y) {
      const int color = m.at(y, x) > 127 ? 255 : 0;
      if (color != last) {
        if (color == 255) {
          run_start = current;
          run_length = 1;
        } else {
          out.push_back(run_start);
          out.push_back(run_length);
          run_start = -1;
          run_length = 0;
          current = 0;
        }
      } else if (run_start > -1) {
        ++run_length;
      }
      last = color;
      ++current;
    }
  if (run_start > -1) {  // the closing the competition's encoder forgot
    out.push_back(run_start);
    out.push_back(run_length);
  }
  if (out.empty()) return "-1";
  std::ostringstream s;
  for (size_t i = 0; i < out.size(); ++i) s << (i ? " " : "") << out[i];
  return s.str();
}

aug::Image random_mask(int h, int w, std::mt19937_64& rng, double p_switch) {
  aug::Image m(h, w, 1, 0);
  std::bernoulli_distribution sw(p_switch);
  bool on = rng() & 1;
  for (int x = 0; x < w; ++x)
    for (int y = 0; y < h; ++y) {
      if (sw(rng)) on = !on;
      m.at(y, x) = on ? 255 : 0;
    }
  return m;
}

TEST(Rle, DecodeMatchesCompetitionDecoder) {
  std::mt19937_64 rng(test::fresh_seed());
  for (auto [h, w] : std::vector<std::pair<int, int>>{{1, 1}, {7, 5}, {13, 17}, {32, 1}, {1, 29}, {64, 48}}) {
    for (int rep = 0; rep < 20; ++rep) {
      const aug::Image m = random_mask(h, w, rng, 0.15);
      const std::string s = naive_encode(m);
      const aug::Image d = rle_decode(s, h, w);
      EXPECT_EQ(d.pixels, m.pixels) << h << "x" << w << " rle " << s;
      EXPECT_EQ(naive_decode(s, h, w).pixels, m.pixels);
    }
  }
}

TEST(Rle, EncodeMatchesCompetitionEncoderWithClosedFinalRun) {
  std::mt19937_64 rng(test::fresh_seed());
  for (auto [h, w] : std::vector<std::pair<int, int>>{{1, 1}, {3, 3}, {7, 5}, {13, 17}, {100, 3}, {70, 130}}) {
    for (int rep = 0; rep < 20; ++rep) {
      for (double p : {0.02, 0.3, 0.9}) {
        const aug::Image m = random_mask(h, w, rng, p);
        EXPECT_EQ(rle_encode(m), naive_encode(m)) << h << "x" << w;
      }
    }
  }
}

TEST(Rle, FinalRunAtTheLastPixelIsClosed) {
  aug::Image m(4, 3, 1, 0);
  m.at(3, 2) = 255;  // the last pixel in column-major order
  EXPECT_EQ(rle_encode(m), "11 1");
  m.at(2, 2) = 255;
  m.at(0, 0) = 255;
  EXPECT_EQ(rle_encode(m), "0 1 9 2");
  aug::Image full(5, 7, 1, 255);
  EXPECT_EQ(rle_encode(full), "0 35");
  EXPECT_EQ(rle_decode("0 35", 5, 7).pixels, full.pixels);
  EXPECT_EQ(rle_decode("34 1", 5, 7).at(4, 6), 255);
}

TEST(Rle, ColumnMajorOrder) {
  // Pixel k = x * h + y: k = 1 is (y=1, x=0), k = h is (y=0, x=1).
  const aug::Image m = rle_decode("1 1 2 1", 3, 4);  // k = 1 and k = 4
  EXPECT_EQ(m.at(1, 0), 255);
  EXPECT_EQ(m.at(1, 1), 255);
  int count = 0;
  for (uint8_t v : m.pixels) count += v == 255;
  EXPECT_EQ(count, 2);
}

TEST(Rle, EmptyForms) {
  for (const char* s : {"-1", " -1", "-1 ", "", "   ", " -1\r"}) {
    EXPECT_TRUE(parse_rle(s).empty()) << "'" << s << "'";
    const aug::Image m = rle_decode(s, 4, 4);
    for (uint8_t v : m.pixels) EXPECT_EQ(v, 0);
  }
  EXPECT_EQ(rle_encode(aug::Image(6, 5, 1, 0)), "-1");
  EXPECT_EQ(format_rle({}), "-1");
}

TEST(Rle, RandomRoundTripOfStrings) {
  std::mt19937_64 rng(test::fresh_seed());
  for (int rep = 0; rep < 200; ++rep) {
    const int h = 1 + static_cast<int>(rng() % 40), w = 1 + static_cast<int>(rng() % 40);
    const aug::Image m = random_mask(h, w, rng, 0.1);
    const std::string s = rle_encode(m);
    EXPECT_EQ(rle_encode(rle_decode(s, h, w)), s);
    EXPECT_EQ(format_rle(parse_rle(s)), s);
  }
}

TEST(Rle, FloatProbabilitiesThreshold) {
  std::vector<float> p = {0.1f, 0.5f, 0.4f, 0.41f, 0.9f, 0.0f};  // 3x2 row-major
  // column-major order: (0,0)=0.1 (1,0)=0.4 (2,0)=0.9 (0,1)=0.5 (1,1)=0.41 (2,1)=0.0
  EXPECT_EQ(rle_encode(p.data(), 3, 2, 0.4f), "2 3");
}

TEST(Rle, NormalizeMergesOverlapsAndTouching) {
  std::vector<RleRun> r = {{10, 5}, {2, 3}, {12, 10}, {5, 1}, {30, 1}, {31, 2}};
  std::vector<RleRun> n = normalize_runs(r);
  ASSERT_EQ(n.size(), 3u);
  EXPECT_EQ(n[0], (RleRun{2, 4}));
  EXPECT_EQ(n[1], (RleRun{10, 12}));
  EXPECT_EQ(n[2], (RleRun{30, 3}));
}

TEST(Rle, MalformedInputNamesTheContext) {
  const std::string ctx = "file 'x.csv', line 7, image IMG";
  test::expect_error_mentions([&] { parse_rle("12 3 a4 5", ctx); }, {"x.csv", "line 7", "IMG", "non-numeric", "a4"});
  test::expect_error_mentions([&] { parse_rle("12 -3", ctx); }, {"x.csv", "line 7", "IMG", "negative"});
  test::expect_error_mentions([&] { parse_rle("1 2 3", ctx); }, {"x.csv", "line 7", "IMG", "odd"});
  test::expect_error_mentions([&] { parse_rle("1.5 2", ctx); }, {"line 7", "non-numeric"});
  // rle.h: a zero length is an error (it paints nothing, so it can only come from a broken writer).
  test::expect_error_mentions([&] { parse_rle("5 0", ctx); }, {"x.csv", "IMG", "zero run length", "position 2"});
  test::expect_error_mentions([&] { parse_rle("1 2 5 0 3 1", ctx); }, {"IMG", "zero run length", "position 4"});
  test::expect_error_mentions([&] { rle_decode("2 3 8 4", 4, 4, ctx); }, {"x.csv", "line 7", "IMG", "past the end"});
  // Exactly reaching the last pixel is fine.
  EXPECT_NO_THROW(rle_decode("10 6", 4, 4, ctx));
  test::expect_error_mentions([&] { rle_decode("10 7", 4, 4, ctx); }, {"IMG", "past the end", "4x4"});
}

TEST(Rle, BatchCpuMatchesSingle) {
  std::mt19937_64 rng(test::fresh_seed());
  const int n = 5, h = 19, w = 23;
  Tensor t = Tensor::empty({n, h, w, 1}, DType::U8);
  std::vector<aug::Image> masks;
  for (int i = 0; i < n; ++i) {
    masks.push_back(random_mask(h, w, rng, 0.1));
    std::copy(masks.back().pixels.begin(), masks.back().pixels.end(), t.data<uint8_t>() + i * h * w);
  }
  const std::vector<std::string> enc = batch_encode(t, 127.0f);
  std::vector<std::vector<RleRun>> runs;
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(enc[static_cast<size_t>(i)], rle_encode(masks[static_cast<size_t>(i)]));
    runs.push_back(parse_rle(enc[static_cast<size_t>(i)]));
  }
  const Tensor dec = batch_decode(runs, h, w, Device::cpu());
  ASSERT_EQ(dec.shape(), (Shape{n, h, w}));
  for (int i = 0; i < n; ++i)
    EXPECT_TRUE(std::equal(masks[static_cast<size_t>(i)].pixels.begin(), masks[static_cast<size_t>(i)].pixels.end(),
                           dec.data<uint8_t>() + i * h * w));
  // F32 probabilities with a 0.4 threshold.
  Tensor f = Tensor::uniform({2, 9, 11}, 0.0f, 1.0f, test::fresh_seed());
  const std::vector<std::string> fe = batch_encode(f, 0.4f);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(fe[static_cast<size_t>(i)], rle_encode(f.data<float>() + i * 99, 9, 11, 0.4f));
}

// ---- real files --------------------------------------------------------------------------------------

TEST(RleRealData, SampleCsvDecodesToTheMaskJpegsAndReEncodesExactly) {
  PNEUMO_REQUIRE_DATA(dir, "siim/sample");
  const RleCsv csv = read_rle_csv(dir + "/train-rle-sample.csv");
  ASSERT_EQ(csv.size(), 10u);
  int positives = 0;
  for (const std::string& id : csv.ids()) {
    const aug::Image jpeg = aug::read_image(dir + "/masks/" + id + ".jpg");
    ASSERT_EQ(jpeg.height, 1024);
    ASSERT_EQ(jpeg.width, 1024);
    aug::Image truth = jpeg;
    for (uint8_t& v : truth.pixels) v = v > 127 ? 255 : 0;
    const aug::Image decoded = csv.mask(id, 1024, 1024);
    int64_t diff = 0;
    for (size_t i = 0; i < truth.pixels.size(); ++i) diff += truth.pixels[i] != decoded.pixels[i];
    EXPECT_EQ(diff, 0) << id << ": " << diff << " pixels differ";
    ASSERT_EQ(csv.entries(id).size(), 1u);
    EXPECT_EQ(rle_encode(decoded), csv.entries(id)[0].rle) << id;
    positives += csv.positive(id);
  }
  EXPECT_EQ(positives, 5);
}

void expect_every_row_round_trips(const std::string& path, size_t expected_rows) {
  const RleCsv csv = read_rle_csv(path);
  EXPECT_EQ(csv.size(), expected_rows);
  size_t checked = 0, positives = 0;
  for (const std::string& id : csv.ids()) {
    for (const RleEntry& e : csv.entries(id)) {
      const std::string ctx = csv.context(id, e.line);
      const aug::Image m = rle_decode(e.rle, 1024, 1024, ctx);
      ASSERT_EQ(rle_encode(m), e.rle) << ctx;
      ++checked;
      positives += !e.runs.empty();
    }
  }
  EXPECT_EQ(checked, expected_rows);
  EXPECT_GT(positives, 0u);
}

TEST(RleRealData, EveryEnsemblePredictionRowRoundTrips) {
  PNEUMO_REQUIRE_DATA(path, "siim/predictions/stage1-ensemble-5fold-0.4.csv");
  expect_every_row_round_trips(path, 1372);
}

TEST(RleRealData, EveryPseudoLabelRowRoundTrips) {
  PNEUMO_REQUIRE_DATA(path, "siim/predictions/chexpert-pseudo-masks-fold1.csv");
  expect_every_row_round_trips(path, 988);
}

}  // namespace
}  // namespace pneumo::train
