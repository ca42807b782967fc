// write_file_atomic (kernels/atomic_file.h): content and overwrite, no temporary file left behind, a failure
// (exception in the fill function, a real write error, a missing folder) leaves the old file intact and names
// the path, and two concurrent writers of one path never mix their bytes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kernels/atomic_file.h"
#include "kernels/check.h"

namespace pneumo {
namespace {

namespace fs = std::filesystem;

class AtomicFile : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("pneumo-atomic-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  static std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // Names of every entry of the folder.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    return names;
  }
  fs::path dir_;
};

TEST_F(AtomicFile, WritesAndOverwritesLeavingNoTemporaryFile) {
  const std::string path = file("out.bin");
  std::string bytes = "header\n";
  bytes.push_back('\0');
  bytes += std::string(200000, 'x');  // larger than the stream buffer
  write_file_atomic(path, bytes);
  EXPECT_EQ(read(path), bytes);
  write_file_atomic(path, [](std::ostream& out) {
    out << "line " << 1 << '\n';
    out.write("\r\n", 2);  // binary: no translation
  });
  EXPECT_EQ(read(path), "line 1\n\r\n");
  write_file_atomic(path, std::string_view());
  EXPECT_EQ(read(path), "");
  EXPECT_EQ(entries(), std::vector<std::string>{"out.bin"});
}

TEST_F(AtomicFile, ExceptionInFillKeepsTheOldFile) {
  const std::string path = file("keep.txt");
  write_file_atomic(path, "old content");
  EXPECT_THROW(write_file_atomic(path,
                                 [](std::ostream& out) {
                                   out << std::string(100000, 'n');
                                   throw std::runtime_error("caller gave up");
                                 }),
               std::runtime_error);
  EXPECT_EQ(read(path), "old content");
  EXPECT_EQ(entries(), std::vector<std::string>{"keep.txt"});
}

TEST_F(AtomicFile, WriteErrorKeepsTheOldFileAndNamesThePath) {
  const std::string path = file("big.bin");
  write_file_atomic(path, "old");
  // A real write failure: the file size limit makes write() fail with EFBIG (SIGXFSZ ignored meanwhile).
  struct rlimit saved {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto* old_handler = signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  try {
    write_file_atomic(path, std::string(1 << 20, 'z'));
  } catch (const Error& e) {
    message = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(message.empty()) << "a write past the file size limit did not fail";
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("write"), std::string::npos) << message;
  EXPECT_EQ(read(path), "old");
  EXPECT_EQ(entries(), std::vector<std::string>{"big.bin"});
}

TEST_F(AtomicFile, MissingFolderIsAClearError) {
  const std::string path = file("no/such/folder/x.txt");
  try {
    write_file_atomic(path, "x");
    ADD_FAILURE() << "writing into a missing folder succeeded";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find("temporary file"), std::string::npos) << m;
  }
}

TEST_F(AtomicFile, ConcurrentWritersNeverMixTheirBytes) {
  const std::string path = file("shared.bin");
  constexpr size_t kSize = 300000;  // several stream buffers: a shared temporary file would interleave them
  constexpr int kRounds = 20;
  std::atomic<bool> stop{false};
  std::atomic<int> bad_reads{0}, reads{0};
  std::thread reader([&] {
    while (!stop) {
      const std::string s = read(path);
      if (s.empty()) continue;  // not written yet
      ++reads;
      if (s.size() != kSize || s.find_first_not_of(s[0]) != std::string::npos) ++bad_reads;
    }
  });
  // A shared fixed temporary name (the old writers' "<path>.tmp") fails here: one writer's rename moves
  // the other's half-written file into place or finds it gone.
  std::atomic<int> failed_writes{0};
  std::vector<std::thread> writers;
  for (char c : {'a', 'b'}) {
    writers.emplace_back([&, c] {
      for (int r = 0; r < kRounds; ++r) {
        try {
          write_file_atomic(path, [&](std::ostream& out) {
            for (size_t i = 0; i < kSize; i += 1000) out << std::string(1000, c);
          });
        } catch (const std::exception&) {
          ++failed_writes;
        }
      }
    });
  }
  for (auto& w : writers) w.join();
  stop = true;
  reader.join();
  const std::string final_content = read(path);
  ASSERT_EQ(final_content.size(), kSize);
  EXPECT_TRUE(final_content.find_first_not_of(final_content[0]) == std::string::npos) << "the final file mixes writers";
  EXPECT_EQ(bad_reads.load(), 0) << "of " << reads.load() << " reads, some saw a partial or mixed file";
  EXPECT_EQ(failed_writes.load(), 0) << "concurrent writers of one path failed";
  EXPECT_EQ(entries(), std::vector<std::string>{"shared.bin"});
}

}  // namespace
}  // namespace pneumo
