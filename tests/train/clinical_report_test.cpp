// Clinical outputs and the report (train/clinical_report.h): the files written for a PNG and a DICOM input,
// the area in mm² from the DICOM's pixel spacing, and the CSV/JSON content field by field.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "augment/dicom.h"
#include "augment/image.h"
#include "kernels/check.h"
#include "support/checkers.h"
#include "train/clinical_report.h"
#include "train/data_test_util.h"

namespace pneumo::train {
namespace {

namespace fs = std::filesystem;

aug::Image block_mask(int h, int w, int y0, int y1, int x0, int x1) {
  aug::Image m(h, w, 1, 0);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) m.at(y, x) = 1;  // any nonzero value counts
  return m;
}

TEST(ClinicalReport, PngInputWritesMaskAndOverlayButNoSeg) {
  if (!aug::image_io_available()) GTEST_SKIP() << "built without stb_image";
  test::TempDir dir;
  aug::Image xray(40, 50, 1, 90);
  const std::string in = dir.file("case,7.png");  // a comma, to exercise CSV quoting
  aug::write_png(in, xray);
  ClinicalOutputOptions o;
  o.out_dir = dir.file("out");
  const ClinicalResult r = write_clinical_outputs(in, xray, block_mask(40, 50, 5, 15, 10, 30), 0.25, o);
  EXPECT_EQ(r.id, "case,7");
  EXPECT_EQ(r.area_px, 200);
  EXPECT_FALSE(r.has_area_mm2());
  EXPECT_TRUE(r.dicom_seg.empty());
  aug::Image expected_mask = block_mask(40, 50, 5, 15, 10, 30);
  for (uint8_t& v : expected_mask.pixels) v = v ? 255 : 0;
  EXPECT_EQ(aug::read_image(r.mask_png).pixels, expected_mask.pixels);
  EXPECT_TRUE(fs::exists(r.overlay_png));

  write_report_csv(dir.file("report.csv"), {r});
  const std::string csv = test::read_bytes(dir.file("report.csv"));
  const std::string expected_row = "\"" + in + "\",\"case,7\",,,0.250000,200,,,,,\"" + r.mask_png + "\",\"" +
                                   r.overlay_png + "\",\n";
  EXPECT_EQ(csv,
            "image,id,study_instance_uid,sop_instance_uid,probability,area_px,area_mm2,row_spacing_mm,"
            "column_spacing_mm,spacing_source,mask_png,overlay_png,dicom_seg\n" + expected_row);
  write_report_json(dir.file("report.json"), {r});
  const nlohmann::json j = nlohmann::json::parse(test::read_bytes(dir.file("report.json")));
  ASSERT_EQ(j["images"].size(), 1u);
  EXPECT_EQ(j["images"][0]["id"], "case,7");
  EXPECT_EQ(j["images"][0]["area_px"], 200);
  EXPECT_TRUE(j["images"][0]["area_mm2"].is_null());
  EXPECT_DOUBLE_EQ(j["images"][0]["probability"].get<double>(), 0.25);
}

TEST(ClinicalReport, DicomInputGivesAreaInSquareMillimetresAndASeg) {
  if (!aug::dicom_available()) GTEST_SKIP() << "built without DCMTK";
  PNEUMO_REQUIRE_DATA(path, "dicom/siim-stage1-test-jpeg-baseline.dcm");
  test::TempDir dir;
  const aug::Image xray = aug::read_image(path);
  ClinicalOutputOptions o;
  o.out_dir = dir.file("out");
  const ClinicalResult r = write_clinical_outputs(path, xray, block_mask(1024, 1024, 100, 200, 300, 350), 0.9, o);
  EXPECT_EQ(r.area_px, 5000);
  ASSERT_TRUE(r.has_area_mm2());
  EXPECT_DOUBLE_EQ(r.area_mm2(), 5000 * 0.168 * 0.168);  // 141.12 mm²
  EXPECT_EQ(r.spacing_source, "PixelSpacing");
  EXPECT_TRUE(fs::exists(r.dicom_seg));
  EXPECT_EQ(overlay_lines(r)[1], "AREA 141.1 MM\xC2\xB2 (5000 PX)");
  EXPECT_EQ(overlay_lines(r)[0], "PNEUMOTHORAX P=0.90");

  write_report_csv(dir.file("r.csv"), {r});
  const std::string csv = test::read_bytes(dir.file("r.csv"));
  EXPECT_NE(csv.find(path + ",siim-stage1-test-jpeg-baseline,1.2.276.0.7230010.3.1.2.8323329.6904.1517875201.850818,"
                     "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819,0.900000,5000,141.120,0.168,0.168,"
                     "PixelSpacing,"),
            std::string::npos)
      << csv;
  write_report_json(dir.file("r.json"), {r});
  const nlohmann::json j = nlohmann::json::parse(test::read_bytes(dir.file("r.json")))["images"][0];
  EXPECT_NEAR(j["area_mm2"].get<double>(), 141.12, 1e-9);
  EXPECT_DOUBLE_EQ(j["pixel_spacing_mm"][0].get<double>(), 0.168);
  EXPECT_EQ(j["dicom_seg"], r.dicom_seg);
  EXPECT_EQ(j["study_instance_uid"], "1.2.276.0.7230010.3.1.2.8323329.6904.1517875201.850818");
}

TEST(ClinicalReport, BadArgumentsAreErrors) {
  test::TempDir dir;
  ClinicalOutputOptions o;
  o.out_dir = dir.file("out");
  const aug::Image x(8, 8, 1, 0);
  test::expect_error_mentions([&] { write_clinical_outputs("a.png", x, x, 1.5, o); }, {"a.png", "probability"});
  test::expect_error_mentions([&] { write_clinical_outputs("a.png", x, aug::Image(8, 9, 1), 0.5, o); }, {"a.png", "mask"});
}

}  // namespace
}  // namespace pneumo::train
