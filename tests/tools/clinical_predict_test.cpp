// `pneumo predict --clinical DIR` as a user runs it: over a PNG and a small DICOM built here (with a pixel
// spacing and UIDs), a tiny network's outputs become per image a mask PNG, an overlay PNG, a DICOM SEG for the
// DICOM input, and report.csv/json. The files agree with each other: the mask's pixel count is the report's
// area, the area in mm² is pixels x row x column spacing, the SEG references the source and holds the mask.
// When Debian's dicom3tools is installed, dciodvfy checks the SEG against the standard's IOD (skipped
// otherwise). A DICOM of several frames is refused with the frame count.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "augment/dicom.h"
#include "augment/dicom_seg.h"
#include "augment/image.h"
#include "nn/checkpoint.h"
#include "nn/models/registry.h"
#include "train/data_test_util.h"

#if defined(PNEUMO_HAVE_DCMTK) && PNEUMO_HAVE_DCMTK
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcuid.h"
#endif

namespace pneumo {
namespace {

namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string out, err;
};

Result sh(const std::string& cmd, const test::TempDir& dir) {
  const std::string out = dir.file(".stdout"), err = dir.file(".stderr");
  const int status = std::system(("cd '" + dir.path() + "' && " + cmd + " >'" + out + "' 2>'" + err + "'").c_str());
  Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = test::read_bytes(out);
  r.err = test::read_bytes(err);
  return r;
}

Result pneumo(const std::string& args, const test::TempDir& dir) {
  return sh("'" PNEUMO_BINARY "' " + args, dir);
}

// A chest-like 8-bit gradient, so the overlay has something to draw on.
aug::Image gradient(int h, int w) {
  aug::Image im(h, w, 1);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) im.at(y, x) = static_cast<uint8_t>((x * 3 + y * 2) % 256);
  return im;
}

#if defined(PNEUMO_HAVE_DCMTK) && PNEUMO_HAVE_DCMTK
// An 8-bit MONOCHROME2 CR image with a pixel spacing (rows 0.2 mm apart, columns 0.25 mm) and `frames` frames.
void write_cr(const std::string& path, int h, int w, int frames = 1) {
  DcmFileFormat ff;
  DcmDataset& ds = *ff.getDataset();
  ds.putAndInsertString(DCM_SOPClassUID, UID_ComputedRadiographyImageStorage);
  ds.putAndInsertString(DCM_SOPInstanceUID, "1.2.826.0.1.3680043.2.1125.7.1");
  ds.putAndInsertString(DCM_StudyInstanceUID, "1.2.826.0.1.3680043.2.1125.7.2");
  ds.putAndInsertString(DCM_SeriesInstanceUID, "1.2.826.0.1.3680043.2.1125.7.3");
  ds.putAndInsertString(DCM_PatientID, "TEST-1");
  ds.putAndInsertString(DCM_PatientName, "Test^Patient");
  ds.putAndInsertString(DCM_Modality, "CR");
  ds.putAndInsertString(DCM_StudyDate, "20261207");
  ds.putAndInsertString(DCM_BodyPartExamined, "CHEST");
  ds.putAndInsertString(DCM_PixelSpacing, "0.2\\0.25");
  ds.putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  ds.putAndInsertUint16(DCM_Rows, static_cast<Uint16>(h));
  ds.putAndInsertUint16(DCM_Columns, static_cast<Uint16>(w));
  ds.putAndInsertUint16(DCM_SamplesPerPixel, 1);
  ds.putAndInsertUint16(DCM_BitsAllocated, 8);
  ds.putAndInsertUint16(DCM_BitsStored, 8);
  ds.putAndInsertUint16(DCM_HighBit, 7);
  ds.putAndInsertUint16(DCM_PixelRepresentation, 0);
  if (frames > 1) ds.putAndInsertString(DCM_NumberOfFrames, std::to_string(frames).c_str());
  std::vector<Uint8> px;
  for (int f = 0; f < frames; ++f) {
    const aug::Image g = gradient(h, w);
    px.insert(px.end(), g.pixels.begin(), g.pixels.end());
  }
  ds.putAndInsertUint8Array(DCM_PixelData, px.data(), static_cast<unsigned long>(px.size()));
  const OFCondition c = ff.saveFile(path.c_str(), EXS_LittleEndianExplicit);
  ASSERT_TRUE(c.good()) << c.text();
}
#endif

int64_t count_on(const aug::Image& m) {
  int64_t n = 0;
  for (uint8_t v : m.pixels) n += v != 0;
  return n;
}

}  // namespace

TEST(CliClinical, PredictWritesMaskOverlaySegAndTheReport) {
#if !(defined(PNEUMO_HAVE_DCMTK) && PNEUMO_HAVE_DCMTK)
  GTEST_SKIP() << "built without DCMTK: the DICOM half of this test needs it";
#else
  test::TempDir dir;
  fs::create_directories(dir.file("in"));
  write_cr(dir.file("in/chest.dcm"), 64, 96);
  aug::write_png(dir.file("in/plain.png"), gradient(64, 64));
  auto model = nn::models::create_model("tiny_unet_se");
  nn::save_state(*model, dir.file("w.safetensors"), {{"model", "tiny_unet_se"}});

  // --mask-rule 0: every pixel is in the mask (p > 0), so the areas are known exactly.
  const Result r = pneumo("predict --model tiny_unet_se --weights w.safetensors --images in --out probs "
                          "--clinical clinical --mask-rule 0 --batch 1 --device cpu --quiet",
                          dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("DICOM SEG"), std::string::npos) << r.out;
  for (const char* f : {"probs/chest.png", "probs/plain.png", "clinical/chest.mask.png", "clinical/chest.overlay.png",
                        "clinical/chest.seg.dcm", "clinical/plain.mask.png", "clinical/plain.overlay.png",
                        "clinical/report.csv", "clinical/report.json"})
    EXPECT_TRUE(fs::exists(dir.file(f))) << f;
  EXPECT_FALSE(fs::exists(dir.file("clinical/plain.seg.dcm")));  // no SEG for a PNG input

  const nlohmann::json j = nlohmann::json::parse(test::read_bytes(dir.file("clinical/report.json")));
  ASSERT_EQ(j["images"].size(), 2u);
  for (const auto& row : j["images"]) {
    const aug::Image mask = aug::read_image(row["mask_png"].get<std::string>().insert(0, dir.path() + "/"));
    const std::string overlay_path = dir.path() + "/" + row["overlay_png"].get<std::string>();
    const aug::Image overlay = aug::read_image(overlay_path);  // (read as gray)
    EXPECT_EQ(test::read_bytes(overlay_path).at(25), 2) << "the overlay PNG is not RGB (IHDR colour type)";
    EXPECT_EQ(overlay.height, mask.height);
    EXPECT_EQ(overlay.width, mask.width);
    EXPECT_EQ(row["area_px"].get<int64_t>(), count_on(mask));
    EXPECT_EQ(row["area_px"].get<int64_t>(), int64_t{mask.height} * mask.width);
    const double p = row["probability"].get<double>();
    EXPECT_GT(p, 0.0);
    EXPECT_LE(p, 1.0);
    if (row["id"] == "chest") {
      EXPECT_EQ(mask.height, 64);
      EXPECT_EQ(mask.width, 96);
      EXPECT_NEAR(row["area_mm2"].get<double>(), 64 * 96 * 0.2 * 0.25, 1e-6);
      EXPECT_EQ(row["study_instance_uid"], "1.2.826.0.1.3680043.2.1125.7.2");
      EXPECT_EQ(row["sop_instance_uid"], "1.2.826.0.1.3680043.2.1125.7.1");
      const aug::DicomSegInfo seg = aug::read_dicom_seg(dir.path() + "/" + row["dicom_seg"].get<std::string>());
      EXPECT_EQ(seg.study_instance_uid, "1.2.826.0.1.3680043.2.1125.7.2");
      EXPECT_EQ(seg.referenced_series_uid, "1.2.826.0.1.3680043.2.1125.7.3");
      EXPECT_EQ(seg.referenced_sop_instance_uid, "1.2.826.0.1.3680043.2.1125.7.1");
      EXPECT_EQ(seg.referenced_sop_class_uid, UID_ComputedRadiographyImageStorage);
      EXPECT_EQ(seg.patient_id, "TEST-1");
      EXPECT_EQ(seg.frames, 1u);
      EXPECT_EQ(seg.segments, 1u);
      EXPECT_EQ(seg.segment_label, "Pneumothorax");
      EXPECT_EQ(seg.frame.pixels, mask.pixels);
    } else {
      EXPECT_TRUE(row["area_mm2"].is_null());  // a PNG states no spacing
    }
  }
  const std::string csv = test::read_bytes(dir.file("clinical/report.csv"));
  EXPECT_NE(csv.find(",6144,307.2"), std::string::npos) << csv;  // chest: 64 x 96 px, x 0.2 x 0.25 mm

  // With the default rule the report still agrees with the mask it wrote.
  const Result d = pneumo("predict --model tiny_unet_se --weights w.safetensors --images in --out p2 "
                          "--clinical c2 --batch 1 --device cpu --quiet",
                          dir);
  ASSERT_EQ(d.code, 0) << d.err;
  const nlohmann::json j2 = nlohmann::json::parse(test::read_bytes(dir.file("c2/report.json")));
  for (const auto& row : j2["images"])
    EXPECT_EQ(row["area_px"].get<int64_t>(), count_on(aug::read_image(dir.path() + "/" + row["mask_png"].get<std::string>())));
#endif
}

// dciodvfy (David Clunie's dicom3tools, Debian package dicom3tools) checks the SEG against the Segmentation
// IOD's modules. It is optional (tools/deps.sh --optional): skipped when not installed.
TEST(CliClinical, DicomSegPassesDciodvfy) {
#if !(defined(PNEUMO_HAVE_DCMTK) && PNEUMO_HAVE_DCMTK)
  GTEST_SKIP() << "built without DCMTK";
#else
  test::TempDir dir;
  if (sh("command -v dciodvfy", dir).code != 0) GTEST_SKIP() << "dciodvfy not installed (apt install dicom3tools)";
  write_cr(dir.file("chest.dcm"), 64, 96);
  aug::Image mask(64, 96, 1);
  for (int y = 20; y < 40; ++y)
    for (int x = 30; x < 70; ++x) mask.at(y, x) = 255;
  aug::write_dicom_seg(dir.file("chest.dcm"), mask, dir.file("chest.seg.dcm"));
  const Result v = sh("dciodvfy chest.seg.dcm", dir);
  // dciodvfy prints "Error - ..." for every violation of the IOD (and "Warning - ..." for advice).
  const std::string all = v.out + v.err;
  EXPECT_EQ(all.find("Error"), std::string::npos) << all;
  EXPECT_NE(all.find("Segmentation"), std::string::npos) << "dciodvfy did not recognise the IOD: " << all;
#endif
}

TEST(CliClinical, MultiFrameDicomIsRefusedWithTheFrameCount) {
#if !(defined(PNEUMO_HAVE_DCMTK) && PNEUMO_HAVE_DCMTK)
  GTEST_SKIP() << "built without DCMTK";
#else
  test::TempDir dir;
  write_cr(dir.file("three.dcm"), 32, 32, 3);
  const Result r = pneumo("dicom-to-png three.dcm out", dir);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("three.dcm"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("holds 3 frames"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  test::expect_error_mentions([&] { aug::read_dicom(dir.file("three.dcm")); }, {"three.dcm", "3 frames", "single-frame"});
#endif
}

}  // namespace pneumo
