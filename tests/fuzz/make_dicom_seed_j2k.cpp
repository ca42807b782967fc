// Generator of tests/fuzz/seeds/dicom/jpeg2000-lossless-12bit.dcm (not built by CMake; run once, by hand):
//   g++ -O1 -I/usr/include/openjpeg-2.5 -o j2k tests/fuzz/make_dicom_seed_j2k.cpp -lopenjp2 -ldcmdata -loflog -lofstd
// A 16x16 12-bit JPEG 2000 (lossless, .90) DICOM seed: OpenJPEG encodes a J2K codestream into memory, DCMTK
// wraps it as one encapsulated fragment.
#include <openjpeg.h>
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmdata/dcpxitem.h"
#include <vector>
#include <cstring>
#include <cstdio>
struct Buf { std::vector<unsigned char> d; size_t pos = 0; };
static OPJ_SIZE_T wr(void* p, OPJ_SIZE_T n, void* u) { auto* b = (Buf*)u; if (b->pos + n > b->d.size()) b->d.resize(b->pos + n); memcpy(b->d.data() + b->pos, p, n); b->pos += n; return n; }
static OPJ_OFF_T sk(OPJ_OFF_T n, void* u) { auto* b = (Buf*)u; b->pos += n; return n; }
static OPJ_BOOL ss(OPJ_OFF_T n, void* u) { auto* b = (Buf*)u; b->pos = n; return OPJ_TRUE; }
int main() {
  const int W = 16, H = 16;
  opj_image_cmptparm_t cp{}; cp.dx = cp.dy = 1; cp.w = W; cp.h = H; cp.prec = 12; cp.sgnd = 0;
  opj_image_t* img = opj_image_create(1, &cp, OPJ_CLRSPC_GRAY);
  img->x1 = W; img->y1 = H;
  for (int i = 0; i < W * H; ++i) img->comps[0].data[i] = (i * 37) & 4095;
  opj_cparameters_t p; opj_set_default_encoder_parameters(&p); p.tcp_numlayers = 1; p.tcp_rates[0] = 0; p.cp_disto_alloc = 1; p.numresolution = 3;
  opj_codec_t* c = opj_create_compress(OPJ_CODEC_J2K);
  opj_setup_encoder(c, &p, img);
  Buf b; opj_stream_t* s = opj_stream_default_create(OPJ_FALSE);
  opj_stream_set_user_data(s, &b, nullptr); opj_stream_set_write_function(s, wr); opj_stream_set_skip_function(s, sk); opj_stream_set_seek_function(s, ss);
  bool ok = opj_start_compress(c, img, s) && opj_encode(c, s) && opj_end_compress(c, s);
  opj_stream_destroy(s); opj_destroy_codec(c); opj_image_destroy(img);
  if (!ok) { puts("encode failed"); return 1; }
  if (b.d.size() & 1) b.d.push_back(0);
  DcmFileFormat ff; DcmDataset& ds = *ff.getDataset();
  ds.putAndInsertString(DCM_SOPClassUID, UID_ComputedRadiographyImageStorage);
  ds.putAndInsertString(DCM_SOPInstanceUID, "1.2.3.4.1"); ds.putAndInsertString(DCM_StudyInstanceUID, "1.2.3.4.2");
  ds.putAndInsertString(DCM_SeriesInstanceUID, "1.2.3.4.3"); ds.putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME1");
  ds.putAndInsertUint16(DCM_Rows, H); ds.putAndInsertUint16(DCM_Columns, W); ds.putAndInsertUint16(DCM_SamplesPerPixel, 1);
  ds.putAndInsertUint16(DCM_BitsAllocated, 16); ds.putAndInsertUint16(DCM_BitsStored, 12); ds.putAndInsertUint16(DCM_HighBit, 11);
  ds.putAndInsertUint16(DCM_PixelRepresentation, 0);
  ds.putAndInsertString(DCM_WindowCenter, "2048"); ds.putAndInsertString(DCM_WindowWidth, "4096");
  auto* pixel = new DcmPixelData(DCM_PixelData);
  auto* seq = new DcmPixelSequence(DcmTag(DCM_PixelData, EVR_OB));
  seq->insert(new DcmPixelItem(DcmTag(DCM_Item, EVR_OB)));  // empty offset table
  OFstatic_cast(void, 0);
  DcmOffsetList offsets;
  DcmPixelItem* frag = new DcmPixelItem(DcmTag(DCM_Item, EVR_OB));
  frag->putUint8Array(b.d.data(), b.d.size()); seq->insert(frag);
  DcmXfer x(EXS_JPEG2000LosslessOnly);
  pixel->putOriginalRepresentation(EXS_JPEG2000LosslessOnly, nullptr, seq);
  ds.insert(pixel, true);
  OFCondition r = ff.saveFile("jpeg2000-lossless-12bit.dcm", EXS_JPEG2000LosslessOnly);
  printf("j2k: %s, %zu bytes of codestream\n", r.text(), b.d.size());
  return 0;
}
