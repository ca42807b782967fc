// Datasets: indexable, thread-safe sources of (gray image, 0/255 mask) pairs for the loader.
//  - RleCsvDataset: the competition layout, a folder of images (<id>.png or <id>.jpg) + an RLE CSV.
//  - MaskFolderDataset: a folder of images + a folder of mask PNGs with the same names (how hospitals and the
//    sets in ../shared/data store masks); masks are thresholded (> 127 -> 255) since some are anti-aliased.
//  - ConcatDataset: several datasets end to end (e.g. a fold's training set + pseudo-labelled extras).
// Convention: load(i) may be called from many threads at once; errors name the file (and line/image id).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "augment/image.h"
#include "train/rle_csv.h"

namespace pneumo::train {

struct Sample {
  aug::Image image;  // 8-bit gray
  aug::Image mask;   // 8-bit 0/255, same size (all 0 when the dataset has no masks)
  bool positive = false;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  virtual const std::string& id(size_t i) const = 0;
  virtual Sample load(size_t i) const = 0;
  // Whether image i has a non-empty mask (cheap for RLE labels; reads the mask for mask folders).
  virtual bool positive(size_t i) const = 0;
};

class RleCsvDataset : public Dataset {
 public:
  // ids empty: every image of the CSV, in file order. Each id must have a row in the CSV. `ext` is the image
  // extension (".png", ".jpg"); empty: each image is looked up as <id>.png, then <id>.jpg, then <id>.jpeg.
  RleCsvDataset(std::string images_dir, std::shared_ptr<const RleCsv> labels, std::vector<std::string> ids = {},
                std::string ext = "");
  RleCsvDataset(std::string images_dir, const std::string& csv_path, std::vector<std::string> ids = {},
                std::string ext = "");
  size_t size() const override { return ids_.size(); }
  const std::string& id(size_t i) const override { return ids_.at(i); }
  Sample load(size_t i) const override;
  bool positive(size_t i) const override { return labels_->positive(ids_.at(i)); }
  const RleCsv& labels() const { return *labels_; }
  std::string image_path(size_t i) const;

 private:
  std::string dir_, ext_;
  std::shared_ptr<const RleCsv> labels_;
  std::vector<std::string> ids_;
};

class MaskFolderDataset : public Dataset {
 public:
  // ids empty: every .png/.jpg/.jpeg file of images_dir, sorted by name; otherwise the given ids (file name
  // without extension). masks_dir empty: no masks (all-zero masks, e.g. a test set). The mask of image
  // "a.png" is masks_dir/a.png (or a .jpg/.jpeg of the same stem).
  MaskFolderDataset(std::string images_dir, std::string masks_dir, std::vector<std::string> ids = {},
                    int mask_threshold = 127);
  size_t size() const override { return ids_.size(); }
  const std::string& id(size_t i) const override { return ids_.at(i); }
  Sample load(size_t i) const override;
  bool positive(size_t i) const override;
  std::string image_path(size_t i) const { return image_files_.at(i); }
  std::string mask_path(size_t i) const;

 private:
  aug::Image load_mask(size_t i, int height, int width) const;
  std::string images_dir_, masks_dir_;
  std::vector<std::string> ids_, image_files_;
  int threshold_;
};

class ConcatDataset : public Dataset {
 public:
  explicit ConcatDataset(std::vector<std::shared_ptr<const Dataset>> parts);
  size_t size() const override { return total_; }
  const std::string& id(size_t i) const override;
  Sample load(size_t i) const override;
  bool positive(size_t i) const override;

 private:
  std::pair<const Dataset*, size_t> locate(size_t i) const;
  std::vector<std::shared_ptr<const Dataset>> parts_;
  std::vector<size_t> starts_;
  size_t total_ = 0;
};

// Image file of a given stem in a folder: stem + ext if ext given, else the first of .png, .jpg, .jpeg that
// exists; "" when none does.
std::string find_image_file(const std::string& dir, const std::string& stem, const std::string& ext = "");

}  // namespace pneumo::train
