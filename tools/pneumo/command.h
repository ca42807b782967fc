// Subcommands of the `pneumo` executable, on CLI11. Each command registers itself with PNEUMO_COMMAND in its
// own .cpp under tools/pneumo/, so adding a command never edits main.cpp:
//
//   struct FoldsOptions { std::string csv, out; int k = 5; uint64_t seed = 0; };
//   int run_folds(const FoldsOptions& o);
//   PNEUMO_COMMAND("folds", "generate stratified k-folds", [](CLI::App& app) {
//     auto o = std::make_shared<FoldsOptions>();
//     cli::option(app, "--k", o->k, "number of folds", 2, 1000);
//     cli::out_option(app, o->out, "output folder").required();
//     cli::seed_option(app, o->seed);
//     return [o] { return run_folds(*o); };   // runs only after the whole command line parsed cleanly
//   });
//
// The helpers below bind options to typed variables with a range check, so a value that does not fit is a
// usage error (exit 2) before anything runs. They are defined in main.cpp, the one translation unit that
// includes CLI11 (2.1.2 has no precompiled mode, and its header costs ~2 s of compile per file); a command that
// needs more of CLI11 includes <CLI/CLI.hpp> itself and uses the CLI::App directly.
// Exit codes: 0 success, 2 usage errors (CLI11's, UsageError), 1 everything else (UserError, pneumo::Error).
#pragma once
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/check.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace pneumo {
struct Device;
}

namespace pneumo::cli {

// The command line itself is wrong (a combination CLI11 cannot express): exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// Input the user gave does not work (a file that fails to parse, an impossible request), phrased for the user:
// printed as it is, exit code 1. pneumo::Error from the engine also exits 1.
class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
template <typename... A>
[[noreturn]] void usage_error(const A&... parts) {
  throw UsageError(::pneumo::detail::concat(parts...));
}
template <typename... A>
[[noreturn]] void user_error(const A&... parts) {
  throw UserError(::pneumo::detail::concat(parts...));
}

// A declared option; chain the conditions that CLI11 checks at parse time.
class Opt {
 public:
  explicit Opt(CLI::Option* o) : option_(o) {}
  Opt& required();
  Opt& excludes(const Opt& other);  // not both
  Opt& needs(const Opt& other);     // this one only together with the other
  Opt& existing_file();             // must name a readable file
  Opt& existing_dir();              // must name a folder
  CLI::Option* get() const { return option_; }

 private:
  CLI::Option* option_;
};

// Options bound to variables; the variable's value before parsing is the default shown in --help.
// Numbers outside [min, max] (or not fitting the type) are rejected, never narrowed.
Opt option(CLI::App& app, const std::string& names, std::string& value, const std::string& help);
Opt option(CLI::App& app, const std::string& names, int& value, const std::string& help, int min, int max);
Opt option(CLI::App& app, const std::string& names, int64_t& value, const std::string& help, int64_t min, int64_t max);
Opt option(CLI::App& app, const std::string& names, double& value, const std::string& help, double min, double max);
Opt option(CLI::App& app, const std::string& names, std::vector<std::string>& values, const std::string& help);
Opt choice(CLI::App& app, const std::string& names, std::string& value, const std::string& help,
           const std::vector<std::string>& choices);
Opt flag(CLI::App& app, const std::string& names, bool& value, const std::string& help);
// Positional arguments; anything positional not declared is a usage error.
Opt positional(CLI::App& app, const std::string& name, std::string& value, const std::string& help);
Opt positionals(CLI::App& app, const std::string& name, std::vector<std::string>& values, const std::string& help);

// The same idea has one name and one default in every command.
constexpr uint64_t kDefaultSeed = 1992;
constexpr int kDefaultWorkers = 2;
Opt device_option(CLI::App& app, std::string& device);  // --device auto|cpu|cuda|cuda:N, default auto
Device resolve_device(const std::string& device);       // auto -> cuda when a GPU is found; cuda without one: error
Opt seed_option(CLI::App& app, uint64_t& seed);         // --seed, default 1992
Opt workers_option(CLI::App& app, int& workers);        // --workers, default 2, 0..256 (0: load on this thread)
Opt iters_option(CLI::App& app, int& iters, int default_iters);  // --iters timed repetitions, 1..1000000
Opt size_option(CLI::App& app, int& size, int default_size, int min, int max);  // --size S (pixels, S x S)
Opt out_option(CLI::App& app, std::string& out, const std::string& help);       // --out PATH
Opt threshold_option(CLI::App& app, double& threshold);  // --threshold 0..255 on 8-bit masks, default 127

// Subcommands of a command (`rle encode`, ...); `chosen` tells the runner which one the user named.
CLI::App& subcommand(CLI::App& app, const std::string& name, const std::string& help);
bool chosen(const CLI::App& sub);
// Text under the generated option list of `pneumo NAME --help`.
void footer(CLI::App& app, const std::string& text);

using Runner = std::function<int()>;
using Setup = std::function<Runner(CLI::App&)>;
struct Command {
  std::string name;
  std::string summary;  // one line for `pneumo --help`
  Setup setup;          // declares the options; returns what runs once they parsed
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
