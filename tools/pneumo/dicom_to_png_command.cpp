// `pneumo dicom-to-png IN OUT`: DICOM to 8-bit gray PNG the way the competition's PNGs were made (stored 8-bit
// values as they are; wider values windowed, see docs/dicom.md). IN is a file or a folder; each file gets one
// line saying how it was converted. A file that fails is reported and the others are still converted.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "augment/dicom.h"
#include "augment/image.h"
#include "tools/pneumo/command.h"

namespace {

namespace fs = std::filesystem;
using namespace pneumo;

struct DicomToPngOptions {
  std::string in, out;
};

// .dcm/.dicom, or any other file with the Part 10 signature ("DICM" at byte 128; PACS exports often have no
// extension).
bool is_dicom_file(const fs::path& p) {
  if (aug::has_dicom_extension(p.string())) return true;
  std::ifstream f(p, std::ios::binary);
  char b[132] = {};
  f.read(b, sizeof b);
  return f.gcount() == 132 && std::string(b + 128, 4) == "DICM";
}

std::string describe(const aug::DicomImage& d) {
  char buf[512];
  std::string conv = aug::dicom_conversion_name(d.conversion);
  if (d.conversion == aug::DicomConversion::Window) {
    char w[128];
    std::snprintf(w, sizeof w, " %g/%g %s", d.window_center, d.window_width, d.window_function.c_str());
    conv += w;
  }
  std::string spacing = "no pixel spacing";
  if (d.has_spacing()) {
    char s[128];
    std::snprintf(s, sizeof s, "%g x %g mm (%s)", d.row_spacing_mm, d.column_spacing_mm, d.spacing_source.c_str());
    spacing = s;
  }
  std::snprintf(buf, sizeof buf, "%dx%d %s %d-bit, %s, %s", d.image.width, d.image.height, d.photometric.c_str(),
                d.bits_stored, conv.c_str(), spacing.c_str());
  return buf;
}

int run_dicom_to_png(const DicomToPngOptions& o) {
  if (!aug::dicom_available())
    cli::user_error("this pneumo was built without DCMTK, so it cannot read DICOM (install libdcmtk-dev and rebuild)");
  std::vector<std::pair<fs::path, fs::path>> jobs;
  if (fs::is_directory(o.in)) {
    for (const auto& e : fs::directory_iterator(o.in))
      if (e.is_regular_file() && is_dicom_file(e.path())) jobs.emplace_back(e.path(), fs::path(o.out) / (e.path().stem().string() + ".png"));
    std::sort(jobs.begin(), jobs.end());
    if (jobs.empty()) cli::user_error("no DICOM file in '", o.in, "' (.dcm, .dicom, or 'DICM' at byte 128)");
    std::error_code ec;
    fs::create_directories(o.out, ec);
    if (!fs::is_directory(o.out)) cli::user_error("cannot create output folder '", o.out, "'");
  } else {
    if (!fs::exists(o.in)) cli::user_error("'", o.in, "' does not exist");
    const fs::path out = fs::is_directory(o.out) ? fs::path(o.out) / (fs::path(o.in).stem().string() + ".png") : fs::path(o.out);
    jobs.emplace_back(o.in, out);
  }
  if (jobs.size() == 1) {  // one file: its error is the command's one-line error
    const aug::DicomImage d = aug::read_dicom(jobs[0].first.string());
    aug::write_png(jobs[0].second.string(), d.image);
    std::printf("%s -> %s: %s\n", jobs[0].first.string().c_str(), jobs[0].second.string().c_str(), describe(d).c_str());
    return 0;
  }
  int failed = 0;
  for (const auto& [in, out] : jobs) {
    try {
      const aug::DicomImage d = aug::read_dicom(in.string());
      aug::write_png(out.string(), d.image);
      std::printf("%s -> %s: %s\n", in.string().c_str(), out.string().c_str(), describe(d).c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "pneumo dicom-to-png: %s\n", e.what());
      ++failed;
    }
  }
  std::printf("converted %zu of %zu files\n", jobs.size() - failed, jobs.size());
  if (failed) cli::user_error(failed, " of ", jobs.size(), " files could not be converted (see above)");
  return 0;
}

PNEUMO_COMMAND("dicom-to-png", "DICOM to 8-bit PNG as the competition's PNGs were made (a file or a folder)",
               [](CLI::App& app) {
                 auto o = std::make_shared<DicomToPngOptions>();
                 cli::positional(app, "in", o->in, "a DICOM file, or a folder of them").required();
                 cli::positional(app, "out", o->out, "the PNG to write (or a folder) for a file; a folder for a folder")
                     .required();
                 cli::footer(app,
                             "8-bit stored values are kept as they are (the competition's PNGs); wider ones go through\n"
                             "rescale, VOI LUT or window centre/width, else min-max; MONOCHROME1 is inverted.\n"
                             "See docs/dicom.md.");
                 return [o] { return run_dicom_to_png(*o); };
               });

}  // namespace
