// docs/ops.md stays complete and true: every CUDA launcher declared in kernels/cuda/*.h (a declaration
// with a cudaStream_t parameter) is named in the "CUDA kernel" column of one of its tables, and every test
// the table names (file:Suite.Name) exists in that file. The headers and the doc are parsed at test time.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
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

bool is_ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// Names of the functions a header declares (not defines) with a cudaStream_t parameter. The code (comments
// removed) is cut into statements at ';', '{' and '}'; a declaration is a statement ended by ';' that reads
// `... name(parameters)` with no '=' before the parenthesis.
std::set<std::string> launchers_in(const std::string& header) {
  std::string code;
  std::istringstream lines(header);
  for (std::string line; std::getline(lines, line);) {
    const size_t c = line.find("//");
    code += (c == std::string::npos ? line : line.substr(0, c)) + "\n";
  }
  std::set<std::string> names;
  std::string statement;
  for (char ch : code) {
    if (ch != ';' && ch != '{' && ch != '}') {
      statement += ch;
      continue;
    }
    const std::string st = trim(statement);
    statement.clear();
    if (ch != ';' || st.empty() || st.back() != ')' || st.find("cudaStream_t") == std::string::npos) continue;
    const size_t open = st.find('(');
    if (open == std::string::npos || st.substr(0, open).find('=') != std::string::npos) continue;
    size_t end = open;
    while (end > 0 && std::isspace(static_cast<unsigned char>(st[end - 1]))) --end;
    size_t begin = end;
    while (begin > 0 && is_ident_char(st[begin - 1])) --begin;
    if (begin < end) names.insert(st.substr(begin, end - begin));
  }
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
    // Each `code span`: the last `::` component when it is a plain identifier.
    for (size_t open = cell.find('`'); open != std::string::npos; open = cell.find('`', open)) {
      const size_t close = cell.find('`', open + 1);
      if (close == std::string::npos) break;
      std::string span = cell.substr(open + 1, close - open - 1);
      const size_t colons = span.rfind("::");
      if (colons != std::string::npos) span = span.substr(colons + 2);
      if (!span.empty() && std::all_of(span.begin(), span.end(), is_ident_char)) names.insert(span);
      open = close + 1;
    }
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
  const std::string marker = "_test.cpp:";
  int checked = 0;
  for (size_t at = doc.find(marker); at != std::string::npos; at = doc.find(marker, at + 1)) {
    size_t begin = at;  // back to the start of the path
    while (begin > 0 && (is_ident_char(doc[begin - 1]) || doc[begin - 1] == '/')) --begin;
    size_t end = at + marker.size();  // Suite.Name
    while (end < doc.size() && (is_ident_char(doc[end]) || doc[end] == '.')) ++end;
    const std::string file = doc.substr(begin, at + 9 - begin);  // ".../x_test.cpp"
    const std::string test = doc.substr(at + marker.size(), end - at - marker.size());
    const size_t dot = test.find('.');
    ASSERT_NE(dot, std::string::npos) << file << ":" << test << ": not file:Suite.Name";
    std::string text = read_file(kSource / "tests" / file);
    ASSERT_FALSE(text.empty()) << file << ": no such test file";
    text.erase(std::remove_if(text.begin(), text.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); }),
               text.end());
    const std::string args = "(" + test.substr(0, dot) + "," + test.substr(dot + 1) + ")";
    const bool found = text.find("TEST" + args) != std::string::npos || text.find("TEST_F" + args) != std::string::npos ||
                       text.find("TEST_P" + args) != std::string::npos;
    EXPECT_TRUE(found) << file << ":" << test << ": no such test";
    ++checked;
  }
  EXPECT_GE(checked, 40) << "docs/ops.md names too few tests: the parser is broken";
}

}  // namespace
}  // namespace pneumo
