// docs/ops.md stays complete and true: every CUDA launcher declared in kernels/cuda/*.h (a declaration
// with a cudaStream_t parameter) is named in the "CUDA kernel" column of one of its tables, and every test
// the table names (file:Suite.Name) exists in that file. The headers and the doc are parsed at test time.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace pneumo {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Names of the functions a header declares (not defines) with a cudaStream_t parameter.
std::set<std::string> launchers_in(const std::string& header) {
  std::string code;
  std::istringstream lines(header);
  for (std::string line; std::getline(lines, line);) {
    const size_t c = line.find("//");
    code += (c == std::string::npos ? line : line.substr(0, c)) + "\n";
  }
  std::set<std::string> names;
  static const std::regex decl(R"((\w+)\s*\(([^;{}()]*(?:\([^()]*\)[^;{}()]*)*)\)\s*;)");
  for (auto it = std::sregex_iterator(code.begin(), code.end(), decl); it != std::sregex_iterator(); ++it)
    if ((*it)[2].str().find("cudaStream_t") != std::string::npos) names.insert((*it)[1].str());
  return names;
}

std::vector<std::string> split_row(const std::string& row) {
  std::vector<std::string> cells;
  std::string cell;
  for (size_t i = 1; i < row.size(); ++i) {  // row[0] is the leading '|'
    if (row[i] == '|') {
      cells.push_back(cell);
      cell.clear();
    } else {
      cell += row[i];
    }
  }
  return cells;
}

// Backticked identifiers of the "CUDA kernel" column of every table of the doc (last `::` component).
std::set<std::string> documented_cuda_kernels(const std::string& doc) {
  std::set<std::string> names;
  int column = -1;
  std::istringstream lines(doc);
  static const std::regex ident("`(?:[\\w:]*::)?(\\w+)`");
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] != '|') {
      column = -1;
      continue;
    }
    const std::vector<std::string> cells = split_row(line);
    if (column < 0) {  // a header row
      for (size_t i = 0; i < cells.size(); ++i)
        if (cells[i].find("CUDA kernel") != std::string::npos) column = static_cast<int>(i);
      continue;
    }
    if (column >= static_cast<int>(cells.size())) continue;
    const std::string& cell = cells[column];
    for (auto it = std::sregex_iterator(cell.begin(), cell.end(), ident); it != std::sregex_iterator(); ++it)
      names.insert((*it)[1].str());
  }
  return names;
}

std::vector<std::string> missing_launchers(const std::set<std::string>& launchers, const std::string& doc) {
  const std::set<std::string> documented = documented_cuda_kernels(doc);
  std::vector<std::string> missing;
  for (const std::string& l : launchers)
    if (!documented.count(l)) missing.push_back(l);
  return missing;
}

const fs::path kSource = fs::path(PNEUMO_TEST_FIXTURES) / ".." / "..";

std::set<std::string> all_launchers() {
  std::set<std::string> all;
  for (const auto& e : fs::directory_iterator(kSource / "kernels" / "cuda"))
    if (e.path().extension() == ".h")
      for (const std::string& n : launchers_in(read_file(e.path()))) all.insert(n);
  return all;
}

TEST(OpsDoc, ParsesLauncherDeclarations) {
  const std::set<std::string> got = launchers_in(
      "// void commented(int x, cudaStream_t stream);\n"
      "void plain(DType dt, const void* x,\n            int64_t n, cudaStream_t stream);\n"
      "size_t no_stream(int64_t n);\n"
      "inline int defined_here(cudaStream_t stream) { return 0; }\n"
      "void with_callback(void* (*allocate)(size_t bytes), cudaStream_t stream, const W& w);\n");
  EXPECT_EQ(got, (std::set<std::string>{"plain", "with_callback"}));
}

TEST(OpsDoc, EveryCudaLauncherHasARow) {
  const std::set<std::string> launchers = all_launchers();
  ASSERT_GE(launchers.size(), 50u) << "the header parser lost the launchers of kernels/cuda";
  const std::string doc = read_file(kSource / "docs" / "ops.md");
  ASSERT_FALSE(doc.empty()) << "docs/ops.md is missing";
  for (const std::string& m : missing_launchers(launchers, doc))
    ADD_FAILURE() << "kernels::cuda::" << m << " is declared in kernels/cuda but has no row in docs/ops.md";
}

// The check above can fail: the real doc with the Dice-counts row removed is reported.
TEST(OpsDoc, AMissingRowIsCaught) {
  const std::string doc = read_file(kSource / "docs" / "ops.md");
  std::string without;
  std::istringstream lines(doc);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("| Dice counts", 0) != 0) without += line + "\n";
  ASSERT_NE(without.size(), doc.size()) << "the Dice counts row is gone from docs/ops.md";
  EXPECT_EQ(missing_launchers(all_launchers(), without), std::vector<std::string>{"dice_counts"});
}

TEST(OpsDoc, EveryNamedTestExists) {
  const std::string doc = read_file(kSource / "docs" / "ops.md");
  static const std::regex ref(R"(([\w/]+_test\.cpp):(\w+)\.(\w+))");
  int checked = 0;
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), ref); it != std::sregex_iterator(); ++it) {
    const fs::path file = kSource / "tests" / (*it)[1].str();
    const std::string text = read_file(file);
    ASSERT_FALSE(text.empty()) << (*it)[0].str() << ": no such test file";
    const std::regex test("TEST(_F|_P)?\\(\\s*" + (*it)[2].str() + ",\\s*" + (*it)[3].str() + "\\s*\\)");
    EXPECT_TRUE(std::regex_search(text, test)) << (*it)[0].str() << ": no such test in " << file;
    ++checked;
  }
  EXPECT_GE(checked, 40) << "docs/ops.md names too few tests: the parser is broken";
}

}  // namespace
}  // namespace pneumo
