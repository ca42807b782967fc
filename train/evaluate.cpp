#include "train/evaluate.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "augment/image.h"
#include "kernels/check.h"
#include "train/dataset.h"
#include "train/rle_csv.h"

namespace pneumo::train {

namespace fs = std::filesystem;

namespace {

// Either side: an RLE CSV or a mask folder.
struct Source {
  std::string path;
  bool folder = false;
  RleCsv csv;
  std::vector<std::string> ids;

  explicit Source(const std::string& p) : path(p), folder(fs::is_directory(p)) {
    if (folder) {
      for (const auto& e : fs::directory_iterator(p)) {
        const std::string ext = e.path().extension().string();
        if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg"))
          ids.push_back(e.path().stem().string());
      }
      std::sort(ids.begin(), ids.end());
      PNEUMO_CHECK(!ids.empty(), "folder '", p, "' holds no mask images");
    } else {
      PNEUMO_CHECK(fs::is_regular_file(p), "'", p, "' is neither a CSV file nor a folder");
      csv = read_rle_csv(p);
      ids = csv.ids();
    }
  }
  bool contains(const std::string& id) const {
    return folder ? !find_image_file(path, id).empty() : csv.contains(id);
  }
  aug::Image mask(const std::string& id, int h, int w) const {
    if (!folder) return csv.mask(id, h, w);
    const std::string file = find_image_file(path, id);
    PNEUMO_CHECK(!file.empty(), "no mask for '", id, "' in '", path, "'");
    aug::Image m = aug::read_image(file);
    return m;
  }
};

}  // namespace

Evaluation summarise(std::vector<std::string> ids, std::vector<DiceCounts> counts) {
  Evaluation e;
  e.images = static_cast<int64_t>(counts.size());
  double pos_sum = 0;
  for (const DiceCounts& c : counts) {
    e.truth_positive += c.truth > 0;
    e.pred_positive += c.pred > 0;
    e.false_positive_images += c.truth == 0 && c.pred > 0;
    e.false_negative_images += c.truth > 0 && c.pred == 0;
    if (c.truth > 0) pos_sum += c.dice();
  }
  e.metric = mean_dice(counts);
  e.dice_positive = e.truth_positive ? pos_sum / static_cast<double>(e.truth_positive) : 0.0;
  e.ids = std::move(ids);
  e.counts = std::move(counts);
  return e;
}

Evaluation evaluate(const std::string& pred_path, const std::string& truth_path, int height, int width,
                    bool only_predicted) {
  const Source truth(truth_path), pred(pred_path);
  const std::set<std::string> truth_ids(truth.ids.begin(), truth.ids.end());
  for (const std::string& id : pred.ids)
    PNEUMO_CHECK(only_predicted || truth_ids.count(id), "image '", id, "' of '", pred_path, "' is not in the truth '",
                 truth_path, "'");
  std::vector<DiceCounts> counts;
  std::vector<std::string> ids;
  for (const std::string& id : truth.ids) {
    if (only_predicted && !pred.contains(id)) continue;
    ids.push_back(id);
    PNEUMO_CHECK(pred.contains(id), "image '", id, "' of the truth has no prediction in '", pred_path, "'");
    if (!truth.folder && !pred.folder) {
      counts.push_back(dice_counts(pred.csv.runs(id, height, width), truth.csv.runs(id, height, width)));
      continue;
    }
    int h = height, w = width;
    aug::Image t, p;
    if (truth.folder) {
      t = truth.mask(id, 0, 0);
      h = t.height;
      w = t.width;
      p = pred.mask(id, h, w);
    } else {
      p = pred.mask(id, 0, 0);
      h = p.height;
      w = p.width;
      t = truth.mask(id, h, w);
    }
    PNEUMO_CHECK(p.height == t.height && p.width == t.width, "image '", id, "': prediction ", p.height,
                 "x", p.width, ", truth ", t.height, "x", t.width);
    counts.push_back(dice_counts(p, t));
  }
  PNEUMO_CHECK(!ids.empty(), "no image of '", truth_path, "' is predicted in '", pred_path, "'");
  return summarise(std::move(ids), std::move(counts));
}

}  // namespace pneumo::train
