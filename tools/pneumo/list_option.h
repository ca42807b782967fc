// Comma-separated lists on the command line of the pipeline commands (`--weights a,b,c`, `--epochs 34,39,43`).
#pragma once
#include <sstream>
#include <string>
#include <vector>

namespace pneumo::cli {

inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace pneumo::cli
