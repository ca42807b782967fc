// Competition label files: the reader for train-rle.csv (and any "ImageId,EncodedPixels" file such as a
// submission or a prediction CSV) with every quirk of the real files, and the submission writer.
// Quirks handled: UTF-8 BOM; CRLF or LF; a header "ImageId,EncodedPixels" (any case, spaces, quotes, e.g.
// "ImageId, EncodedPixels") or none; values with a leading space (" -1", " 175349 7 ..."); several rows per
// image (one per pneumothorax instance) merged into one mask; blank lines. Every RLE is checked on reading;
// errors name the file, the line and the image id.
#pragma once
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "augment/image.h"
#include "train/rle.h"

namespace pneumo::train {

struct RleEntry {
  std::string rle;        // as written in the file, outer spaces trimmed ("-1" for empty)
  std::vector<RleRun> runs;  // parsed, absolute
  int line = 0;           // 1-based line of the file
};

class RleCsv {
 public:
  RleCsv() = default;
  const std::string& path() const { return path_; }
  bool had_header() const { return had_header_; }
  // Image ids in order of first appearance (each once).
  const std::vector<std::string>& ids() const { return ids_; }
  size_t size() const { return ids_.size(); }
  bool contains(const std::string& id) const { return rows_.count(id) > 0; }
  // The rows of one image (one per instance), in file order. Throws naming the file if the id is absent.
  const std::vector<RleEntry>& entries(const std::string& id) const;
  // True when any row of the image has a run.
  bool positive(const std::string& id) const;
  // Union of the image's runs, checked against the size (errors name file, line, image), sorted and merged.
  std::vector<RleRun> runs(const std::string& id, int height, int width) const;
  // The merged 0/255 mask.
  aug::Image mask(const std::string& id, int height, int width) const;
  // "file 'P', line L, image ID" for messages.
  std::string context(const std::string& id, int line) const;

  // Building (used by the reader and by tests).
  void add(const std::string& id, RleEntry entry);
  void set_path(const std::string& path, bool had_header) { path_ = path; had_header_ = had_header; }

 private:
  std::string path_;
  bool had_header_ = false;
  std::vector<std::string> ids_;
  std::unordered_map<std::string, std::vector<RleEntry>> rows_;
};

RleCsv read_rle_csv(const std::string& path);
// Same, from text already in memory; `name` stands for the file in messages.
RleCsv parse_rle_csv(const std::string& text, const std::string& name);

// Writes "ImageId,EncodedPixels" then one "id,rle" row per entry ("-1" for an empty mask), LF endings, no BOM.
// Atomic (write_file_atomic, kernels/atomic_file.h).
void write_rle_csv(const std::string& path, const std::vector<std::pair<std::string, std::string>>& rows);

}  // namespace pneumo::train
