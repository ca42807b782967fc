// `pneumo rle`: competition RLE utilities. encode mask PNGs to RLE strings, decode an RLE (given or taken
// from a CSV row) to a mask PNG, and convert a folder of mask PNGs to a competition CSV.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "augment/image.h"
#include "tools/pneumo/command.h"
#include "train/rle.h"
#include "train/rle_csv.h"

namespace {

namespace fs = std::filesystem;
using namespace pneumo;

struct RleOptions {
  std::vector<std::string> masks;            // encode
  std::string rle, rle_flag, csv, id, out;  // decode; out also folder-to-csv
  std::string folder;                        // folder-to-csv
  int height = 1024, width = 1024;
  double threshold = 127;
};

int run_encode(const RleOptions& o) {
  // Every mask is read and encoded before anything is printed: a bad file fails the command with no rows out.
  std::vector<std::string> rows;
  for (const std::string& path : o.masks) {
    const aug::Image m = aug::read_image(path);
    if (m.channels != 1) cli::user_error(path, ": a mask must have 1 channel (grey), this one has ", m.channels);
    rows.push_back(train::rle_encode(m, static_cast<float>(o.threshold)));
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows.size() > 1) std::printf("%s,", fs::path(o.masks[i]).stem().string().c_str());
    std::printf("%s\n", rows[i].c_str());
  }
  return 0;
}

int run_decode(const RleOptions& o) {
  aug::Image mask;
  if (!o.csv.empty()) {
    if (o.id.empty()) cli::usage_error("--csv needs --id IMAGE_ID");
    const train::RleCsv csv = train::read_rle_csv(o.csv);
    mask = csv.mask(o.id, o.height, o.width);
  } else {
    if (!o.rle.empty() && !o.rle_flag.empty()) cli::usage_error("give the RLE once: as an argument or with --rle");
    const std::string rle = o.rle_flag.empty() ? o.rle : o.rle_flag;
    if (rle.empty()) cli::usage_error("give the RLE (an argument or --rle \"...\") or --csv FILE --id ID");
    mask = train::rle_decode(rle, o.height, o.width, "RLE");
  }
  aug::write_png(o.out, mask);
  int64_t on = 0;
  for (uint8_t v : mask.pixels) on += v != 0;
  std::printf("wrote %s (%dx%d, %lld mask pixels)\n", o.out.c_str(), o.height, o.width, static_cast<long long>(on));
  return 0;
}

int run_folder_to_csv(const RleOptions& o) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(o.folder)) {
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg")) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) cli::user_error("no .png/.jpg mask in '", o.folder, "'");
  std::vector<std::pair<std::string, std::string>> rows;
  size_t positives = 0;
  for (const fs::path& f : files) {
    const aug::Image m = aug::read_image(f.string());
    if (m.channels != 1) cli::user_error(f.string(), ": a mask must have 1 channel (grey), this one has ", m.channels);
    rows.emplace_back(f.stem().string(), train::rle_encode(m, static_cast<float>(o.threshold)));
    positives += rows.back().second != "-1";
  }
  train::write_rle_csv(o.out, rows);
  std::printf("wrote %s: %zu masks, %zu non-empty\n", o.out.c_str(), rows.size(), positives);
  return 0;
}

PNEUMO_COMMAND("rle", "competition RLE: encode a mask, decode an RLE to PNG, mask folder to CSV", [](CLI::App& app) {
  auto o = std::make_shared<RleOptions>();
  CLI::App& encode = cli::subcommand(app, "encode", "print the RLE of mask PNGs (several: one 'id,rle' row each)");
  cli::positionals(encode, "masks", o->masks, "mask PNG/JPEG files (1 channel)").required();
  cli::threshold_option(encode, o->threshold);

  CLI::App& decode = cli::subcommand(app, "decode", "write the mask PNG of an RLE (an argument, --rle, or a CSV row)");
  cli::positional(decode, "rle", o->rle, "the RLE text");
  cli::option(decode, "--rle", o->rle_flag, "the RLE text (when it starts with '-', e.g. -1)");
  auto csv = cli::option(decode, "--csv", o->csv, "a competition CSV to take the RLE from").existing_file();
  cli::option(decode, "--id", o->id, "image id of the CSV row(s); several rows of one id are merged").needs(csv);
  cli::out_option(decode, o->out, "mask PNG to write").required();
  cli::option(decode, "--height", o->height, "mask height in pixels", 1, 16384);
  cli::option(decode, "--width", o->width, "mask width in pixels", 1, 16384);

  CLI::App& folder = cli::subcommand(app, "folder-to-csv", "competition CSV of a folder of mask PNGs, -1 for empty");
  cli::positional(folder, "folder", o->folder, "folder of mask files (ImageId = file name without extension)")
      .required()
      .existing_dir();
  cli::out_option(folder, o->out, "CSV to write").required();
  cli::threshold_option(folder, o->threshold);

  cli::footer(app, "RLE: the competition format (relative starts, column-major pixel order, -1 for empty).");
  return [o, &encode, &decode, &folder] {
    if (cli::chosen(encode)) return run_encode(*o);
    if (cli::chosen(decode)) return run_decode(*o);
    if (cli::chosen(folder)) return run_folder_to_csv(*o);
    cli::usage_error("expected encode, decode or folder-to-csv");
  };
});

}  // namespace
