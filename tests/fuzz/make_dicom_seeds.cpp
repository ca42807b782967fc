// Generator of the small DICOM seeds in tests/fuzz/seeds/dicom/ (not built by CMake; run once, by hand):
//   g++ -O1 -o gen tests/fuzz/make_dicom_seeds.cpp -ldcmjpeg -ldcmjpls -ldcmimage -ldcmimgle -ldcmdata -loflog -lofstd
//   (cd tests/fuzz/seeds/dicom && ../../../../gen)
// Small DICOM seeds for fuzz_dicom (one-off generator; output committed under tests/fuzz/seeds/dicom).
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmjpeg/djencode.h"
#include "dcmtk/dcmjpeg/djrplol.h"
#include "dcmtk/dcmjpeg/djrploss.h"
#include "dcmtk/dcmdata/dcrleerg.h"
#include "dcmtk/dcmdata/dcrlerp.h"
#include "dcmtk/dcmjpls/djencode.h"
#include "dcmtk/dcmjpls/djrparam.h"
#include <string>
#include <vector>
#include <cstdio>

static void base(DcmDataset& ds, int h, int w, const char* photo) {
  ds.putAndInsertString(DCM_SOPClassUID, UID_ComputedRadiographyImageStorage);
  ds.putAndInsertString(DCM_SOPInstanceUID, "1.2.3.4.1");
  ds.putAndInsertString(DCM_StudyInstanceUID, "1.2.3.4.2");
  ds.putAndInsertString(DCM_SeriesInstanceUID, "1.2.3.4.3");
  ds.putAndInsertString(DCM_Modality, "CR");
  ds.putAndInsertString(DCM_PhotometricInterpretation, photo);
  ds.putAndInsertUint16(DCM_Rows, h);
  ds.putAndInsertUint16(DCM_Columns, w);
  ds.putAndInsertUint16(DCM_SamplesPerPixel, 1);
}
static void px8(DcmDataset& ds, int h, int w) {
  ds.putAndInsertUint16(DCM_BitsAllocated, 8); ds.putAndInsertUint16(DCM_BitsStored, 8);
  ds.putAndInsertUint16(DCM_HighBit, 7); ds.putAndInsertUint16(DCM_PixelRepresentation, 0);
  std::vector<Uint8> v(h * w); for (int i = 0; i < h * w; ++i) v[i] = (i * 7 + i / w * 3) & 255;
  ds.putAndInsertUint8Array(DCM_PixelData, v.data(), v.size());
}
static void px16(DcmDataset& ds, int h, int w, int stored, int sign) {
  ds.putAndInsertUint16(DCM_BitsAllocated, 16); ds.putAndInsertUint16(DCM_BitsStored, stored);
  ds.putAndInsertUint16(DCM_HighBit, stored - 1); ds.putAndInsertUint16(DCM_PixelRepresentation, sign);
  std::vector<Uint16> v(h * w); for (int i = 0; i < h * w; ++i) v[i] = (i * 37) & ((1 << stored) - 1);
  ds.putAndInsertUint16Array(DCM_PixelData, v.data(), v.size());
}
static void save(DcmFileFormat& ff, const char* name, E_TransferSyntax x, bool meta = true) {
  OFCondition c = meta ? ff.saveFile(name, x) : ff.getDataset()->saveFile(name, x);
  std::printf("%s: %s\n", name, c.text());
}
int main() {
  DJEncoderRegistration::registerCodecs();
  DcmRLEEncoderRegistration::registerCodecs();
  DJLSEncoderRegistration::registerCodecs();
  { DcmFileFormat ff; auto& ds = *ff.getDataset(); base(ds, 16, 16, "MONOCHROME2"); px8(ds, 16, 16);
    ds.putAndInsertString(DCM_PixelSpacing, "0.2\\0.2"); save(ff, "mono2-8bit-explicit.dcm", EXS_LittleEndianExplicit); }
  { DcmFileFormat ff; auto& ds = *ff.getDataset(); base(ds, 12, 10, "MONOCHROME1"); px16(ds, 12, 10, 10, 0);
    ds.putAndInsertString(DCM_WindowCenter, "550"); ds.putAndInsertString(DCM_WindowWidth, "1024");
    ds.putAndInsertString(DCM_ImagerPixelSpacing, "0.1\\0.1"); save(ff, "mono1-10bit-implicit-no-meta.dcm", EXS_LittleEndianImplicit, false); }
  { DcmFileFormat ff; auto& ds = *ff.getDataset(); base(ds, 8, 8, "MONOCHROME2"); px16(ds, 8, 8, 12, 1);
    ds.putAndInsertString(DCM_RescaleSlope, "2"); ds.putAndInsertString(DCM_RescaleIntercept, "-100");
    ds.putAndInsertString(DCM_VOILUTFunction, "SIGMOID"); ds.putAndInsertString(DCM_WindowCenter, "0\\10");
    ds.putAndInsertString(DCM_WindowWidth, "400\\500"); save(ff, "signed-12bit-sigmoid-bigendian.dcm", EXS_BigEndianExplicit); }
  { DcmFileFormat ff; auto& ds = *ff.getDataset(); base(ds, 8, 8, "MONOCHROME2"); px16(ds, 8, 8, 12, 0);
    DcmItem* item = nullptr; ds.findOrCreateSequenceItem(DCM_VOILUTSequence, item, -2);
    const Uint16 d[3] = {4, 100, 8}; auto* e = new DcmUnsignedShort(DcmTag(DCM_LUTDescriptor, EVR_US)); e->putUint16Array(d, 3); item->insert(e);
    const Uint16 l[4] = {0, 50, 100, 255}; auto* f = new DcmOtherByteOtherWord(DcmTag(DCM_LUTData, EVR_OW)); f->putUint16Array(l, 4); item->insert(f);
    save(ff, "voi-lut.dcm", EXS_LittleEndianExplicit); }
  { DcmFileFormat ff; auto& ds = *ff.getDataset(); base(ds, 8, 8, "RGB"); ds.putAndInsertUint16(DCM_SamplesPerPixel, 3);
    ds.putAndInsertUint16(DCM_PlanarConfiguration, 0);
    ds.putAndInsertUint16(DCM_BitsAllocated, 8); ds.putAndInsertUint16(DCM_BitsStored, 8); ds.putAndInsertUint16(DCM_HighBit, 7);
    ds.putAndInsertUint16(DCM_PixelRepresentation, 0);
    std::vector<Uint8> v(8 * 8 * 3); for (size_t i = 0; i < v.size(); ++i) v[i] = i * 5; ds.putAndInsertUint8Array(DCM_PixelData, v.data(), v.size());
    save(ff, "rgb.dcm", EXS_LittleEndianExplicit); }
  // Compressed: JPEG baseline (8-bit), JPEG lossless (16-bit), RLE, JPEG-LS.
  struct C { const char* name; E_TransferSyntax x; bool sixteen; };
  for (C c : {C{"jpeg-baseline.dcm", EXS_JPEGProcess1, false}, C{"jpeg-lossless-12bit.dcm", EXS_JPEGProcess14SV1, true},
              C{"rle.dcm", EXS_RLELossless, true}, C{"jpegls.dcm", EXS_JPEGLSLossless, true}}) {
    DcmFileFormat ff; auto& ds = *ff.getDataset(); base(ds, 16, 16, "MONOCHROME2");
    if (c.sixteen) px16(ds, 16, 16, 12, 0); else px8(ds, 16, 16);
    OFCondition r = ds.chooseRepresentation(c.x, nullptr);
    if (r.bad() || !ds.canWriteXfer(c.x)) { std::printf("%s: cannot encode (%s)\n", c.name, r.text()); continue; }
    save(ff, c.name, c.x);
  }
  return 0;
}
