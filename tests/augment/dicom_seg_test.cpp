// DICOM SEG (augment/dicom_seg.h): written over the real SIIM and CR files, read back through DCMTK: it is a
// Segmentation Storage object in the source's study, in a new series, referencing the source series and SOP
// instance, with one frame whose pixels equal the mask; bad inputs give errors naming the file.
#include <gtest/gtest.h>

#include "augment/dicom.h"
#include "augment/dicom_seg.h"
#include "kernels/check.h"
#include "support/checkers.h"
#include "train/data_test_util.h"

namespace pneumo::aug {
namespace {

Image disc_mask(int h, int w, int cy, int cx, int r) {
  Image m(h, w, 1, 0);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) m.at(y, x) = (y - cy) * (y - cy) + (x - cx) * (x - cx) <= r * r ? 255 : 0;
  return m;
}

void round_trip(const std::string& source_path, int cy, int cx, int r) {
  const DicomImage src = read_dicom(source_path);
  const Image mask = disc_mask(src.image.height, src.image.width, cy, cx, r);
  test::TempDir dir;
  const std::string out = dir.file("out.seg.dcm");
  write_dicom_seg(source_path, mask, out);
  const DicomSegInfo seg = read_dicom_seg(out);
  EXPECT_EQ(seg.sop_class_uid, "1.2.840.10008.5.1.4.1.1.66.4");  // Segmentation Storage
  EXPECT_EQ(seg.segmentation_type, "BINARY");
  EXPECT_EQ(seg.study_instance_uid, src.study_instance_uid);
  EXPECT_NE(seg.series_instance_uid, src.series_instance_uid);
  EXPECT_NE(seg.sop_instance_uid, src.sop_instance_uid);
  EXPECT_EQ(seg.referenced_series_uid, src.series_instance_uid);
  EXPECT_EQ(seg.referenced_sop_instance_uid, src.sop_instance_uid);
  EXPECT_EQ(seg.referenced_sop_class_uid, src.sop_class_uid);
  EXPECT_EQ(seg.segment_label, "Pneumothorax");
  EXPECT_EQ(seg.frames, 1u);
  EXPECT_EQ(seg.segments, 1u);
  EXPECT_EQ(seg.rows, src.image.height);
  EXPECT_EQ(seg.columns, src.image.width);
  ASSERT_EQ(seg.frame.pixels.size(), mask.pixels.size());
  EXPECT_EQ(seg.frame.pixels, mask.pixels);
}

TEST(DicomSeg, RoundTripOverTheSiimImage) {
  if (!dicom_available()) GTEST_SKIP() << "built without DCMTK: DICOM SEG test skipped";
  PNEUMO_REQUIRE_DATA(path, "dicom/siim-stage1-test-jpeg-baseline.dcm");
  round_trip(path, 300, 260, 90);
}

TEST(DicomSeg, RoundTripOverTheImplicitVrFileWithoutMetaHeader) {
  if (!dicom_available()) GTEST_SKIP() << "built without DCMTK: DICOM SEG test skipped";
  PNEUMO_REQUIRE_DATA(path, "dicom/CR-MONO1-10-chest-implicit-vr-no-preamble.dcm");
  round_trip(path, 100, 333, 41);  // odd sizes: 440 x 440 bits do not end on a row boundary of bytes
}

TEST(DicomSeg, BadInputsNameTheFile) {
  if (!dicom_available()) {
    test::expect_error_mentions([] { write_dicom_seg("a.dcm", Image(2, 2, 1), "o.dcm"); }, {"o.dcm", "DCMTK"});
    return;
  }
  PNEUMO_REQUIRE_DATA(path, "dicom/siim-stage1-test-jpeg-baseline.dcm");
  test::TempDir dir;
  test::expect_error_mentions([&] { write_dicom_seg(path, Image(512, 512, 1), dir.file("o.dcm")); },
                              {"o.dcm", "512x512", "1024x1024"});
  test::write_text(dir.file("fake.dcm"), std::string(300, 'x'));
  test::expect_error_mentions([&] { write_dicom_seg(dir.file("fake.dcm"), Image(2, 2, 1), dir.file("o.dcm")); },
                              {"fake.dcm"});
  test::expect_error_mentions([&] { read_dicom_seg(dir.file("fake.dcm")); }, {"fake.dcm"});
  EXPECT_FALSE(std::filesystem::exists(dir.file("o.dcm")));
}

}  // namespace
}  // namespace pneumo::aug
