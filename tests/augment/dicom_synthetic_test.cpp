// The stored-value -> 8-bit path of augment/dicom.h on small DICOM files built here with DCMTK, against
// hand-computed values: bits-stored masking and sign extension, rescale slope/intercept, VOI LUT, window with
// MONOCHROME1 inversion, min-max, 8-bit RGB to gray, and a refused photometric interpretation.
#include <gtest/gtest.h>

#include <functional>

#include "augment/dicom.h"
#include "kernels/check.h"
#include "train/data_test_util.h"

#if defined(PNEUMO_HAVE_DCMTK) && PNEUMO_HAVE_DCMTK
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmdata/dcvrobow.h"
#include "dcmtk/dcmdata/dcvrus.h"

namespace pneumo::aug {
namespace {

// A 1-row image of `n` pixels; `fill` adds what the case needs. Written as a Part 10 file.
std::string write_dicom(const test::TempDir& dir, const std::string& name, int columns, const std::string& photometric,
                        const std::function<void(DcmDataset&)>& fill) {
  DcmFileFormat ff;
  DcmDataset& ds = *ff.getDataset();
  ds.putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
  ds.putAndInsertString(DCM_SOPInstanceUID, "1.2.826.0.1.3680043.2.1125.1.1");
  ds.putAndInsertString(DCM_StudyInstanceUID, "1.2.826.0.1.3680043.2.1125.1.2");
  ds.putAndInsertString(DCM_SeriesInstanceUID, "1.2.826.0.1.3680043.2.1125.1.3");
  ds.putAndInsertString(DCM_PhotometricInterpretation, photometric.c_str());
  ds.putAndInsertUint16(DCM_Rows, 1);
  ds.putAndInsertUint16(DCM_Columns, static_cast<Uint16>(columns));
  ds.putAndInsertUint16(DCM_SamplesPerPixel, 1);
  fill(ds);
  const std::string path = dir.file(name);
  const OFCondition c = ff.saveFile(path.c_str(), EXS_LittleEndianExplicit);
  EXPECT_TRUE(c.good()) << c.text();
  return path;
}

void gray16(DcmDataset& ds, int stored, int high, int signed_rep, const std::vector<Uint16>& v) {
  ds.putAndInsertUint16(DCM_BitsAllocated, 16);
  ds.putAndInsertUint16(DCM_BitsStored, static_cast<Uint16>(stored));
  ds.putAndInsertUint16(DCM_HighBit, static_cast<Uint16>(high));
  ds.putAndInsertUint16(DCM_PixelRepresentation, static_cast<Uint16>(signed_rep));
  ds.putAndInsertUint16Array(DCM_PixelData, v.data(), static_cast<unsigned long>(v.size()));
}

std::vector<int> pixels(const DicomImage& d) { return std::vector<int>(d.image.pixels.begin(), d.image.pixels.end()); }

TEST(DicomSynthetic, VoiLutWithBitsStoredMasking) {
  test::TempDir dir;
  const std::string path = write_dicom(dir, "lut.dcm", 6, "MONOCHROME2", [](DcmDataset& ds) {
    // 12 bits stored in 16: the top 4 bits are other data and must be ignored (0xF064 is 100).
    gray16(ds, 12, 11, 0, {99, 100, 0xF065, 102, 103, 4000});
    ds.putAndInsertString(DCM_WindowCenter, "2000");  // present too: the LUT wins, as in pydicom
    ds.putAndInsertString(DCM_WindowWidth, "4000");
    DcmItem* item = nullptr;
    ASSERT_TRUE(ds.findOrCreateSequenceItem(DCM_VOILUTSequence, item, -2).good());
    const Uint16 descriptor[3] = {4, 100, 8};  // 4 entries, first maps value 100, 8-bit output
    auto* d = new DcmUnsignedShort(DcmTag(DCM_LUTDescriptor, EVR_US));
    d->putUint16Array(descriptor, 3);
    item->insert(d);
    const Uint16 lut[4] = {0, 50, 100, 255};
    auto* l = new DcmOtherByteOtherWord(DcmTag(DCM_LUTData, EVR_OW));
    l->putUint16Array(lut, 4);
    item->insert(l);
  });
  const DicomImage d = read_dicom(path);
  EXPECT_EQ(d.conversion, DicomConversion::VoiLut);
  // value < first -> entry 0; 101 -> entry 1; 103 and above -> the last entry.
  EXPECT_EQ(pixels(d), (std::vector<int>{0, 0, 50, 100, 255, 255}));
}

TEST(DicomSynthetic, RescaleThenWindowThenMonochrome1) {
  test::TempDir dir;
  for (const char* photometric : {"MONOCHROME2", "MONOCHROME1"}) {
    const std::string path = write_dicom(dir, std::string(photometric) + ".dcm", 6, photometric, [](DcmDataset& ds) {
      gray16(ds, 12, 11, 0, {0, 50, 100, 150, 200, 4095});
      ds.putAndInsertString(DCM_RescaleSlope, "2");
      ds.putAndInsertString(DCM_RescaleIntercept, "-100");
      ds.putAndInsertString(DCM_WindowCenter, "100\\900");  // the first value is used
      ds.putAndInsertString(DCM_WindowWidth, "201\\50");
    });
    const DicomImage d = read_dicom(path);
    EXPECT_EQ(d.conversion, DicomConversion::Window);
    EXPECT_EQ(d.window_center, 100);
    EXPECT_EQ(d.window_width, 201);
    // m = 2 v - 100 = -100, 0, 100, 200, 300, 8090; LINEAR window [-0.5, 199.5]:
    // 0 -> ((0 - 99.5) / 200 + 0.5) * 255 = 0.64 -> 1; 100 -> 128.14 -> 128.
    std::vector<int> expected{0, 1, 128, 255, 255, 255};
    if (std::string(photometric) == "MONOCHROME1")
      for (int& v : expected) v = 255 - v;
    EXPECT_EQ(pixels(d), expected) << photometric;
  }
}

TEST(DicomSynthetic, SignedMinMax) {
  test::TempDir dir;
  const std::string path = write_dicom(dir, "signed.dcm", 4, "MONOCHROME2", [](DcmDataset& ds) {
    gray16(ds, 12, 11, 1, {0x0800, 0x07FF, 0x0000, 0x0FFF});  // -2048, 2047, 0, -1 in 12-bit two's complement
  });
  const DicomImage d = read_dicom(path);
  EXPECT_TRUE(d.is_signed);
  EXPECT_EQ(d.conversion, DicomConversion::MinMax);
  // (v + 2048) * 255 / 4095: 0, 255, 127.53 -> 128, 127.47 -> 127.
  EXPECT_EQ(pixels(d), (std::vector<int>{0, 255, 128, 127}));
}

TEST(DicomSynthetic, EightBitMonochrome1IsInvertedStoredValues) {
  test::TempDir dir;
  const std::string path = write_dicom(dir, "m1.dcm", 3, "MONOCHROME1", [](DcmDataset& ds) {
    ds.putAndInsertUint16(DCM_BitsAllocated, 8);
    ds.putAndInsertUint16(DCM_BitsStored, 8);
    ds.putAndInsertUint16(DCM_HighBit, 7);
    ds.putAndInsertUint16(DCM_PixelRepresentation, 0);
    const Uint8 v[4] = {0, 10, 255, 0};  // padded to an even length
    ds.putAndInsertUint8Array(DCM_PixelData, v, 4);
  });
  const DicomImage d = read_dicom(path);
  EXPECT_EQ(d.conversion, DicomConversion::Identity);
  EXPECT_EQ(pixels(d), (std::vector<int>{255, 245, 0}));
}

TEST(DicomSynthetic, RgbToGrayBothPlanarConfigurations) {
  test::TempDir dir;
  for (int planar : {0, 1}) {
    const std::string path = write_dicom(dir, "rgb" + std::to_string(planar) + ".dcm", 3, "RGB", [planar](DcmDataset& ds) {
      ds.putAndInsertUint16(DCM_SamplesPerPixel, 3);
      ds.putAndInsertUint16(DCM_PlanarConfiguration, static_cast<Uint16>(planar));
      ds.putAndInsertUint16(DCM_BitsAllocated, 8);
      ds.putAndInsertUint16(DCM_BitsStored, 8);
      ds.putAndInsertUint16(DCM_HighBit, 7);
      ds.putAndInsertUint16(DCM_PixelRepresentation, 0);
      // Red, yellow, blue; interleaved RGBRGBRGB or planes RRRGGGBBB (not the same bytes).
      const Uint8 interleaved[10] = {255, 0, 0, 255, 255, 0, 0, 0, 255, 0};
      const Uint8 planes[10] = {255, 255, 0, 0, 255, 0, 0, 0, 255, 0};
      ds.putAndInsertUint8Array(DCM_PixelData, planar ? planes : interleaved, 10);
    });
    // OpenCV's weights in 14-bit fixed point: red (255 * 4899 + 8192) >> 14 = 76, yellow
    // (255 * (4899 + 9617) + 8192) >> 14 = 226, blue 29.
    EXPECT_EQ(pixels(read_dicom(path)), (std::vector<int>{76, 226, 29})) << "planar " << planar;
  }
}

TEST(DicomSynthetic, PaletteColourIsRefusedByName) {
  test::TempDir dir;
  const std::string path = write_dicom(dir, "palette.dcm", 2, "PALETTE COLOR", [](DcmDataset& ds) {
    ds.putAndInsertUint16(DCM_BitsAllocated, 8);
    ds.putAndInsertUint16(DCM_BitsStored, 8);
    ds.putAndInsertUint16(DCM_HighBit, 7);
    const Uint8 v[2] = {1, 2};
    ds.putAndInsertUint8Array(DCM_PixelData, v, 2);
  });
  test::expect_error_mentions([&] { read_dicom(path); }, {"palette.dcm", "PALETTE COLOR"});
}

}  // namespace
}  // namespace pneumo::aug

#endif  // PNEUMO_HAVE_DCMTK
