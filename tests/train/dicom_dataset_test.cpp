// Training and prediction read DICOM transparently: a folder dataset lists .dcm files and loads them through
// read_image (augment/dicom.h), and a mask PNG of the same stem pairs with it.
#include <gtest/gtest.h>

#include <filesystem>

#include "augment/dicom.h"
#include "augment/image.h"
#include "support/checkers.h"
#include "train/data_test_util.h"
#include "train/dataset.h"

namespace pneumo::train {
namespace {

TEST(DicomDataset, MaskFolderDatasetLoadsDcmImages) {
  if (!aug::dicom_available()) GTEST_SKIP() << "built without DCMTK";
  PNEUMO_REQUIRE_DATA(src, "dicom/CR-MONO1-10-chest-implicit-vr-no-preamble.dcm");
  test::TempDir dir;
  std::filesystem::create_directories(dir.file("images"));
  std::filesystem::copy_file(src, dir.file("images/cr1.dcm"));  // a temporary copy, removed with the folder
  aug::Image mask(440, 440, 1, 0);
  for (int y = 100; y < 140; ++y)
    for (int x = 50; x < 90; ++x) mask.at(y, x) = 255;
  std::filesystem::create_directories(dir.file("masks"));
  aug::write_png(dir.file("masks/cr1.png"), mask);
  MaskFolderDataset ds(dir.file("images"), dir.file("masks"));
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds.id(0), "cr1");
  const Sample s = ds.load(0);
  EXPECT_EQ(s.image.pixels, aug::read_dicom(src).image.pixels);
  EXPECT_EQ(s.mask.pixels, mask.pixels);
  EXPECT_TRUE(s.positive);
}

}  // namespace
}  // namespace pneumo::train
