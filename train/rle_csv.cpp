// Reader and writer for competition RLE CSV files (see rle_csv.h for the quirks handled).
#include "train/rle_csv.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "kernels/atomic_file.h"
#include "kernels/check.h"

namespace pneumo::train {

namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string unquote(const std::string& s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

const std::vector<RleEntry>& RleCsv::entries(const std::string& id) const {
  auto it = rows_.find(id);
  if (it == rows_.end()) PNEUMO_FAIL("file '", path_, "': no row for image ", id);
  return it->second;
}

bool RleCsv::positive(const std::string& id) const {
  for (const RleEntry& e : entries(id))
    if (!e.runs.empty()) return true;
  return false;
}

std::string RleCsv::context(const std::string& id, int line) const {
  return detail::concat("file '", path_, "', line ", line, ", image ", id);
}

std::vector<RleRun> RleCsv::runs(const std::string& id, int height, int width) const {
  std::vector<RleRun> all;
  for (const RleEntry& e : entries(id)) {
    check_runs_fit(e.runs, height, width, context(id, e.line));
    all.insert(all.end(), e.runs.begin(), e.runs.end());
  }
  return normalize_runs(std::move(all));
}

aug::Image RleCsv::mask(const std::string& id, int height, int width) const {
  aug::Image m(height, width, 1, 0);
  for (const RleEntry& e : entries(id)) paint_runs(e.runs, m, context(id, e.line));
  return m;
}

void RleCsv::add(const std::string& id, RleEntry entry) {
  auto it = rows_.find(id);
  if (it == rows_.end()) {
    ids_.push_back(id);
    rows_[id].push_back(std::move(entry));
  } else {
    it->second.push_back(std::move(entry));
  }
}

RleCsv parse_rle_csv(const std::string& text, const std::string& name) {
  RleCsv csv;
  size_t pos = 0;
  if (text.size() >= 3 && static_cast<unsigned char>(text[0]) == 0xEF && static_cast<unsigned char>(text[1]) == 0xBB &&
      static_cast<unsigned char>(text[2]) == 0xBF)
    pos = 3;
  int line_no = 0;
  bool first_content = true, had_header = false;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    const size_t comma = line.find(',');
    if (first_content) {
      first_content = false;
      const std::string f0 = lower(unquote(trim(line.substr(0, comma))));
      if (f0 == "imageid" || f0 == "image_id" || f0 == "id") {
        had_header = true;
        continue;
      }
    }
    if (comma == std::string::npos)
      PNEUMO_FAIL("file '", name, "', line ", line_no, ": expected 'ImageId,EncodedPixels', found no comma in '",
                  line.substr(0, 80), "'");
    const std::string id = unquote(trim(line.substr(0, comma)));
    if (id.empty()) PNEUMO_FAIL("file '", name, "', line ", line_no, ": empty ImageId");
    const std::string rle = unquote(trim(line.substr(comma + 1)));
    if (rle.find(',') != std::string::npos)
      PNEUMO_FAIL("file '", name, "', line ", line_no, ", image ", id, ": more than two columns");
    RleEntry entry;
    entry.rle = rle;
    entry.line = line_no;
    entry.runs = parse_rle(rle, detail::concat("file '", name, "', line ", line_no, ", image ", id));
    csv.add(id, std::move(entry));
  }
  csv.set_path(name, had_header);
  return csv;
}

RleCsv read_rle_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) PNEUMO_FAIL("cannot open RLE CSV file '", path, "': ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) PNEUMO_FAIL("cannot read RLE CSV file '", path, "'");
  return parse_rle_csv(ss.str(), path);
}

void write_rle_csv(const std::string& path, const std::vector<std::pair<std::string, std::string>>& rows) {
  // Checked before anything is written, so a bad id leaves no file behind.
  for (const auto& r : rows)
    PNEUMO_CHECK(!r.first.empty() && r.first.find_first_of(",\n\r") == std::string::npos,
                 "write_rle_csv '", path, "': bad image id '", r.first, "'");
  write_file_atomic(path, [&](std::ostream& out) {
    out << "ImageId,EncodedPixels\n";
    for (const auto& r : rows) out << r.first << ',' << (trim(r.second).empty() ? std::string("-1") : r.second) << '\n';
  });
}

}  // namespace pneumo::train
