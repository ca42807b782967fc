// `pneumo rle`: competition RLE utilities. encode a mask PNG to an RLE string, decode an RLE (given or taken
// from a CSV row) to a mask PNG, and convert a folder of mask PNGs to a competition CSV.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "augment/image.h"
#include "kernels/check.h"
#include "tools/pneumo/command.h"
#include "train/rle.h"
#include "train/rle_csv.h"

namespace {

namespace fs = std::filesystem;
using pneumo::cli::Args;

int run_rle(const Args& args) {
  const auto& pos = args.positionals();
  PNEUMO_CHECK(!pos.empty(), "pneumo rle: expected encode, decode or folder-to-csv (see pneumo rle --help)");
  const std::string mode = pos[0];
  if (mode == "encode") {
    const double threshold = args.get_double("threshold", 127);
    args.finish();
    PNEUMO_CHECK(pos.size() >= 2, "pneumo rle encode: give one or more mask PNG files");
    for (size_t i = 1; i < pos.size(); ++i) {
      const pneumo::aug::Image m = pneumo::aug::read_image(pos[i]);
      std::string rle = pneumo::train::rle_encode(m, static_cast<float>(threshold));
      if (pos.size() > 2) std::printf("%s,", fs::path(pos[i]).stem().string().c_str());
      std::printf("%s\n", rle.c_str());
    }
    return 0;
  }
  if (mode == "decode") {
    const int height = static_cast<int>(args.get_int("height", 1024));
    const int width = static_cast<int>(args.get_int("width", 1024));
    const std::string out = args.require("out");
    const std::string csv_path = args.get("csv", "");
    const std::string id = args.get("id", "");
    std::string rle = args.get("rle", "");
    args.finish();
    pneumo::aug::Image mask;
    if (!csv_path.empty()) {
      PNEUMO_CHECK(!id.empty(), "pneumo rle decode: --csv needs --id IMAGE_ID");
      const pneumo::train::RleCsv csv = pneumo::train::read_rle_csv(csv_path);
      mask = csv.mask(id, height, width);
    } else {
      if (rle.empty() && pos.size() >= 2) rle = pos[1];
      PNEUMO_CHECK(!rle.empty(), "pneumo rle decode: give the RLE (--rle \"...\") or --csv FILE --id ID");
      mask = pneumo::train::rle_decode(rle, height, width, "--rle");
    }
    pneumo::aug::write_png(out, mask);
    int64_t on = 0;
    for (uint8_t v : mask.pixels) on += v != 0;
    std::printf("wrote %s (%dx%d, %lld mask pixels)\n", out.c_str(), height, width, static_cast<long long>(on));
    return 0;
  }
  if (mode == "folder-to-csv") {
    const double threshold = args.get_double("threshold", 127);
    const std::string out = args.require("out");
    args.finish();
    PNEUMO_CHECK(pos.size() == 2, "pneumo rle folder-to-csv: give one mask folder");
    PNEUMO_CHECK(fs::is_directory(pos[1]), "pneumo rle folder-to-csv: '", pos[1], "' is not a folder");
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(pos[1])) {
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg")) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    PNEUMO_CHECK(!files.empty(), "pneumo rle folder-to-csv: no .png/.jpg mask in '", pos[1], "'");
    std::vector<std::pair<std::string, std::string>> rows;
    size_t positives = 0;
    for (const fs::path& f : files) {
      const pneumo::aug::Image m = pneumo::aug::read_image(f.string());
      rows.emplace_back(f.stem().string(), pneumo::train::rle_encode(m, static_cast<float>(threshold)));
      positives += rows.back().second != "-1";
    }
    pneumo::train::write_rle_csv(out, rows);
    std::printf("wrote %s: %zu masks, %zu non-empty\n", out.c_str(), rows.size(), positives);
    return 0;
  }
  PNEUMO_FAIL("pneumo rle: unknown mode '", mode, "' (encode, decode, folder-to-csv)");
}

PNEUMO_COMMAND("rle", "competition RLE: encode a mask, decode an RLE to PNG, mask folder to CSV",
               "  pneumo rle encode MASK.png [MASK2.png ...] [--threshold 127]\n"
               "      prints the RLE (pixels > threshold; with several files: one 'id,rle' row each)\n"
               "  pneumo rle decode \"RLE\" | --rle \"RLE\" | --csv FILE --id IMAGE_ID  --out mask.png\n"
               "      [--height 1024] [--width 1024]   (a CSV id with several rows is merged)\n"
               "  pneumo rle folder-to-csv MASK_DIR --out labels.csv [--threshold 127]\n"
               "      one row per mask file (ImageId = file name without extension), -1 for empty masks\n"
               "RLE: the competition format (relative starts, column-major pixel order, -1 for empty).",
               run_rle);

}  // namespace
