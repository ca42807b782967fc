#include "train/submission.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>

#include "augment/image.h"
#include "kernels/atomic_file.h"
#include "kernels/check.h"
#include "train/dataset.h"
#include "train/rle.h"

namespace pneumo::train {

namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '"' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '"' || s[e - 1] == '\r')) --e;
  return s.substr(b, e - b);
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  PNEUMO_CHECK(f.good(), "cannot open '", path, "'");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  if (!lines.empty() && lines[0].rfind("\xEF\xBB\xBF", 0) == 0) lines[0] = lines[0].substr(3);
  return lines;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::vector<std::string> read_ids_file(const std::string& path) {
  const std::vector<std::string> lines = read_lines(path);
  std::vector<std::string> ids;
  std::unordered_map<std::string, size_t> first;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (trim(lines[i]).empty()) continue;
    const std::string id = trim(lines[i].substr(0, lines[i].find(',')));
    if (ids.empty() && first.empty() && (lower(id) == "imageid" || lower(id) == "image")) continue;  // header
    PNEUMO_CHECK(!id.empty(), "ids file '", path, "', line ", i + 1, ": empty image id");
    auto [it, fresh] = first.emplace(id, i + 1);
    PNEUMO_CHECK(fresh, "ids file '", path, "', line ", i + 1, ": image '", id, "' appears again (first on line ",
                 it->second, "); a submission needs every id exactly once");
    ids.push_back(id);
  }
  PNEUMO_CHECK(!ids.empty(), "ids file '", path, "' holds no image ids");
  return ids;
}

std::vector<std::pair<std::string, double>> read_probability_rows(const std::string& path) {
  const std::vector<std::string> lines = read_lines(path);
  std::vector<std::pair<std::string, double>> rows;
  std::set<std::string> seen;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (trim(lines[i]).empty()) continue;
    const size_t comma = lines[i].find(',');
    PNEUMO_CHECK(comma != std::string::npos, "'", path, "', line ", i + 1, ": expected 'image,probability'");
    const std::string id = trim(lines[i].substr(0, comma)), value = trim(lines[i].substr(comma + 1));
    if (rows.empty() && seen.empty() && (lower(id) == "image" || lower(id) == "imageid")) continue;  // header
    char* end = nullptr;
    const double p = std::strtod(value.c_str(), &end);
    PNEUMO_CHECK(!value.empty() && end && *end == 0 && std::isfinite(p), "'", path, "', line ", i + 1, ": '", value,
                 "' is not a number");
    PNEUMO_CHECK(p >= 0 && p <= 1, "'", path, "', line ", i + 1, ": probability ", p, " is outside [0, 1]");
    PNEUMO_CHECK(!id.empty(), "'", path, "', line ", i + 1, ": empty image id");
    PNEUMO_CHECK(seen.insert(id).second, "'", path, "', line ", i + 1, ": image '", id, "' appears twice");
    rows.emplace_back(id, p);
  }
  PNEUMO_CHECK(!rows.empty(), "'", path, "' holds no rows");
  return rows;
}

std::map<std::string, double> read_probability_csv(const std::string& path) {
  const auto rows = read_probability_rows(path);
  return std::map<std::string, double>(rows.begin(), rows.end());
}

void write_text_atomic(const std::string& path, const std::string& text) {
  const fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  write_file_atomic(path, text);
}

void write_probability_csv(const std::string& path, const std::vector<std::pair<std::string, double>>& rows) {
  std::string text = "image,probability\n";
  char buf[64];
  for (const auto& [id, p] : rows) {
    std::snprintf(buf, sizeof(buf), ",%.7f\n", p);
    text += id + buf;
  }
  write_text_atomic(path, text);
}

std::vector<std::pair<std::string, std::string>> build_submission(const std::vector<std::string>& ids,
                                                                  const std::string& masks_dir,
                                                                  const std::map<std::string, double>& probabilities,
                                                                  double threshold, const std::string& ids_name,
                                                                  SubmissionSummary* summary) {
  const std::set<std::string> id_set(ids.begin(), ids.end());
  for (const auto& [id, p] : probabilities)
    PNEUMO_CHECK(id_set.count(id), "image '", id, "' has a probability but is not in the ids file '",
                 ids_name, "'");
  SubmissionSummary s;
  std::vector<std::pair<std::string, std::string>> rows;
  rows.reserve(ids.size());
  for (const std::string& id : ids) {
    bool keep = true;
    if (!probabilities.empty()) {
      auto it = probabilities.find(id);
      PNEUMO_CHECK(it != probabilities.end(), "no probability for image '", id, "' (of '", ids_name, "')");
      keep = keep_mask(it->second, threshold);
    }
    std::string rle = "-1";
    if (keep) {
      const std::string file = find_image_file(masks_dir, id, "");
      PNEUMO_CHECK(!file.empty(), "no mask '", masks_dir, "/", id, ".png' for image '", id, "'");
      const aug::Image mask = aug::read_image(file);
      rle = rle_encode(mask, 127.0f);
      if (rle == "-1") ++s.mask_empty;
      else ++s.with_mask;
    } else {
      ++s.gated_empty;
    }
    rows.emplace_back(id, rle);
  }
  s.rows = rows.size();
  if (summary) *summary = s;
  return rows;
}

}  // namespace pneumo::train
