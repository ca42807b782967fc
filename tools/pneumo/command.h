// Subcommands of the `pneumo` executable register themselves with PNEUMO_COMMAND in their own .cpp file
// under tools/pneumo/, so adding a command never edits main.cpp. Args is a small option parser shared by
// all of them: `--name value`, `--name=value`, `--flag`, positionals; unknown options are errors.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace pneumo::cli {

class Args {
 public:
  Args(std::string command, const std::vector<std::string>& argv);
  // Each accessor marks the option as known; finish() then rejects any option never asked for.
  std::string get(const std::string& name, const std::string& fallback) const;
  std::string require(const std::string& name) const;  // error if absent
  int64_t get_int(const std::string& name, int64_t fallback) const;
  double get_double(const std::string& name, double fallback) const;
  bool flag(const std::string& name) const;
  bool has(const std::string& name) const;
  const std::vector<std::string>& positionals() const { return positionals_; }
  void finish() const;  // throws on unknown options
  const std::string& command() const { return command_; }

 private:
  std::string command_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positionals_;
  mutable std::map<std::string, bool> seen_;
};

struct Command {
  std::string name;
  std::string summary;  // one line for `pneumo --help`
  std::string usage;    // full text for `pneumo NAME --help`
  std::function<int(const Args&)> run;
};

std::vector<Command>& registry();
struct Registrar {
  explicit Registrar(Command c) { registry().push_back(std::move(c)); }
};

}  // namespace pneumo::cli

#define PNEUMO_CONCAT_INNER(a, b) a##b
#define PNEUMO_CONCAT(a, b) PNEUMO_CONCAT_INNER(a, b)
#define PNEUMO_COMMAND(...) \
  static ::pneumo::cli::Registrar PNEUMO_CONCAT(pneumo_command_, __LINE__)(::pneumo::cli::Command{__VA_ARGS__})
