// DICOM reading through DCMTK: parse the data set, get frame 1's stored values (native, decompressed by
// DCMTK's JPEG / JPEG-LS / RLE codecs, or JPEG 2000 decoded by OpenJPEG from the encapsulated fragments),
// then map them to 8-bit gray (dicom.h states the rule). Every check that guards an allocation or an index
// happens before DCMTK or OpenJPEG is asked to decode, so hostile headers end in a pneumo::Error.
#include "augment/dicom.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <vector>

#include "kernels/check.h"

#if defined(PNEUMO_HAVE_DCMTK) && PNEUMO_HAVE_DCMTK
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcdict.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcistrmb.h"
#include "dcmtk/dcmdata/dcmetinf.h"
#include "dcmtk/dcmdata/dcpixel.h"
#include "dcmtk/dcmdata/dcpixseq.h"
#include "dcmtk/dcmdata/dcpxitem.h"
#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/dcmdata/dcxfer.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/dcmjpls/djdecode.h"
#include "dcmtk/oflog/oflog.h"
#define PNEUMO_DCMTK_OK 1
#else
#define PNEUMO_DCMTK_OK 0
#endif

#if PNEUMO_DCMTK_OK && defined(PNEUMO_HAVE_OPENJPEG) && PNEUMO_HAVE_OPENJPEG
#include <openjpeg.h>
#define PNEUMO_OPENJPEG_OK 1
#else
#define PNEUMO_OPENJPEG_OK 0
#endif

namespace pneumo::aug {

const char* dicom_conversion_name(DicomConversion c) {
  switch (c) {
    case DicomConversion::Identity: return "stored values (8-bit)";
    case DicomConversion::Window: return "window centre/width";
    case DicomConversion::VoiLut: return "VOI LUT";
    case DicomConversion::MinMax: return "min-max";
  }
  return "?";
}

bool dicom_available() { return PNEUMO_DCMTK_OK != 0; }
bool dicom_jpeg2000_available() { return PNEUMO_OPENJPEG_OK != 0; }

bool has_dicom_extension(const std::string& path) {
  std::string lower(path);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto ends = [&](const char* s) {
    const size_t n = std::strlen(s);
    return lower.size() >= n && lower.compare(lower.size() - n, n, s) == 0;
  };
  return ends(".dcm") || ends(".dicom");
}

bool looks_like_dicom(const uint8_t* b, size_t size) {
  if (size >= 132 && std::memcmp(b + 128, "DICM", 4) == 0) return true;
  // A raw little-endian data set (no preamble): its first tag is in group 0002 or 0008.
  return size >= 8 && (b[0] == 0x02 || b[0] == 0x08) && b[1] == 0x00;
}

uint8_t dicom_window_to_8bit(double x, double c, double w, const std::string& function) {
  double y;
  if (function == "SIGMOID") {
    y = 255.0 / (1.0 + std::exp(-4.0 * (x - c) / w));
  } else if (function == "LINEAR_EXACT") {
    if (x <= c - w / 2) y = 0.0;
    else if (x > c + w / 2) y = 255.0;
    else y = ((x - c) / w + 0.5) * 255.0;
  } else {  // LINEAR: PS3.3 C.11.2.1.2.1; with w == 1 the two branches cover every x (no division by 0)
    if (x <= c - 0.5 - (w - 1) / 2) y = 0.0;
    else if (x > c - 0.5 + (w - 1) / 2) y = 255.0;
    else y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0;
  }
  return static_cast<uint8_t>(std::lround(std::clamp(y, 0.0, 255.0)));
}

uint8_t dicom_minmax_to_8bit(double x, double lo, double hi) {
  if (!(hi > lo)) return 0;
  return static_cast<uint8_t>(std::lround(std::clamp((x - lo) * 255.0 / (hi - lo), 0.0, 255.0)));
}

DicomImage read_dicom(const std::string& path) {
#if PNEUMO_DCMTK_OK
  std::vector<uint8_t> bytes = read_file_bytes(path);
  return read_dicom_memory(bytes.data(), bytes.size(), path);
#else
  PNEUMO_FAIL("cannot read DICOM file '", path, "': this pneumo was built without DCMTK (install libdcmtk-dev and "
              "reconfigure; `pneumo info` shows the build's DICOM support)");
#endif
}

#if PNEUMO_DCMTK_OK
namespace {

void init_dcmtk() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Errors reach the user as one pneumo::Error line; PNEUMO_DCMTK_LOG=1 shows DCMTK's own warnings too.
    const char* log = std::getenv("PNEUMO_DCMTK_LOG");
    OFLog::configure(log && *log && std::strcmp(log, "0") != 0 ? OFLogger::WARN_LOG_LEVEL : OFLogger::OFF_LOG_LEVEL);
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
  });
}

std::string get_string(DcmItem& ds, const DcmTagKey& tag) {
  OFString s;
  if (ds.findAndGetOFString(tag, s).good()) return std::string(s.c_str());
  return "";
}

bool get_double(DcmItem& ds, const DcmTagKey& tag, double& v, unsigned long pos = 0) {
  Float64 f = 0;
  if (!ds.findAndGetFloat64(tag, f, pos).good() || !std::isfinite(f)) return false;
  v = f;
  return true;
}

bool is_jpeg2000(const char* uid) {
  return std::strcmp(uid, "1.2.840.10008.1.2.4.90") == 0 || std::strcmp(uid, "1.2.840.10008.1.2.4.91") == 0 ||
         std::strcmp(uid, "1.2.840.10008.1.2.4.92") == 0 || std::strcmp(uid, "1.2.840.10008.1.2.4.93") == 0;
}

#if PNEUMO_OPENJPEG_OK
struct OpjMemory {
  const uint8_t* data;
  size_t size, pos;
};

OPJ_SIZE_T opj_mem_read(void* buf, OPJ_SIZE_T n, void* user) {
  auto* m = static_cast<OpjMemory*>(user);
  if (m->pos >= m->size) return static_cast<OPJ_SIZE_T>(-1);
  const size_t k = std::min<size_t>(n, m->size - m->pos);
  std::memcpy(buf, m->data + m->pos, k);
  m->pos += k;
  return k;
}
OPJ_OFF_T opj_mem_skip(OPJ_OFF_T n, void* user) {
  auto* m = static_cast<OpjMemory*>(user);
  if (n < 0) {
    const size_t back = std::min<size_t>(static_cast<size_t>(-n), m->pos);
    m->pos -= back;
    return -static_cast<OPJ_OFF_T>(back);
  }
  const size_t k = std::min<size_t>(static_cast<size_t>(n), m->size - m->pos);
  m->pos += k;
  return static_cast<OPJ_OFF_T>(k);
}
OPJ_BOOL opj_mem_seek(OPJ_OFF_T n, void* user) {
  auto* m = static_cast<OpjMemory*>(user);
  if (n < 0 || static_cast<uint64_t>(n) > m->size) return OPJ_FALSE;
  m->pos = static_cast<size_t>(n);
  return OPJ_TRUE;
}
void opj_keep_message(const char* msg, void* user) {
  auto* s = static_cast<std::string*>(user);
  if (s->empty() && msg) {
    *s = msg;
    while (!s->empty() && (s->back() == '\n' || s->back() == '\r')) s->pop_back();
  }
}

// Decodes one JPEG 2000 code stream (raw J2K or a JP2 box file) into stored values; checks its size first.
void decode_jpeg2000(const uint8_t* data, size_t size, int rows, int cols, std::vector<int32_t>& out,
                     const std::string& name) {
  PNEUMO_CHECK(size >= 12, "DICOM file '", name, "': JPEG 2000 pixel data is only ", size, " bytes");
  static const uint8_t jp2_sig[12] = {0, 0, 0, 12, 'j', 'P', ' ', ' ', 0x0D, 0x0A, 0x87, 0x0A};
  const bool jp2 = std::memcmp(data, jp2_sig, 12) == 0;
  std::string error;
  struct Guard {
    opj_codec_t* codec = nullptr;
    opj_stream_t* stream = nullptr;
    opj_image_t* image = nullptr;
    ~Guard() {
      if (image) opj_image_destroy(image);
      if (stream) opj_stream_destroy(stream);
      if (codec) opj_destroy_codec(codec);
    }
  } g;
  g.codec = opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
  PNEUMO_CHECK(g.codec != nullptr, "DICOM file '", name, "': OpenJPEG could not create a decoder");
  opj_set_error_handler(g.codec, opj_keep_message, &error);
  opj_set_warning_handler(g.codec, [](const char*, void*) {}, nullptr);
  opj_set_info_handler(g.codec, [](const char*, void*) {}, nullptr);
  opj_dparameters_t params;
  opj_set_default_decoder_parameters(&params);
  PNEUMO_CHECK(opj_setup_decoder(g.codec, &params), "DICOM file '", name, "': OpenJPEG decoder set-up failed");
  OpjMemory mem{data, size, 0};
  g.stream = opj_stream_create(OPJ_J2K_STREAM_CHUNK_SIZE, OPJ_TRUE);
  PNEUMO_CHECK(g.stream != nullptr, "DICOM file '", name, "': OpenJPEG could not create a stream");
  opj_stream_set_user_data(g.stream, &mem, nullptr);
  opj_stream_set_user_data_length(g.stream, size);
  opj_stream_set_read_function(g.stream, opj_mem_read);
  opj_stream_set_skip_function(g.stream, opj_mem_skip);
  opj_stream_set_seek_function(g.stream, opj_mem_seek);
  if (!opj_read_header(g.stream, g.codec, &g.image) || !g.image)
    PNEUMO_FAIL("DICOM file '", name, "': corrupt JPEG 2000 header (", error.empty() ? "OpenJPEG gave no reason" : error, ")");
  const int64_t w = static_cast<int64_t>(g.image->x1) - g.image->x0, h = static_cast<int64_t>(g.image->y1) - g.image->y0;
  // Checked before opj_decode allocates anything: the size the DICOM header promised, and few components.
  PNEUMO_CHECK(w == cols && h == rows && g.image->numcomps >= 1 && g.image->numcomps <= 4, "DICOM file '", name,
               "': the JPEG 2000 stream is ",
               w, "x", h, " with ", g.image->numcomps, " components, the header says ", cols, "x", rows);
  if (!opj_decode(g.codec, g.stream, g.image) || !opj_end_decompress(g.codec, g.stream))
    PNEUMO_FAIL("DICOM file '", name, "': JPEG 2000 decoding failed (", error.empty() ? "corrupt data" : error, ")");
  const opj_image_comp_t& c = g.image->comps[0];
  PNEUMO_CHECK(c.data != nullptr && static_cast<int64_t>(c.w) == cols && static_cast<int64_t>(c.h) == rows &&
                   c.dx == 1 && c.dy == 1,
               "DICOM file '", name, "': the JPEG 2000 first component is ", c.w, "x", c.h, ", expected ", cols, "x", rows);
  out.assign(c.data, c.data + static_cast<size_t>(rows) * cols);
}
#endif

// The PixelData element as DCMTK's pixel class. A corrupt file can give the tag another VR, and DCMTK then
// makes it another class: casting without checking crashed (found by fuzz_dicom, 2026-12-07).
DcmPixelData* pixel_data_of(DcmElement* e, const std::string& name) {
  auto* p = dynamic_cast<DcmPixelData*>(e);
  PNEUMO_CHECK(p != nullptr, "DICOM file '", name, "': the pixel data element has VR ", DcmVR(e->getVR()).getVRName(),
               ", not OB/OW (corrupt file)");
  return p;
}

// DCMTK 3.6.7's DJCodecDecoder::scanJpegDataForBitDepth (dcmjpeg, run on the frame's first fragment before
// any JPEG decoder) steps from marker to marker until a frame header; on a TEM marker (FF 01) it does not move
// on, and loops for ever (found twice by fuzz_dicom, 2026-12-07: FF D8 FF 01, and a fragment starting FF 01).
// This walks the fragment exactly as that loop does and says whether it ends; every other marker moves it
// forward (2 bytes, 1 for a fill byte, or 2 + the segment length) or stops it (a frame header, an error).
bool dcmtk_bit_depth_scan_ends(const uint8_t* d, size_t n) {
  if (d == nullptr) return true;
  size_t off = 0;
  while (off + 4 < n) {
    const int m = d[off + 1];
    if (d[off] != 0xFF) return true;  // "invalid marker": the scan fails, DCMTK reports an error
    if (m == 0x01) return false;      // TEM: the scan never moves past it
    const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof) return true;
    if (m >= 0xD0 && m <= 0xD9) {
      off += 2;  // RSTn, SOI, EOI
    } else if (m == 0xFF) {
      off += 1;  // fill byte
    } else if (m == 0xC4 || m == 0xC8 || m == 0xCC || m >= 0xDA) {
      off += static_cast<size_t>(d[off + 2] << 8 | d[off + 3]) + 2;  // a segment with a length
    } else if (m > 0x02 && m <= 0xBF) {
      off += 2;  // reserved markers
    } else {
      return true;  // FF 00, FF 02: an error
    }
  }
  return true;
}

// The transfer syntaxes DCMTK decodes with dcmjpeg (DJDecoderRegistration): JPEG baseline, extended,
// spectral selection, progressive, lossless and lossless SV1. JPEG-LS and JPEG 2000 take other decoders.
bool uses_dcmjpeg(const std::string& uid) {
  for (const char* s : {"50", "51", "53", "55", "57", "70"})
    if (uid == std::string("1.2.840.10008.1.2.4.") + s) return true;
  return false;
}

// The bytes DCMTK's JPEG decoder scans first: item 1 of the pixel sequence (item 0 is the offset table).
bool first_fragment_scan_ends(DcmPixelData& pixel_data, E_TransferSyntax xfer) {
  DcmPixelSequence* seq = nullptr;
  if (!pixel_data.getEncapsulatedRepresentation(xfer, nullptr, seq).good() || !seq || seq->card() < 2) return true;
  DcmPixelItem* item = nullptr;
  Uint8* bytes = nullptr;
  if (!seq->getItem(item, 1).good() || !item || item->getLength() == 0) return true;
  if (!item->getUint8Array(bytes).good() || !bytes) return true;  // DCMTK fails on these itself
  return dcmtk_bit_depth_scan_ends(bytes, item->getLength());
}

// The encapsulated fragments of frame 1, concatenated (a frame may span several fragments).
std::vector<uint8_t> first_frame_fragments(DcmPixelData& pixel_data, E_TransferSyntax xfer, int frames,
                                           const std::string& name) {
  DcmPixelSequence* seq = nullptr;
  if (!pixel_data.getEncapsulatedRepresentation(xfer, nullptr, seq).good() || !seq)
    PNEUMO_FAIL("DICOM file '", name, "': compressed pixel data has no fragment sequence");
  const unsigned long n = seq->card();
  PNEUMO_CHECK(n >= 2, "DICOM file '", name, "': compressed pixel data holds no fragment");
  std::vector<uint8_t> out;
  for (unsigned long i = 1; i < n; ++i) {
    DcmPixelItem* item = nullptr;
    Uint8* bytes = nullptr;
    if (!seq->getItem(item, i).good() || !item) break;
    const Uint32 len = item->getLength();
    if (len == 0) continue;
    if (!item->getUint8Array(bytes).good() || !bytes) PNEUMO_FAIL("DICOM file '", name, "': unreadable pixel fragment ", i);
    // With several frames, a fragment that opens a new code stream (SOC marker or JP2 signature) starts frame 2.
    const bool starts_stream = len >= 4 && ((bytes[0] == 0xFF && bytes[1] == 0x4F) || (bytes[0] == 0 && bytes[3] == 12));
    if (frames > 1 && !out.empty() && starts_stream) break;
    out.insert(out.end(), bytes, bytes + len);
  }
  PNEUMO_CHECK(!out.empty(), "DICOM file '", name, "': compressed pixel data is empty");
  return out;
}

// Applies rescale + VOI (or keeps 8-bit values) and inversion; `v` holds the stored values of one plane.
void to_8bit(DcmItem& ds, const std::vector<int32_t>& v, DicomImage& out) {
  double slope = 1.0, intercept = 0.0;
  get_double(ds, DCM_RescaleSlope, slope);
  get_double(ds, DCM_RescaleIntercept, intercept);
  if (slope == 0.0) slope = 1.0;
  const bool mono1 = out.photometric == "MONOCHROME1";
  const size_t n = v.size();
  std::vector<uint8_t>& px = out.image.pixels;
  if (out.bits_allocated == 8 && out.bits_stored == 8 && !out.is_signed && slope == 1.0 && intercept == 0.0) {
    out.conversion = DicomConversion::Identity;
    for (size_t i = 0; i < n; ++i) px[i] = static_cast<uint8_t>(v[i]);
  } else {
    bool done = false;
    // VOI LUT first (as pydicom's apply_voi_lut, prefer_lut=True), when it is well formed.
    DcmItem* lut_item = nullptr;
    if (ds.findAndGetSequenceItem(DCM_VOILUTSequence, lut_item, 0).good() && lut_item) {
      Uint16 d0 = 0, d1 = 0, d2 = 0;
      const Uint16* lut = nullptr;
      unsigned long count = 0;
      if (lut_item->findAndGetUint16(DCM_LUTDescriptor, d0, 0).good() &&
          lut_item->findAndGetUint16(DCM_LUTDescriptor, d1, 1).good() &&
          lut_item->findAndGetUint16(DCM_LUTDescriptor, d2, 2).good() &&
          lut_item->findAndGetUint16Array(DCM_LUTData, lut, &count).good() && lut) {
        const unsigned long entries = d0 == 0 ? 65536ul : d0;
        const double first = out.is_signed ? static_cast<double>(static_cast<int16_t>(d1)) : static_cast<double>(d1);
        if (count >= entries && d2 >= 8 && d2 <= 16) {
          // Some files state 16 bits for LUTs that hold fewer; scale by the larger of the stated and the used range.
          double top = static_cast<double>((1u << d2) - 1);
          for (unsigned long k = 0; k < entries; ++k) top = std::max(top, static_cast<double>(lut[k]));
          for (size_t i = 0; i < n; ++i) {
            const double m = v[i] * slope + intercept;
            const double idx = std::clamp(std::floor(m - first), 0.0, static_cast<double>(entries - 1));
            px[i] = static_cast<uint8_t>(std::lround(lut[static_cast<size_t>(idx)] * 255.0 / top));
          }
          out.conversion = DicomConversion::VoiLut;
          done = true;
        }
      }
    }
    double c = 0, w = 0;
    if (!done && get_double(ds, DCM_WindowCenter, c) && get_double(ds, DCM_WindowWidth, w)) {
      std::string fn = get_string(ds, DCM_VOILUTFunction);
      if (fn.empty()) fn = "LINEAR";
      if (fn != "SIGMOID" && fn != "LINEAR_EXACT") fn = "LINEAR";
      if ((fn == "LINEAR" && w >= 1.0) || (fn != "LINEAR" && w > 0.0)) {
        out.conversion = DicomConversion::Window;
        out.window_center = c;
        out.window_width = w;
        out.window_function = fn;
        for (size_t i = 0; i < n; ++i) px[i] = dicom_window_to_8bit(v[i] * slope + intercept, c, w, fn);
        done = true;
      }
    }
    if (!done) {
      out.conversion = DicomConversion::MinMax;
      const auto [lo_it, hi_it] = std::minmax_element(v.begin(), v.end());
      const double a = *lo_it * slope + intercept, b = *hi_it * slope + intercept;  // slope may be negative
      const double lo = std::min(a, b), hi = std::max(a, b);
      for (size_t i = 0; i < n; ++i) px[i] = dicom_minmax_to_8bit(v[i] * slope + intercept, lo, hi);
    }
  }
  if (mono1)
    for (size_t i = 0; i < n; ++i) px[i] = static_cast<uint8_t>(255 - px[i]);
}

}  // namespace
#endif

DicomImage read_dicom_memory(const uint8_t* data, size_t size, const std::string& name, int64_t max_pixels) {
#if PNEUMO_DCMTK_OK
  max_pixels = std::min(max_pixels, kDicomMaxPixels);
  init_dcmtk();
  PNEUMO_CHECK(dcmDataDict.isDictionaryLoaded(), "cannot read DICOM file '", name,
               "': DCMTK's data dictionary is not loaded (check the DCMDICTPATH environment variable)");
  PNEUMO_CHECK(size > 0, "DICOM file '", name, "' is empty");
  PNEUMO_CHECK(looks_like_dicom(data, size), "file '", name, "' is not DICOM (no 'DICM' at byte 128, no data set at byte 0)");
  DcmInputBufferStream in;
  in.setBuffer(data, static_cast<offile_off_t>(size));
  in.setEos();
  DcmFileFormat ff;
  ff.transferInit();
  const OFCondition cond = ff.read(in, EXS_Unknown, EGL_noChange, DCM_MaxReadLength);
  ff.transferEnd();
  DcmDataset& ds = *ff.getDataset();
  if (cond.bad()) PNEUMO_FAIL("cannot parse DICOM file '", name, "': ", cond.text(), " (truncated or corrupt)");

  DicomImage out;
  const E_TransferSyntax xfer = ds.getOriginalXfer();
  const DcmXfer xf(xfer);
  OFString meta_xfer;
  if (ff.getMetaInfo() && ff.getMetaInfo()->findAndGetOFString(DCM_TransferSyntaxUID, meta_xfer).good())
    out.transfer_syntax_uid = meta_xfer.c_str();
  if (out.transfer_syntax_uid.empty()) out.transfer_syntax_uid = xf.getXferID();
  out.study_instance_uid = get_string(ds, DCM_StudyInstanceUID);
  out.series_instance_uid = get_string(ds, DCM_SeriesInstanceUID);
  out.sop_instance_uid = get_string(ds, DCM_SOPInstanceUID);
  out.sop_class_uid = get_string(ds, DCM_SOPClassUID);
  out.photometric = get_string(ds, DCM_PhotometricInterpretation);

  DcmElement* pixel_element = nullptr;
  if (!ds.findAndGetElement(DCM_PixelData, pixel_element).good() || !pixel_element)
    PNEUMO_FAIL("DICOM file '", name, "' holds no pixel data (not an image, or truncated before it)");
  Uint16 rows = 0, cols = 0, spp = 1, bits_alloc = 0, bits_stored = 0, high_bit = 0, pixel_rep = 0, planar = 0;
  PNEUMO_CHECK(ds.findAndGetUint16(DCM_Rows, rows).good() && ds.findAndGetUint16(DCM_Columns, cols).good() && rows > 0 &&
                   cols > 0,
               "DICOM file '", name, "': missing or zero Rows/Columns");
  PNEUMO_CHECK(ds.findAndGetUint16(DCM_BitsAllocated, bits_alloc).good(), "DICOM file '", name, "': no BitsAllocated");
  if (!ds.findAndGetUint16(DCM_BitsStored, bits_stored).good()) bits_stored = bits_alloc;
  if (!ds.findAndGetUint16(DCM_HighBit, high_bit).good()) high_bit = static_cast<Uint16>(bits_stored - 1);
  ds.findAndGetUint16(DCM_SamplesPerPixel, spp);
  ds.findAndGetUint16(DCM_PixelRepresentation, pixel_rep);
  ds.findAndGetUint16(DCM_PlanarConfiguration, planar);
  Sint32 frames = 1, stated = 0;  // (DCMTK zeroes `stated` when the attribute is absent)
  if (ds.findAndGetSint32(DCM_NumberOfFrames, stated).good() && stated > 1) frames = stated;
  // A radiograph is one frame; a multi-frame object (tomosynthesis, a cine loop) is not what the networks
  // were trained on, so it is refused rather than silently cut to its first frame.
  PNEUMO_CHECK(frames == 1, "DICOM file '", name, "' holds ", frames,
               " frames (NumberOfFrames); pneumo reads single-frame images only: save the frame wanted as its own file");
  out.frames = frames;
  out.bits_allocated = bits_alloc;
  out.bits_stored = bits_stored;
  out.is_signed = pixel_rep == 1;

  PNEUMO_CHECK(bits_alloc == 8 || bits_alloc == 16, "DICOM file '", name, "': BitsAllocated ", bits_alloc,
               " is not supported (8 or 16)");
  PNEUMO_CHECK(bits_stored >= 1 && bits_stored <= bits_alloc && high_bit < bits_alloc && high_bit + 1 >= bits_stored,
               "DICOM file '", name, "': inconsistent BitsStored ", bits_stored, " / HighBit ", high_bit,
               " for BitsAllocated ", bits_alloc);
  // Before any decoder runs: a compressed file claiming 65529 samples per pixel made DCMTK's decompression
  // allocate 2 GB before the samples check below refused it (found by fuzz_dicom, 2026-12-07).
  PNEUMO_CHECK(spp == 1 || spp == 3, "DICOM file '", name, "': SamplesPerPixel ", spp,
               " is not supported (1 for gray, 3 for RGB)");
  const int64_t pixels = static_cast<int64_t>(rows) * cols;
  PNEUMO_CHECK(pixels <= max_pixels, "DICOM file '", name, "': ", cols, "x", rows, " pixels is over the limit of ",
               max_pixels);

  std::vector<int32_t> values(static_cast<size_t>(pixels));
  const bool j2k = xf.isEncapsulated() && is_jpeg2000(xf.getXferID());
  if (j2k) {
#if PNEUMO_OPENJPEG_OK
    PNEUMO_CHECK(spp == 1, "DICOM file '", name, "': JPEG 2000 colour images are not supported (SamplesPerPixel ", spp, ")");
    std::vector<uint8_t> stream =
        first_frame_fragments(*pixel_data_of(pixel_element, name), xfer, frames, name);
    decode_jpeg2000(stream.data(), stream.size(), rows, cols, values, name);
    // Lossy J2K may overshoot the stored range slightly; clamp to it.
    const int32_t lo = out.is_signed ? -(1 << (bits_stored - 1)) : 0;
    const int32_t hi = out.is_signed ? (1 << (bits_stored - 1)) - 1 : (1 << bits_stored) - 1;
    for (int32_t& x : values) x = std::clamp(x, lo, hi);
#else
    PNEUMO_FAIL("DICOM file '", name, "': transfer syntax ", xf.getXferID(), " (", xf.getXferName(),
                ") needs JPEG 2000, and this pneumo was built without OpenJPEG (install libopenjp2-7-dev and reconfigure)");
#endif
  } else {
    if (xf.isEncapsulated()) {
      PNEUMO_CHECK(pixels * frames <= max_pixels, "DICOM file '", name, "': ", frames, " frames of ", cols, "x",
                   rows, " is over the limit of ", max_pixels, " pixels");
      if (uses_dcmjpeg(xf.getXferID())) {
        PNEUMO_CHECK(first_fragment_scan_ends(*pixel_data_of(pixel_element, name), xfer), "DICOM file '", name,
                     "': corrupt JPEG stream (a TEM marker, FF 01, before the frame header)");
      }
      const OFCondition dc = ds.chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
      if (dc.bad() || !ds.canWriteXfer(EXS_LittleEndianExplicit))
        PNEUMO_FAIL("DICOM file '", name, "': cannot decompress transfer syntax ", xf.getXferID(), " (", xf.getXferName(),
                    "): ", dc.bad() ? dc.text() : "no decoder for it in this build");
      out.photometric = get_string(ds, DCM_PhotometricInterpretation);  // the decoder may turn YBR into RGB
      PNEUMO_CHECK(ds.findAndGetElement(DCM_PixelData, pixel_element).good() && pixel_element,
                   "DICOM file '", name, "': no pixel data after decompression");
    }
    const bool colour = spp == 3 && (out.photometric == "RGB" || out.photometric.rfind("YBR", 0) == 0);
    PNEUMO_CHECK(spp == 1 || (colour && bits_alloc == 8), "DICOM file '", name, "': ", spp, " samples per pixel with ",
                 bits_alloc, "-bit '", out.photometric, "' is not supported (gray, or 8-bit RGB)");
    PNEUMO_CHECK(spp == 1 || out.photometric == "RGB", "DICOM file '", name, "': photometric interpretation '",
                 out.photometric, "' of uncompressed colour data is not supported (RGB only)");
    const size_t bytes_needed = static_cast<size_t>(pixels) * spp * (bits_alloc / 8);
    const size_t bytes_held = pixel_element->getLength();
    PNEUMO_CHECK(bytes_held >= bytes_needed, "DICOM file '", name, "': pixel data holds ", bytes_held, " bytes, ", cols,
                 "x", rows, "x", spp, " at ", bits_alloc, " bits needs ", bytes_needed, " (truncated?)");
    if (bits_alloc == 8) {
      Uint8* p = nullptr;
      PNEUMO_CHECK(pixel_element->getUint8Array(p).good() && p, "DICOM file '", name, "': unreadable 8-bit pixel data");
      if (spp == 3) {
        // The same integer gray weights as image.cpp (OpenCV's 0.299/0.587/0.114 in 14-bit fixed point).
        const size_t plane = static_cast<size_t>(pixels);
        for (size_t i = 0; i < plane; ++i) {
          const int r = planar ? p[i] : p[3 * i], g = planar ? p[plane + i] : p[3 * i + 1],
                    b = planar ? p[2 * plane + i] : p[3 * i + 2];
          values[i] = (r * 4899 + g * 9617 + b * 1868 + (1 << 13)) >> 14;
        }
        bits_stored = 8;
        out.bits_stored = 8;
        out.is_signed = false;
      } else {
        for (size_t i = 0; i < values.size(); ++i) values[i] = p[i];
      }
    } else {
      Uint16* p = nullptr;
      PNEUMO_CHECK(pixel_element->getUint16Array(p).good() && p, "DICOM file '", name, "': unreadable 16-bit pixel data");
      for (size_t i = 0; i < values.size(); ++i) values[i] = p[i];
    }
    if (spp == 1) {
      // Keep bits [high_bit - bits_stored + 1, high_bit], sign-extended when PixelRepresentation is 1.
      const int shift = high_bit + 1 - bits_stored;
      const uint32_t mask = bits_stored >= 32 ? 0xFFFFFFFFu : ((1u << bits_stored) - 1u);
      for (int32_t& x : values) {
        uint32_t u = (static_cast<uint32_t>(x) >> shift) & mask;
        if (out.is_signed && (u >> (bits_stored - 1)) & 1u) u |= ~mask;
        x = static_cast<int32_t>(u);
      }
    }
  }
  PNEUMO_CHECK(out.photometric == "MONOCHROME1" || out.photometric == "MONOCHROME2" || spp == 3, "DICOM file '", name,
               "': photometric interpretation '", out.photometric, "' is not supported (MONOCHROME1, MONOCHROME2, RGB)");

  out.image = Image(rows, cols, 1);
  to_8bit(ds, values, out);

  // Spacing: PixelSpacing (in the patient) when given, else ImagerPixelSpacing (at the detector).
  for (const auto& [tag, label] : {std::pair<DcmTagKey, const char*>{DCM_PixelSpacing, "PixelSpacing"},
                                   std::pair<DcmTagKey, const char*>{DCM_ImagerPixelSpacing, "ImagerPixelSpacing"}}) {
    double r = 0, c = 0;
    if (get_double(ds, tag, r, 0) && get_double(ds, tag, c, 1) && r > 0 && c > 0 && r < 100 && c < 100) {
      out.row_spacing_mm = r;
      out.column_spacing_mm = c;
      out.spacing_source = label;
      break;
    }
  }
  return out;
#else
  (void)data, (void)size, (void)max_pixels;
  PNEUMO_FAIL("cannot read DICOM file '", name, "': this pneumo was built without DCMTK (install libdcmtk-dev and "
              "reconfigure; `pneumo info` shows the build's DICOM support)");
#endif
}

}  // namespace pneumo::aug
