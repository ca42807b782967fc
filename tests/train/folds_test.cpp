// Folds: the reference's fold files, seeded stratified generation, the split rules, writing and reading.
#include <gtest/gtest.h>

#include <set>

#include "support/checkers.h"
#include "train/data_test_util.h"
#include "kernels/check.h"
#include "train/folds.h"

namespace pneumo::train {
namespace {

TEST(Folds, EntryIds) {
  EXPECT_EQ(fold_entry_id("1.2.276.0.7230010.3.1.4.8323329.10005.1517875220.958951.png"),
            "1.2.276.0.7230010.3.1.4.8323329.10005.1517875220.958951");
  EXPECT_EQ(fold_entry_id("dir/a.jpg"), "a");
  EXPECT_EQ(fold_entry_id("plain"), "plain");
}

TEST(Folds, PhiloxPermutationIsAPermutationAndSeeded) {
  const auto p = philox_permutation(1000, 7, 0);
  std::set<int64_t> s(p.begin(), p.end());
  EXPECT_EQ(s.size(), 1000u);
  EXPECT_EQ(*s.begin(), 0);
  EXPECT_EQ(*s.rbegin(), 999);
  EXPECT_EQ(p, philox_permutation(1000, 7, 0));
  EXPECT_NE(p, philox_permutation(1000, 8, 0));
  EXPECT_NE(p, philox_permutation(1000, 7, 1));
}

TEST(Folds, StratifiedBalanceAndDeterminism) {
  std::vector<bool> pos;
  for (int i = 0; i < 1037; ++i) pos.push_back(i % 9 == 0 || i % 13 == 0);
  const int k = 5;
  const std::vector<int> f = stratified_folds(pos, k, 1992);
  EXPECT_EQ(f, stratified_folds(pos, k, 1992));
  EXPECT_NE(f, stratified_folds(pos, k, 1993));
  std::vector<int> size(k, 0), npos(k, 0);
  for (size_t i = 0; i < f.size(); ++i) {
    ASSERT_GE(f[i], 0);
    ASSERT_LT(f[i], k);
    ++size[static_cast<size_t>(f[i])];
    npos[static_cast<size_t>(f[i])] += pos[i];
  }
  EXPECT_LE(*std::max_element(size.begin(), size.end()) - *std::min_element(size.begin(), size.end()), 1);
  EXPECT_LE(*std::max_element(npos.begin(), npos.end()) - *std::min_element(npos.begin(), npos.end()), 1);
  EXPECT_THROW(stratified_folds(pos, 1, 0), Error);
}

TEST(Folds, SplitRules) {
  const std::vector<std::string> ids = {"a", "b", "c", "d", "e", "f"};
  const std::vector<bool> pos = {true, false, true, false, true, false};
  const std::vector<int> fold = {0, 0, 1, 1, 0, 1};
  const FoldSplit seg = make_split(ids, pos, fold, 0, FoldTask::Segmentation, {"x1", "x2"});
  EXPECT_EQ(seg.val, (std::vector<std::string>{"a", "e"}));
  EXPECT_EQ(seg.train, (std::vector<std::string>{"c", "x1", "x2"}));
  const FoldSplit cls = make_split(ids, pos, fold, 1, FoldTask::Classification);
  EXPECT_EQ(cls.val, (std::vector<std::string>{"c", "d", "f"}));
  EXPECT_EQ(cls.train, (std::vector<std::string>{"a", "b", "e"}));
  test::expect_error_mentions([&] { make_split(ids, pos, fold, 0, FoldTask::Classification, {"b"}); }, {"b", "validation"});
}

TEST(Folds, WriteAndReadBack) {
  test::TempDir dir;
  std::vector<FoldSplit> folds = {{{"a", "b"}, {"c"}}, {{"c", "a"}, {"b"}}};
  write_folds(dir.path(), folds);
  EXPECT_EQ(count_folds(dir.path()), 2);
  const FoldSplit f1 = read_fold(dir.path(), 1);
  EXPECT_EQ(f1.train, folds[1].train);
  EXPECT_EQ(f1.val, folds[1].val);
  test::write_text(dir.file("fold0/val.txt"), "c.png\r\n\r\nd.png\r\nc.png\r\n");
  test::expect_error_mentions([&] { read_fold(dir.path(), 0); }, {"fold0/val.txt", "line 4", "c", "line 1"});
  test::write_text(dir.file("fold0/val.txt"), "a.png\n");
  test::expect_error_mentions([&] { read_fold(dir.path(), 0); }, {"a", "both"});
  test::expect_error_mentions([&] { read_fold(dir.path(), 7); }, {"fold7/train.txt"});
}

TEST(FoldsRealData, ReferenceFolds) {
  PNEUMO_REQUIRE_DATA(det, "siim/seed-folds/det_fold_5");
  PNEUMO_REQUIRE_DATA(cls, "siim/seed-folds/cls_fold_5_all_images");
  ASSERT_EQ(count_folds(det), 5);
  ASSERT_EQ(count_folds(cls), 5);
  std::set<std::string> det_all, cls_all, det_val, cls_val;
  for (int k = 0; k < 5; ++k) {
    const FoldSplit d = read_fold(det, k), c = read_fold(cls, k);
    EXPECT_EQ(d.train.size() + d.val.size(), 2379u) << k;
    EXPECT_EQ(c.train.size() + c.val.size(), 10675u) << k;
    if (k == 0) {
      EXPECT_EQ(d.train.size(), 1903u);
      EXPECT_EQ(d.val.size(), 476u);
      EXPECT_EQ(c.train.size(), 8539u);
      EXPECT_EQ(c.val.size(), 2136u);
    }
    det_val.insert(d.val.begin(), d.val.end());
    cls_val.insert(c.val.begin(), c.val.end());
    det_all.insert(d.train.begin(), d.train.end());
    det_all.insert(d.val.begin(), d.val.end());
    cls_all.insert(c.train.begin(), c.train.end());
  }
  // The validation folds partition each set; segmentation images are a subset of classification images.
  EXPECT_EQ(det_val.size(), 2379u);
  EXPECT_EQ(cls_val.size(), 10675u);
  for (const std::string& id : det_all) EXPECT_TRUE(cls_val.count(id)) << id;
}

}  // namespace
}  // namespace pneumo::train
