// libFuzzer target: fold files (train/folds.h, read_fold). The input is split at its first NUL byte into
// fold0/train.txt and fold0/val.txt (all of it is train.txt when there is none).
#include <cstring>
#include <filesystem>

#include "tests/fuzz/fuzz_util.h"
#include "train/folds.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = pneumo::fuzz::scratch_dir() + "/folds";
  static const bool made = std::filesystem::create_directories(dir + "/fold0") || true;
  (void)made;
  const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t train = nul ? static_cast<size_t>(nul - data) : size;
  pneumo::fuzz::write_file(dir + "/fold0/train.txt", data, train);
  pneumo::fuzz::write_file(dir + "/fold0/val.txt", nul ? nul + 1 : data + size, nul ? size - train - 1 : 0);
  pneumo::fuzz::expect_clean([&] {
    const pneumo::train::FoldSplit s = pneumo::train::read_fold(dir, 0);
    for (const std::string& id : s.train)
      if (id.empty()) std::abort();  // read_fold promises no empty entries
    for (const std::string& id : s.val)
      if (id.empty()) std::abort();
  });
  return 0;
}
