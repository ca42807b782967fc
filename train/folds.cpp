// Fold files of the reference, stratified fold generation and the reference's split rules.
#include "train/folds.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unordered_map>
#include <unordered_set>

#include "kernels/atomic_file.h"
#include "kernels/check.h"
#include "kernels/philox.h"

namespace pneumo::train {

namespace fs = std::filesystem;

std::string fold_entry_id(const std::string& entry) {
  std::string s = entry;
  const size_t slash = s.find_last_of("/\\");
  if (slash != std::string::npos) s = s.substr(slash + 1);
  for (const char* ext : {".png", ".jpg", ".jpeg", ".dcm", ".PNG", ".JPG", ".JPEG", ".DCM"}) {
    const size_t n = std::strlen(ext);
    if (s.size() > n && s.compare(s.size() - n, n, ext) == 0) return s.substr(0, s.size() - n);
  }
  return s;
}

namespace {

std::vector<std::string> read_list(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) PNEUMO_FAIL("cannot open fold file '", path, "': ", std::strerror(errno));
  std::vector<std::string> ids;
  std::unordered_map<std::string, int> seen;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line_no == 1 && line.size() >= 3 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line = line.substr(3);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    size_t b = 0;
    while (b < line.size() && (line[b] == ' ' || line[b] == '\t')) ++b;
    line = line.substr(b);
    if (line.empty()) continue;
    const std::string id = fold_entry_id(line);
    if (id.empty())  // e.g. "images/": nothing left once folders and the extension are removed
      PNEUMO_FAIL("fold file '", path, "', line ", line_no, ": the entry names no image");
    auto it = seen.find(id);
    if (it != seen.end())
      PNEUMO_FAIL("fold file '", path, "', line ", line_no, ": image ", id, " already listed on line ", it->second);
    seen[id] = line_no;
    ids.push_back(id);
  }
  return ids;
}

}  // namespace

FoldSplit read_fold(const std::string& dir, int k) {
  const std::string base = (fs::path(dir) / ("fold" + std::to_string(k))).string();
  FoldSplit split;
  split.train = read_list(base + "/train.txt");
  split.val = read_list(base + "/val.txt");
  std::unordered_set<std::string> train_set(split.train.begin(), split.train.end());
  for (const std::string& id : split.val)
    PNEUMO_CHECK(!train_set.count(id), "fold '", base, "': image ", id, " is in both train.txt and val.txt");
  return split;
}

int count_folds(const std::string& dir) {
  int k = 0;
  while (fs::exists(fs::path(dir) / ("fold" + std::to_string(k)) / "train.txt")) ++k;
  return k;
}

std::vector<int64_t> philox_permutation(int64_t n, uint64_t seed, uint64_t stream) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    // 64 random bits from two lanes; the modulo bias is below 2^-40 for any realistic n.
    const Philox4 r = philox4x32_10(static_cast<uint64_t>(i), stream, seed);
    const uint64_t bits = (static_cast<uint64_t>(r.v[0]) << 32) | r.v[1];
    const int64_t j = static_cast<int64_t>(bits % static_cast<uint64_t>(i + 1));
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(j)]);
  }
  return p;
}

std::vector<int> stratified_folds(const std::vector<bool>& positive, int k, uint64_t seed) {
  PNEUMO_CHECK(k >= 2, "stratified_folds: need at least 2 folds, got ", k);
  const int64_t n = static_cast<int64_t>(positive.size());
  PNEUMO_CHECK(n >= k, "stratified_folds: ", n, " images cannot make ", k, " folds");
  std::vector<int> fold(static_cast<size_t>(n), -1);
  int next = 0;  // negatives continue the round-robin where positives stopped, so fold sizes differ by <= 1
  for (int cls = 1; cls >= 0; --cls) {
    std::vector<int64_t> members;
    for (int64_t i = 0; i < n; ++i)
      if (positive[static_cast<size_t>(i)] == (cls == 1)) members.push_back(i);
    const std::vector<int64_t> perm = philox_permutation(static_cast<int64_t>(members.size()), seed, static_cast<uint64_t>(cls));
    for (int64_t j : perm) {
      fold[static_cast<size_t>(members[static_cast<size_t>(j)])] = next;
      next = (next + 1) % k;
    }
  }
  return fold;
}

FoldSplit make_split(const std::vector<std::string>& ids, const std::vector<bool>& positive,
                     const std::vector<int>& assignment, int fold, FoldTask task,
                     const std::vector<std::string>& extra_train) {
  PNEUMO_CHECK(ids.size() == positive.size() && ids.size() == assignment.size(), "make_split: ", ids.size(), " ids, ",
               positive.size(), " labels and ", assignment.size(), " fold numbers must match");
  FoldSplit s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (task == FoldTask::Segmentation && !positive[i]) continue;
    (assignment[i] == fold ? s.val : s.train).push_back(ids[i]);
  }
  std::unordered_set<std::string> val(s.val.begin(), s.val.end());
  for (const std::string& id : extra_train) {
    PNEUMO_CHECK(!val.count(id), "make_split: extra training image ", id, " is in the validation fold ", fold);
    s.train.push_back(id);
  }
  return s;
}

void write_folds(const std::string& dir, const std::vector<FoldSplit>& folds) {
  for (size_t k = 0; k < folds.size(); ++k) {
    const fs::path base = fs::path(dir) / ("fold" + std::to_string(k));
    std::error_code ec;
    fs::create_directories(base, ec);
    PNEUMO_CHECK(!ec, "cannot create folder '", base.string(), "': ", ec.message());
    for (int part = 0; part < 2; ++part) {
      const std::vector<std::string>& list = part == 0 ? folds[k].train : folds[k].val;
      const std::string path = (base / (part == 0 ? "train.txt" : "val.txt")).string();
      write_file_atomic(path, [&](std::ostream& out) {
        for (const std::string& id : list) out << id << ".png\n";
      });
    }
  }
}

}  // namespace pneumo::train
