// The RLE CSV reader on every quirk of the real files (BOM, CRLF, header or none, " EncodedPixels",
// " -1", several rows per image), its errors (file, line and image named), and the writer.
#include <gtest/gtest.h>

#include "support/checkers.h"
#include "train/data_test_util.h"
#include "train/rle_csv.h"

namespace pneumo::train {
namespace {

TEST(RleCsv, BomNoHeaderCrlf) {
  const RleCsv csv = parse_rle_csv("\xEF\xBB\xBF" "a.1,-1\r\nb.2,1 2 3 1\r\n", "s.csv");
  EXPECT_FALSE(csv.had_header());
  ASSERT_EQ(csv.ids(), (std::vector<std::string>{"a.1", "b.2"}));
  EXPECT_FALSE(csv.positive("a.1"));
  EXPECT_TRUE(csv.positive("b.2"));
  EXPECT_EQ(csv.entries("b.2")[0].rle, "1 2 3 1");
  EXPECT_EQ(csv.entries("b.2")[0].line, 2);
  const std::vector<RleRun> r = csv.runs("b.2", 4, 4);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], (RleRun{1, 2}));
  EXPECT_EQ(r[1], (RleRun{6, 1}));
}

TEST(RleCsv, HeaderWithSpaceLeadingSpacesAndMergedInstances) {
  const std::string text =
      "ImageId, EncodedPixels\n"
      "img1, -1\n"
      "img2, 0 2 10 1\n"
      "\n"
      "img3, 5 3\n"
      "img2, 1 4\n";
  const RleCsv csv = parse_rle_csv(text, "train-rle.csv");
  EXPECT_TRUE(csv.had_header());
  ASSERT_EQ(csv.ids(), (std::vector<std::string>{"img1", "img2", "img3"}));
  ASSERT_EQ(csv.entries("img2").size(), 2u);
  EXPECT_EQ(csv.entries("img2")[1].line, 6);
  EXPECT_EQ(csv.entries("img1")[0].rle, "-1");
  // Union of the two instances: pixels 0,1 and 12 and 1..4 -> runs [0,5) and [12,13).
  const std::vector<RleRun> r = csv.runs("img2", 4, 4);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], (RleRun{0, 5}));
  EXPECT_EQ(r[1], (RleRun{12, 1}));
  const aug::Image m = csv.mask("img2", 4, 4);
  int count = 0;
  for (uint8_t v : m.pixels) count += v == 255;
  EXPECT_EQ(count, 6);
  EXPECT_EQ(rle_encode(m), "0 5 7 1");
}

TEST(RleCsv, QuotedHeaderAndFields) {
  const RleCsv csv = parse_rle_csv("\"ImageId\",\"EncodedPixels\"\n\"x\",\"3 1\"\n", "q.csv");
  EXPECT_TRUE(csv.had_header());
  ASSERT_EQ(csv.ids().size(), 1u);
  EXPECT_EQ(csv.entries("x")[0].runs[0], (RleRun{3, 1}));
}

TEST(RleCsv, ErrorsNameFileLineAndImage) {
  test::expect_error_mentions([] { parse_rle_csv("ImageId,EncodedPixels\nok,-1\nbad1,12 x 3 4\n", "f.csv"); },
                              {"f.csv", "line 3", "bad1", "non-numeric"});
  test::expect_error_mentions([] { parse_rle_csv("bad2,4 -2\n", "f.csv"); }, {"f.csv", "line 1", "bad2", "negative"});
  test::expect_error_mentions([] { parse_rle_csv("a,-1\r\n\r\nbad3,1 2 3\r\n", "f.csv"); },
                              {"f.csv", "line 3", "bad3", "odd"});
  test::expect_error_mentions([] { parse_rle_csv("a,-1\nno comma here\n", "f.csv"); }, {"f.csv", "line 2", "comma"});
  test::expect_error_mentions([] { parse_rle_csv("a,-1\n,1 2\n", "f.csv"); }, {"f.csv", "line 2", "empty ImageId"});
  const RleCsv csv = parse_rle_csv("ImageId,EncodedPixels\nfine,-1\nbig,10 7\nbig,24 2\n", "g.csv");
  test::expect_error_mentions([&] { csv.mask("big", 4, 4); }, {"g.csv", "line 3", "big", "past the end"});
  test::expect_error_mentions([&] { csv.runs("big", 5, 5); }, {"g.csv", "line 4", "big", "past the end"});
  test::expect_error_mentions([&] { csv.mask("absent", 4, 4); }, {"g.csv", "absent"});
  test::expect_error_mentions([] { read_rle_csv("/nonexistent/dir/train-rle.csv"); }, {"/nonexistent/dir/train-rle.csv"});
}

TEST(RleCsv, WriterRoundTrip) {
  test::TempDir dir;
  const std::string path = dir.file("sub.csv");
  write_rle_csv(path, {{"a", "1 2"}, {"b", "-1"}, {"c", ""}});
  const RleCsv csv = read_rle_csv(path);
  EXPECT_TRUE(csv.had_header());
  ASSERT_EQ(csv.ids(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(csv.entries("a")[0].rle, "1 2");
  EXPECT_EQ(csv.entries("c")[0].rle, "-1");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(RleCsvRealData, TrainSampleHasBomAndNoHeader) {
  PNEUMO_REQUIRE_DATA(path, "siim/sample/train-rle-sample.csv");
  const RleCsv csv = read_rle_csv(path);
  EXPECT_FALSE(csv.had_header());
  EXPECT_EQ(csv.ids().front(), "1.2.276.0.7230010.3.1.4.8323329.1000.1517875165.878027");
}

TEST(RleCsvRealData, SubmissionsParse) {
  PNEUMO_REQUIRE_DATA(s1, "siim/submissions/stage1_sample_submission.csv");
  PNEUMO_REQUIRE_DATA(s2, "siim/submissions/stage_2_sample_submission.csv");
  EXPECT_EQ(read_rle_csv(s1).size(), 1372u);
  EXPECT_EQ(read_rle_csv(s2).size(), 3205u);
}

}  // namespace
}  // namespace pneumo::train
