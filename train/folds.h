// Cross-validation folds as the reference uses them. Files: <dir>/fold{k}/train.txt and val.txt, one entry
// per line, written "<ImageId>.png" as in the reference; entries are read back as image ids (extension
// stripped). Split rules of the reference: segmentation folds hold positive images only, classification
// folds hold all images; extra (pseudo-labelled) images are added to training only, never to validation.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pneumo::train {

struct FoldSplit {
  std::vector<std::string> train, val;  // image ids
};

enum class FoldTask { Segmentation, Classification };

// Image id of a fold-file entry: path folders and a .png/.jpg/.jpeg/.dcm extension removed.
std::string fold_entry_id(const std::string& entry);

// Reads <dir>/fold{k}/train.txt and val.txt; errors name the file and line (empty entry, duplicate, an image
// both in train and val).
FoldSplit read_fold(const std::string& dir, int k);
// Number of consecutive fold{k} folders (fold0, fold1, ...) present in dir.
int count_folds(const std::string& dir);

// Stratified k-fold assignment: positives and negatives are each shuffled with a seeded Philox shuffle and
// dealt round-robin, so every fold gets floor/ceil of each class. Returns the fold (0..k-1) of each image.
std::vector<int> stratified_folds(const std::vector<bool>& positive, int k, uint64_t seed);

// The split of fold `fold` under the reference's rules. `extra_train` (pseudo-labelled ids) is appended to
// train only.
FoldSplit make_split(const std::vector<std::string>& ids, const std::vector<bool>& positive,
                     const std::vector<int>& assignment, int fold, FoldTask task,
                     const std::vector<std::string>& extra_train = {});

// Writes <dir>/fold{k}/{train,val}.txt for every k (entries "<id>.png"), creating the folders.
void write_folds(const std::string& dir, const std::vector<FoldSplit>& folds);

// A seeded Fisher-Yates permutation of 0..n-1 from Philox(seed, stream): the same on every platform.
std::vector<int64_t> philox_permutation(int64_t n, uint64_t seed, uint64_t stream);

}  // namespace pneumo::train
