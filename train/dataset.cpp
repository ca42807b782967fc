// The datasets of dataset.h. File lookups happen at load time so a missing file is reported by the loader
// with its path; the constructors only check that the folders exist.
#include "train/dataset.h"

#include <algorithm>
#include <filesystem>

#include "kernels/check.h"

namespace pneumo::train {

namespace fs = std::filesystem;

std::string find_image_file(const std::string& dir, const std::string& stem, const std::string& ext) {
  if (!ext.empty()) {
    std::string p = (fs::path(dir) / (stem + ext)).string();
    return fs::exists(p) ? p : std::string();
  }
  for (const char* e : {".png", ".jpg", ".jpeg", ".dcm"}) {
    std::string p = (fs::path(dir) / (stem + e)).string();
    if (fs::exists(p)) return p;
  }
  return "";
}

namespace {

void require_dir(const std::string& dir, const char* what) {
  std::error_code ec;
  PNEUMO_CHECK(fs::is_directory(dir, ec), what, " folder '", dir, "' does not exist or is not a folder");
}

bool is_image_name(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".dcm" || ext == ".dicom";
}

}  // namespace

// ---- RleCsvDataset -----------------------------------------------------------------------------------

RleCsvDataset::RleCsvDataset(std::string images_dir, std::shared_ptr<const RleCsv> labels, std::vector<std::string> ids,
                             std::string ext)
    : dir_(std::move(images_dir)), ext_(std::move(ext)), labels_(std::move(labels)), ids_(std::move(ids)) {
  PNEUMO_CHECK(labels_ != nullptr, "RleCsvDataset: no labels");
  require_dir(dir_, "image");
  if (ids_.empty()) ids_ = labels_->ids();
  for (const std::string& id : ids_)
    PNEUMO_CHECK(labels_->contains(id), "RleCsvDataset: image ", id, " has no row in '", labels_->path(), "'");
}

RleCsvDataset::RleCsvDataset(std::string images_dir, const std::string& csv_path, std::vector<std::string> ids,
                             std::string ext)
    : RleCsvDataset(std::move(images_dir), std::make_shared<RleCsv>(read_rle_csv(csv_path)), std::move(ids),
                    std::move(ext)) {}

std::string RleCsvDataset::image_path(size_t i) const {
  const std::string& id = ids_.at(i);
  std::string p = find_image_file(dir_, id, ext_);
  if (p.empty())
    PNEUMO_FAIL("image file for ", id, " not found: ",
                (fs::path(dir_) / (id + (ext_.empty() ? std::string(".png|.jpg|.jpeg|.dcm") : ext_))).string());
  return p;
}

Sample RleCsvDataset::load(size_t i) const {
  Sample s;
  s.image = aug::read_image(image_path(i));
  s.mask = labels_->mask(ids_.at(i), s.image.height, s.image.width);
  s.positive = labels_->positive(ids_.at(i));
  return s;
}

// ---- MaskFolderDataset ----------------------------------------------------------------------------------

MaskFolderDataset::MaskFolderDataset(std::string images_dir, std::string masks_dir, std::vector<std::string> ids,
                                     int mask_threshold)
    : images_dir_(std::move(images_dir)), masks_dir_(std::move(masks_dir)), threshold_(mask_threshold) {
  require_dir(images_dir_, "image");
  if (!masks_dir_.empty()) require_dir(masks_dir_, "mask");
  if (ids.empty()) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(images_dir_))
      if (e.is_regular_file() && is_image_name(e.path().filename().string())) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    PNEUMO_CHECK(!names.empty(), "image folder '", images_dir_, "' holds no .png/.jpg/.jpeg/.dcm file");
    for (const std::string& n : names) {
      ids_.push_back(fs::path(n).stem().string());
      image_files_.push_back((fs::path(images_dir_) / n).string());
    }
  } else {
    ids_ = std::move(ids);
    for (const std::string& id : ids_) {
      std::string p = find_image_file(images_dir_, id);
      // A missing file is reported when the sample is loaded, with its expected path.
      image_files_.push_back(p.empty() ? (fs::path(images_dir_) / (id + ".png")).string() : p);
    }
  }
}

std::string MaskFolderDataset::mask_path(size_t i) const {
  const std::string name = fs::path(image_files_.at(i)).filename().string();
  const std::string same = (fs::path(masks_dir_) / name).string();
  if (fs::exists(same)) return same;
  const std::string other = find_image_file(masks_dir_, ids_.at(i));
  return other.empty() ? same : other;  // a missing mask is reported by read_image with this path
}

aug::Image MaskFolderDataset::load_mask(size_t i, int height, int width) const {
  const std::string path = mask_path(i);
  aug::Image m = aug::read_image(path);
  PNEUMO_CHECK(height < 0 || (m.height == height && m.width == width), "mask '", path, "' is ", m.height, "x", m.width,
               " but its image '", image_files_.at(i), "' is ", height, "x", width);
  for (uint8_t& v : m.pixels) v = v > threshold_ ? 255 : 0;
  return m;
}

Sample MaskFolderDataset::load(size_t i) const {
  Sample s;
  s.image = aug::read_image(image_files_.at(i));
  if (masks_dir_.empty()) {
    s.mask = aug::Image(s.image.height, s.image.width, 1, 0);
  } else {
    s.mask = load_mask(i, s.image.height, s.image.width);
  }
  s.positive = std::any_of(s.mask.pixels.begin(), s.mask.pixels.end(), [](uint8_t v) { return v != 0; });
  return s;
}

bool MaskFolderDataset::positive(size_t i) const {
  if (masks_dir_.empty()) return false;
  const aug::Image m = load_mask(i, -1, -1);
  return std::any_of(m.pixels.begin(), m.pixels.end(), [](uint8_t v) { return v != 0; });
}

// ---- ConcatDataset --------------------------------------------------------------------------------------

ConcatDataset::ConcatDataset(std::vector<std::shared_ptr<const Dataset>> parts) : parts_(std::move(parts)) {
  for (const auto& p : parts_) {
    PNEUMO_CHECK(p != nullptr, "ConcatDataset: null part");
    starts_.push_back(total_);
    total_ += p->size();
  }
}

std::pair<const Dataset*, size_t> ConcatDataset::locate(size_t i) const {
  PNEUMO_CHECK(i < total_, "ConcatDataset: index ", i, " out of range (", total_, " samples)");
  const size_t k = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), i) - starts_.begin()) - 1;
  return {parts_[k].get(), i - starts_[k]};
}

const std::string& ConcatDataset::id(size_t i) const {
  auto [d, j] = locate(i);
  return d->id(j);
}
Sample ConcatDataset::load(size_t i) const {
  auto [d, j] = locate(i);
  return d->load(j);
}
bool ConcatDataset::positive(size_t i) const {
  auto [d, j] = locate(i);
  return d->positive(j);
}

}  // namespace pneumo::train
