// The skip policy of tests/support/checkers.h, proved by running test binaries as child processes:
//  - a test missing its GPU / its ../shared/data SKIPS by default and FAILS under PNEUMO_REQUIRE_GPU=1 /
//    PNEUMO_REQUIRE_DATA=1, with the reason (cuda::device_status(): no device vs a CUDA error) in the message;
//  - on a machine without a usable device, EVERY test of tests_gpu skips (none passes without a GPU, so no
//    GPU test can hide a missing PNEUMO_REQUIRE_CUDA()) and every one fails under PNEUMO_REQUIRE_GPU=1.
// The DISABLED_ probes run only as children (--gtest_also_run_disabled_tests).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "support/checkers.h"
#include "tensor/cuda_runtime.h"

namespace pneumo::test {
namespace {

TEST(DISABLED_SkipPolicyChild, NeedsGpu) {
  PNEUMO_REQUIRE_CUDA();
  SUCCEED();
}
TEST(DISABLED_SkipPolicyChild, NeedsData) {
  PNEUMO_REQUIRE_DATA(path, "no-such-folder-for-the-skip-policy-test");
  ADD_FAILURE() << "found " << path;
}

std::string self_exe() {
  char buf[4096] = {0};
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

struct Child {
  int rc = -1;
  std::string out;
};
// Runs `exe args` with `env` prefixed (e.g. "PNEUMO_REQUIRE_GPU=1"); both policy variables are unset first so
// the parent's environment cannot decide the outcome.
Child run_child(const std::string& exe, const std::string& env, const std::string& args) {
  const std::string log = ::testing::TempDir() + "pneumo_skip_policy_" + std::to_string(::getpid()) + ".log";
  const std::string cmd = "env -u PNEUMO_REQUIRE_GPU -u PNEUMO_REQUIRE_DATA " + env + " '" + exe + "' " + args +
                          " > '" + log + "' 2>&1";
  Child c;
  const int status = std::system(cmd.c_str());
  c.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream f(log);
  std::stringstream ss;
  ss << f.rdbuf();
  c.out = ss.str();
  std::remove(log.c_str());
  return c;
}

// The count gtest prints on its "[  PASSED  ] N tests." / "[  SKIPPED ] N tests" / "[  FAILED  ] N tests" line.
int summary_count(const std::string& out, const std::string& tag) {
  std::smatch m;
  const std::regex re("\\[  " + tag + " *\\] ([0-9]+) tests?[,.]");
  return std::regex_search(out, m, re) ? std::stoi(m[1]) : 0;
}
int tests_ran(const std::string& out) {
  std::smatch m;
  return std::regex_search(out, m, std::regex("\\[==========\\] ([0-9]+) tests? from .* ran")) ? std::stoi(m[1]) : -1;
}

TEST(SkipPolicy, MissingDataSkipsByDefaultAndFailsWhenRequired) {
  const std::string args = "--gtest_also_run_disabled_tests --gtest_filter=DISABLED_SkipPolicyChild.NeedsData";
  Child plain = run_child(self_exe(), "", args);
  EXPECT_EQ(plain.rc, 0) << plain.out;
  EXPECT_EQ(summary_count(plain.out, "SKIPPED"), 1) << plain.out;
  EXPECT_NE(plain.out.find("shared data not present (no-such-folder-for-the-skip-policy-test)"), std::string::npos)
      << plain.out;
  Child required = run_child(self_exe(), "PNEUMO_REQUIRE_DATA=1", args);
  EXPECT_NE(required.rc, 0) << required.out;
  EXPECT_EQ(summary_count(required.out, "FAILED"), 1) << required.out;
  EXPECT_NE(required.out.find("PNEUMO_REQUIRE_DATA=1 but shared data not present"), std::string::npos) << required.out;
  Child off = run_child(self_exe(), "PNEUMO_REQUIRE_DATA=0", args);  // "0" means not required
  EXPECT_EQ(off.rc, 0) << off.out;
}

TEST(SkipPolicy, MissingGpuSkipsByDefaultAndFailsWhenRequired) {
  const std::string args = "--gtest_also_run_disabled_tests --gtest_filter=DISABLED_SkipPolicyChild.NeedsGpu";
  Child required = run_child(self_exe(), "PNEUMO_REQUIRE_GPU=1", args);
  if (cuda::available()) {  // with a device the probe runs and passes, required or not
    EXPECT_EQ(required.rc, 0) << required.out;
    EXPECT_EQ(summary_count(required.out, "PASSED"), 1) << required.out;
    return;
  }
  const std::string why = cuda::device_status();
  ASSERT_FALSE(why.empty()) << "no device, yet device_status() gives no reason";
  EXPECT_TRUE(why == "built without CUDA" || why.rfind("no CUDA device (", 0) == 0 || why.rfind("CUDA error: ", 0) == 0)
      << why;
  EXPECT_NE(required.rc, 0) << required.out;
  EXPECT_EQ(summary_count(required.out, "FAILED"), 1) << required.out;
  EXPECT_NE(required.out.find("PNEUMO_REQUIRE_GPU=1 but GPU test skipped: " + why), std::string::npos) << required.out;
  Child plain = run_child(self_exe(), "", args);
  EXPECT_EQ(plain.rc, 0) << plain.out;
  EXPECT_EQ(summary_count(plain.out, "SKIPPED"), 1) << plain.out;
  EXPECT_NE(plain.out.find("GPU test skipped: " + why), std::string::npos) << plain.out;
}

// Every GPU test, not just the probe: tests_gpu (built next to this binary) run whole. Without a device none
// may pass (a GPU test without PNEUMO_REQUIRE_CUDA() would pass here, hiding that it never ran); with
// PNEUMO_REQUIRE_GPU=1 every one must fail, and the run exits non-zero. With a device the GPU suite itself
// is the check (tools/gpu-check.sh runs it with PNEUMO_REQUIRE_GPU=1), so only the probe above runs.
TEST(SkipPolicy, EveryGpuTestSkipsWithoutADeviceAndFailsWhenRequired) {
  if (cuda::available()) {
    Child probe = run_child(self_exe(), "PNEUMO_REQUIRE_GPU=1",
                            "--gtest_also_run_disabled_tests --gtest_filter=DISABLED_SkipPolicyChild.NeedsGpu");
    EXPECT_EQ(probe.rc, 0) << probe.out;
    return;
  }
  std::string exe = self_exe();
  exe = exe.substr(0, exe.rfind('/') + 1) + "tests_gpu";
  ASSERT_EQ(access(exe.c_str(), X_OK), 0) << exe << " is not built (build the tests_gpu target)";
  Child plain = run_child(exe, "", "");
  const int n = tests_ran(plain.out);
  ASSERT_GT(n, 10) << plain.out.substr(0, 4000);
  EXPECT_EQ(plain.rc, 0) << plain.out.substr(0, 4000);
  EXPECT_EQ(summary_count(plain.out, "PASSED"), 0) << "GPU tests passed without a GPU:\n" << plain.out;
  EXPECT_EQ(summary_count(plain.out, "SKIPPED"), n) << plain.out.substr(0, 4000);
  Child required = run_child(exe, "PNEUMO_REQUIRE_GPU=1", "");
  EXPECT_NE(required.rc, 0) << required.out.substr(0, 4000);
  EXPECT_EQ(tests_ran(required.out), n);
  EXPECT_EQ(summary_count(required.out, "FAILED"), n) << required.out.substr(0, 4000);
  EXPECT_EQ(summary_count(required.out, "SKIPPED"), 0) << required.out.substr(0, 4000);
}

}  // namespace
}  // namespace pneumo::test
