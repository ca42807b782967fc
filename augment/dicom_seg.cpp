// DICOM SEG writing and reading back through DCMTK's dcmseg/dcmfg/dcmiod (see dicom_seg.h). The SEG takes the
// patient and study of the source (importFromSourceImage), gets a new series, one binary segment and one frame
// whose per-frame groups are: Frame Content (dimension index = segment number), Segmentation (segment 1) and
// Derivation Image (the source SOP instance). The Referenced Series Sequence names the source series.
#include "augment/dicom_seg.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "augment/dicom.h"
#include "kernels/atomic_file.h"
#include "kernels/check.h"

#if defined(PNEUMO_HAVE_DCMTK) && PNEUMO_HAVE_DCMTK
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcistrmb.h"
#include "dcmtk/dcmdata/dcostrmb.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmfg/fgderimg.h"
#include "dcmtk/dcmfg/fgfracon.h"
#include "dcmtk/dcmfg/fgpixmsr.h"
#include "dcmtk/dcmfg/fgseg.h"
#include "dcmtk/dcmiod/iodreferences.h"
#include "dcmtk/dcmiod/iodrules.h"
#include "dcmtk/dcmseg/segdoc.h"
#include "dcmtk/dcmseg/segment.h"
#include "dcmtk/dcmseg/segutils.h"
#define PNEUMO_SEG_OK 1
#else
#define PNEUMO_SEG_OK 0
#endif

namespace pneumo::aug {

#if PNEUMO_SEG_OK
namespace {

std::string str(DcmItem& item, const DcmTagKey& tag, bool deep = false) {
  OFString s;
  if (item.findAndGetOFString(tag, s, 0, deep).good()) return s.c_str();
  return "";
}

void check_ok(const OFCondition& c, const std::string& what, const std::string& path) {
  if (c.bad()) PNEUMO_FAIL("DICOM SEG '", path, "': ", what, " failed: ", c.text());
}

}  // namespace
#endif

void write_dicom_seg(const std::string& source_path, const Image& mask, const std::string& out_path,
                     const DicomSegOptions& options) {
#if PNEUMO_SEG_OK
  // Validates the source (and registers the codecs, silences DCMTK's logger) before anything is written.
  const DicomImage source = read_dicom(source_path);
  PNEUMO_CHECK(mask.channels == 1 && mask.height == source.image.height && mask.width == source.image.width,
               "DICOM SEG '", out_path, "': the mask is ", mask.width, "x", mask.height, "x", mask.channels,
               ", the source '", source_path, "' is ", source.image.width, "x", source.image.height, " (1 channel needed)");
  PNEUMO_CHECK(!source.sop_instance_uid.empty() && !source.sop_class_uid.empty() && !source.study_instance_uid.empty() &&
                   !source.series_instance_uid.empty(),
               "DICOM SEG '", out_path, "': the source '", source_path,
               "' lacks a study, series or SOP instance UID, so a SEG could not reference it");
  DcmFileFormat src;
  const std::vector<uint8_t> bytes = read_file_bytes(source_path);
  {
    DcmInputBufferStream in;
    in.setBuffer(bytes.data(), static_cast<offile_off_t>(bytes.size()));
    in.setEos();
    src.transferInit();
    const OFCondition c = src.read(in);
    src.transferEnd();
    check_ok(c, "reading the source '" + source_path + "'", out_path);
  }
  DcmDataset& sds = *src.getDataset();
  // Values that break their VR would make DCMTK refuse to write the SEG (SIIM's PatientAge is "38", not "038Y").
  // An age of digits only is read as years; any other bad top-level value is emptied (Type 2/3 attributes).
  for (unsigned long i = 0; i < sds.card(); ++i) {
    DcmElement* e = sds.getElement(i);
    if (!e || e->ident() == EVR_SQ || e->getTag() == DCM_PixelData || e->checkValue("1-n").good()) continue;
    OFString v;
    e->getOFStringArray(v);
    if (e->getTag() == DCM_PatientAge && !v.empty() && v.size() <= 3 && v.find_first_not_of("0123456789") == OFString_npos) {
      char age[8];
      std::snprintf(age, sizeof age, "%03dY", std::atoi(v.c_str()));
      e->putString(age);
    } else {
      e->putString("");
    }
  }

  const std::string version = options.algorithm_version.empty() ? std::string(PNEUMO_VERSION) : options.algorithm_version;
  IODGeneralEquipmentModule::EquipmentInfo equipment("pneumo", "pneumo", "0", version.c_str());
  // The creator's name is a PN: "family^given" ("pneumo" alone is the retired ACR-NEMA form, dciodvfy warns).
  ContentIdentificationMacro content("1", "PNEUMOTHORAX", "pneumothorax segmentation", "pneumo^");
  DcmSegmentation* raw = nullptr;
  check_ok(DcmSegmentation::createBinarySegmentation(raw, static_cast<Uint16>(mask.height),
                                                     static_cast<Uint16>(mask.width), equipment, content),
           "creating the segmentation", out_path);
  std::unique_ptr<DcmSegmentation> seg(raw);
  check_ok(seg->importFromSourceImage(sds, OFTrue), "importing patient and study from '" + source_path + "'", out_path);
  // Projection X-rays (SIIM's included) often have no Frame of Reference. With a Derivation Image group the SEG
  // needs none either (PS3.3 C.8.20.2; DCMTK's own check agrees), but DCMTK 3.6.7's module rule still says
  // Type 1: relax it to 1C rather than invent a coordinate system (which would then demand plane positions).
  OFString frame_of_reference;
  seg->getFrameOfReference().getFrameOfReferenceUID(frame_of_reference);
  if (frame_of_reference.empty())
    if (IODRule* rule = seg->getFrameOfReference().getRules()->getByTag(DCM_FrameOfReferenceUID)) rule->setType("1C");
  seg->getSeries().setSeriesDescription(options.series_description.c_str());
  seg->getSeries().setSeriesNumber(options.series_number.c_str());

  DcmSegment* segment = nullptr;
  CodeSequenceMacro category("49755003", "SCT", "Morphologically Altered Structure");
  CodeSequenceMacro type("36118008", "SCT", "Pneumothorax");
  check_ok(DcmSegment::create(segment, options.segment_label.c_str(), category, type, DcmSegTypes::SAT_AUTOMATIC,
                              options.algorithm_name.c_str()),
           "creating the segment", out_path);
  segment->setRecommendedDisplayCIELabValue(34885, 53485, 50171);  // red
  Uint16 segment_number = 0;
  if (seg->addSegment(segment, segment_number).bad()) {
    delete segment;
    PNEUMO_FAIL("DICOM SEG '", out_path, "': adding the segment failed");
  }

  if (source.has_spacing()) {
    FGPixelMeasures measures;
    char spacing[64];
    std::snprintf(spacing, sizeof spacing, "%.10g\\%.10g", source.row_spacing_mm, source.column_spacing_mm);
    check_ok(measures.setPixelSpacing(spacing), "setting the pixel spacing", out_path);
    check_ok(seg->addForAllFrames(measures), "adding pixel measures", out_path);
  }

  char dim_uid[100];
  dcmGenerateUniqueIdentifier(dim_uid, SITE_INSTANCE_UID_ROOT);
  check_ok(seg->getDimensions().addDimensionIndex(DCM_ReferencedSegmentNumber, dim_uid,
                                                  DCM_SegmentIdentificationSequence, "ReferencedSegmentNumber"),
           "adding the dimension index", out_path);

  FGFrameContent frame_content;
  check_ok(frame_content.setDimensionIndexValues(segment_number, 0), "setting the dimension index", out_path);
  FGSegmentation frame_segment;
  check_ok(frame_segment.setReferencedSegmentNumber(segment_number), "setting the segment number", out_path);
  ImageSOPInstanceReferenceMacro source_ref;
  check_ok(source_ref.setReferencedSOPClassUID(source.sop_class_uid.c_str()), "referencing the source class", out_path);
  check_ok(source_ref.setReferencedSOPInstanceUID(source.sop_instance_uid.c_str()), "referencing the source", out_path);
  OFVector<ImageSOPInstanceReferenceMacro> sources;
  sources.push_back(source_ref);
  std::unique_ptr<FGDerivationImage> derivation(
      DcmSegmentation::createDerivationImageFG(sources, "pneumothorax segmentation by pneumo"));
  PNEUMO_CHECK(derivation != nullptr, "DICOM SEG '", out_path, "': creating the derivation image group failed");
  OFVector<FGBase*> per_frame;
  per_frame.push_back(&frame_content);
  per_frame.push_back(&frame_segment);
  per_frame.push_back(derivation.get());
  std::vector<Uint8> bits(mask.pixels.size());
  for (size_t i = 0; i < bits.size(); ++i) bits[i] = mask.pixels[i] != 0 ? 1 : 0;
  check_ok(seg->addFrame(bits.data(), segment_number, per_frame), "adding the frame", out_path);

  IODReferences refs;
  refs.add(new IODImageReference(str(sds, DCM_PatientID).c_str(), source.study_instance_uid.c_str(),
                                 source.series_instance_uid.c_str(), source.sop_instance_uid.c_str(),
                                 source.sop_class_uid.c_str()));
  seg->getCommonInstanceReference().addReferences(refs, source.study_instance_uid.c_str());

  DcmFileFormat out;
  check_ok(seg->writeDataset(*out.getDataset()), "building the data set", out_path);
  // Without a Frame of Reference UID, DCMTK still writes the module's empty Type 2 attribute: drop it.
  if (frame_of_reference.empty()) out.getDataset()->findAndDeleteElement(DCM_PositionReferenceIndicator);
  // General Image module, Type 2C: a SEG without plane orientation (a projection X-ray's) needs Patient
  // Orientation; the mask has the source's geometry, so the source's value (empty when it states none).
  // dciodvfy reported its absence.
  OFString orientation;
  sds.findAndGetOFStringArray(DCM_PatientOrientation, orientation);
  check_ok(out.getDataset()->putAndInsertString(DCM_PatientOrientation, orientation.c_str()), "setting PatientOrientation",
           out_path);
  // DcmFileFormat::saveFile's steps into memory (a buffer stream, drained whenever DCMTK fills it), then one
  // atomic write: never a half-written SEG under the final name.
  const E_TransferSyntax xfer = EXS_LittleEndianExplicit;
  check_ok(out.validateMetaInfo(xfer, EWM_createNewMeta), "building the meta header", out_path);
  std::string encoded;
  std::vector<char> chunk(1 << 16);
  DcmOutputBufferStream stream(chunk.data(), chunk.size());
  out.transferInit();
  OFCondition written = EC_StreamNotifyClient;
  while (written == EC_StreamNotifyClient) {
    written = out.write(stream, xfer, EET_ExplicitLength, nullptr, EGL_recalcGL, EPD_noChange, 0, 0, 0,
                        EWM_createNewMeta);
    if (written == EC_Normal) stream.flush();
    void* data = nullptr;
    offile_off_t length = 0;
    stream.flushBuffer(data, length);
    encoded.append(static_cast<const char*>(data), static_cast<size_t>(length));
  }
  out.transferEnd();
  check_ok(written, "encoding the file", out_path);
  write_file_atomic(out_path, encoded);
#else
  PNEUMO_FAIL("cannot write DICOM SEG '", out_path, "': this pneumo was built without DCMTK (install libdcmtk-dev and "
              "reconfigure)");
#endif
}

DicomSegInfo read_dicom_seg(const std::string& path) {
#if PNEUMO_SEG_OK
  DicomSegInfo info;
  DcmFileFormat ff;
  const OFCondition loaded = ff.loadFile(path.c_str());
  if (loaded.bad()) PNEUMO_FAIL("cannot read DICOM SEG '", path, "': ", loaded.text());
  DcmDataset& ds = *ff.getDataset();
  info.sop_class_uid = str(ds, DCM_SOPClassUID);
  info.sop_instance_uid = str(ds, DCM_SOPInstanceUID);
  info.study_instance_uid = str(ds, DCM_StudyInstanceUID);
  info.series_instance_uid = str(ds, DCM_SeriesInstanceUID);
  info.patient_id = str(ds, DCM_PatientID);
  info.segmentation_type = str(ds, DCM_SegmentationType);
  DcmItem* series_item = nullptr;
  if (ds.findAndGetSequenceItem(DCM_ReferencedSeriesSequence, series_item, 0).good() && series_item)
    info.referenced_series_uid = str(*series_item, DCM_SeriesInstanceUID);
  DcmItem* per_frame = nullptr;
  if (ds.findAndGetSequenceItem(DCM_PerFrameFunctionalGroupsSequence, per_frame, 0).good() && per_frame) {
    DcmItem* derivation = nullptr;
    DcmItem* source = nullptr;
    if (per_frame->findAndGetSequenceItem(DCM_DerivationImageSequence, derivation, 0).good() && derivation &&
        derivation->findAndGetSequenceItem(DCM_SourceImageSequence, source, 0).good() && source) {
      info.referenced_sop_instance_uid = str(*source, DCM_ReferencedSOPInstanceUID);
      info.referenced_sop_class_uid = str(*source, DCM_ReferencedSOPClassUID);
    }
  }
  DcmSegmentation* raw = nullptr;
  const OFCondition parsed = DcmSegmentation::loadDataset(ds, raw);
  std::unique_ptr<DcmSegmentation> seg(raw);
  if (parsed.bad() || !seg) PNEUMO_FAIL("cannot read DICOM SEG '", path, "': ", parsed.text());
  Uint16 rows = 0, cols = 0;
  ds.findAndGetUint16(DCM_Rows, rows);
  ds.findAndGetUint16(DCM_Columns, cols);
  info.rows = rows;
  info.columns = cols;
  info.frames = seg->getNumberOfFrames();
  info.segments = seg->getNumberOfSegments();
  if (DcmSegment* s = seg->getSegment(1)) {
    OFString label;
    if (s->getSegmentLabel(label).good()) info.segment_label = label.c_str();
  }
  if (info.frames >= 1 && rows > 0 && cols > 0) {
    const DcmIODTypes::Frame* frame = seg->getFrame(0);
    PNEUMO_CHECK(frame != nullptr && frame->pixData != nullptr, "DICOM SEG '", path, "': frame 1 has no pixel data");
    std::unique_ptr<DcmIODTypes::Frame> unpacked(DcmSegUtils::unpackBinaryFrame(frame, rows, cols));
    PNEUMO_CHECK(unpacked && unpacked->length >= static_cast<size_t>(rows) * cols, "DICOM SEG '", path,
                 "': frame 1 could not be unpacked");
    info.frame = Image(rows, cols, 1);
    for (size_t i = 0; i < info.frame.pixels.size(); ++i) info.frame.pixels[i] = unpacked->pixData[i] ? 255 : 0;
  }
  return info;
#else
  PNEUMO_FAIL("cannot read DICOM SEG '", path, "': this pneumo was built without DCMTK");
#endif
}

}  // namespace pneumo::aug
