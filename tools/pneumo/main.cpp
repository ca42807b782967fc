// `pneumo <subcommand>`: the one executable. Errors from any layer end here as one clear line on stderr
// and a non-zero exit code (2 for usage errors, 1 for everything else).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "kernels/check.h"
#include "tools/pneumo/command.h"

namespace pneumo::cli {

std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

Args::Args(std::string command, const std::vector<std::string>& argv) : command_(std::move(command)) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      std::string key = a.substr(2), value;
      size_t eq = key.find('=');
      if (eq != std::string::npos) {
        value = key.substr(eq + 1);
        key = key.substr(0, eq);
      } else if (i + 1 < argv.size() && (argv[i + 1].size() < 2 || argv[i + 1].compare(0, 2, "--") != 0)) {
        value = argv[++i];
      } else {
        value = "\x01";  // bare flag
      }
      values_[key] = value;
    } else {
      positionals_.push_back(a);
    }
  }
}

bool Args::has(const std::string& name) const {
  seen_[name] = true;
  return values_.count(name) > 0;
}
bool Args::flag(const std::string& name) const {
  seen_[name] = true;
  auto it = values_.find(name);
  if (it == values_.end()) return false;
  return it->second == "\x01" || it->second == "1" || it->second == "true" || it->second == "yes";
}
std::string Args::get(const std::string& name, const std::string& fallback) const {
  seen_[name] = true;
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  PNEUMO_CHECK(it->second != "\x01", "pneumo ", command_, ": option --", name, " needs a value");
  return it->second;
}
std::string Args::require(const std::string& name) const {
  PNEUMO_CHECK(has(name), "pneumo ", command_, ": option --", name, " is required (see pneumo ", command_, " --help)");
  return get(name, "");
}
int64_t Args::get_int(const std::string& name, int64_t fallback) const {
  std::string v = get(name, "");
  if (v.empty()) return fallback;
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  PNEUMO_CHECK(end && *end == 0, "pneumo ", command_, ": --", name, " expects an integer, got '", v, "'");
  return x;
}
double Args::get_double(const std::string& name, double fallback) const {
  std::string v = get(name, "");
  if (v.empty()) return fallback;
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  PNEUMO_CHECK(end && *end == 0, "pneumo ", command_, ": --", name, " expects a number, got '", v, "'");
  return x;
}
void Args::finish() const {
  for (const auto& kv : values_)
    PNEUMO_CHECK(seen_.count(kv.first), "pneumo ", command_, ": unknown option --", kv.first,
                 " (see pneumo ", command_, " --help)");
}

}  // namespace pneumo::cli

static void print_help() {
  auto& cmds = pneumo::cli::registry();
  std::sort(cmds.begin(), cmds.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  std::printf(
      "pneumo %s: a native engine for the SIIM-ACR pneumothorax segmentation 2nd-place solution\n\n"
      "usage: pneumo <command> [options]      pneumo <command> --help for its options\n\ncommands:\n",
      PNEUMO_VERSION);
  for (const auto& c : cmds) std::printf("  %-16s %s\n", c.name.c_str(), c.summary.c_str());
}

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help") {
    print_help();
    return argc < 2 ? 2 : 0;
  }
  if (std::string(argv[1]) == "--version") {
    std::printf("pneumo %s\n", PNEUMO_VERSION);
    return 0;
  }
  std::string name = argv[1];
  for (const auto& c : pneumo::cli::registry()) {
    if (c.name != name) continue;
    std::vector<std::string> rest(argv + 2, argv + argc);
    if (std::find(rest.begin(), rest.end(), "--help") != rest.end() ||
        std::find(rest.begin(), rest.end(), "-h") != rest.end()) {
      std::printf("pneumo %s: %s\n\n%s\n", c.name.c_str(), c.summary.c_str(), c.usage.c_str());
      return 0;
    }
    try {
      pneumo::cli::Args args(name, rest);
      return c.run(args);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "pneumo %s: error: %s\n", name.c_str(), e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "pneumo: unknown command '%s' (pneumo --help lists them)\n", name.c_str());
  return 2;
}
