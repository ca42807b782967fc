// Submissions: the ids file (a sample submission: UTF-8 BOM or not, header or not, first column = ImageId),
// per-image probability CSVs (`image,probability`, as `pneumo predict` and `pneumo stack` write them), the
// reference's decision (stacked probability > 0.65 -> the ensemble mask, else "-1") and the writer of
// `ImageId,EncodedPixels` in the ids file's order with every id exactly once.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace pneumo::train {

// Image ids of an ids file in order. Errors name the file and line: an empty id, a duplicate (with the line
// of its first appearance), or no ids at all.
std::vector<std::string> read_ids_file(const std::string& path);

// `image,probability` rows (header optional, BOM/CRLF tolerated). Errors name file and line: a malformed
// number, a value outside [0, 1], a duplicate image.
std::map<std::string, double> read_probability_csv(const std::string& path);
// Same, keeping the file's order.
std::vector<std::pair<std::string, double>> read_probability_rows(const std::string& path);
void write_probability_csv(const std::string& path, const std::vector<std::pair<std::string, double>>& rows);

// Writes `text` to a temporary file beside `path`, then renames it over `path` (never half-written).
void write_text_atomic(const std::string& path, const std::string& text);

// The reference's gate: keep the mask when the image's probability is above the threshold (0.65 stacked,
// 0.7 for a single classifier).
inline bool keep_mask(double probability, double threshold) { return probability > threshold; }

struct SubmissionSummary {
  size_t rows = 0, with_mask = 0, gated_empty = 0, mask_empty = 0;
};

// Builds the rows: for each id of `ids` in order, the RLE of masks_dir/<id>.png (0/255, > 127) when
// `probabilities` is empty or keep_mask(probabilities[id], threshold), else "-1". Every id needs a
// probability (when given) and a mask file (when kept); probability ids absent from `ids` are an error.
std::vector<std::pair<std::string, std::string>> build_submission(const std::vector<std::string>& ids,
                                                                  const std::string& masks_dir,
                                                                  const std::map<std::string, double>& probabilities,
                                                                  double threshold, const std::string& ids_name,
                                                                  SubmissionSummary* summary = nullptr);

}  // namespace pneumo::train
