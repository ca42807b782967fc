// `pneumo <subcommand>`: the one executable, and the only translation unit that includes CLI11 (the option
// helpers of command.h are defined here). Errors from any layer end here as one line on stderr,
// "pneumo <command>: <message>", and an exit code: 2 for usage errors, 1 for everything else.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <limits>
#include <memory>
#include <type_traits>

#include "kernels/check.h"
#include "tensor/cuda_runtime.h"
#include "tensor/tensor.h"
#include "tools/pneumo/command.h"

namespace pneumo::cli {

std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

Opt& Opt::required() {
  option_->required();
  return *this;
}
Opt& Opt::excludes(const Opt& other) {
  option_->excludes(other.option_);
  return *this;
}
Opt& Opt::needs(const Opt& other) {
  option_->needs(other.option_);
  return *this;
}
Opt& Opt::existing_file() {
  option_->check(CLI::ExistingFile);
  return *this;
}
Opt& Opt::existing_dir() {
  option_->check(CLI::ExistingDirectory);
  return *this;
}

namespace {
// CLI11's Range names the bounds with std::to_string (6 decimals for doubles); this says them as written.
template <typename T>
CLI::Validator range(T min, T max) {
  std::ostringstream text;
  text << "in " << min << ".." << max;
  const std::string description = text.str();
  return CLI::Validator(
      [min, max, description](std::string& input) -> std::string {
        T v{};
        if (CLI::detail::lexical_cast(input, v))
          return !(v >= min && v <= max) ? input + " is not " + description : "";  // NaN fails too
        double d = 0;  // a number that does not fit T: say why
        if (!CLI::detail::lexical_cast(input, d)) return "'" + input + "' is not a number " + description;
        if (d >= static_cast<double>(min) && d <= static_cast<double>(max))
          return "'" + input + "' is not a whole number " + description;
        return input + " is not " + description;
      },
      description);
}
}  // namespace

Opt option(CLI::App& app, const std::string& names, std::string& value, const std::string& help) {
  return Opt(app.add_option(names, value, help));
}
Opt option(CLI::App& app, const std::string& names, int& value, const std::string& help, int min, int max) {
  return Opt(app.add_option(names, value, help)->check(range(min, max)));
}
Opt option(CLI::App& app, const std::string& names, int64_t& value, const std::string& help, int64_t min, int64_t max) {
  return Opt(app.add_option(names, value, help)->check(range(min, max)));
}
Opt option(CLI::App& app, const std::string& names, double& value, const std::string& help, double min, double max) {
  return Opt(app.add_option(names, value, help)->check(range(min, max)));
}
Opt option(CLI::App& app, const std::string& names, std::vector<std::string>& values, const std::string& help) {
  return Opt(app.add_option(names, values, help));
}
Opt choice(CLI::App& app, const std::string& names, std::string& value, const std::string& help,
           const std::vector<std::string>& choices) {
  return Opt(app.add_option(names, value, help)->check(CLI::IsMember(choices)));
}
Opt flag(CLI::App& app, const std::string& names, bool& value, const std::string& help) {
  return Opt(app.add_flag(names, value, help));
}
Opt positional(CLI::App& app, const std::string& name, std::string& value, const std::string& help) {
  return Opt(app.add_option(name, value, help));
}
Opt positionals(CLI::App& app, const std::string& name, std::vector<std::string>& values, const std::string& help) {
  return Opt(app.add_option(name, values, help));
}

Opt device_option(CLI::App& app, std::string& device) {
  device = "auto";
  return Opt(app.add_option("--device", device, "auto (a GPU when one is found, else the CPU), cpu, cuda or cuda:N")
                 ->check(CLI::Validator(
                     [](std::string& s) -> std::string {
                       if (s == "auto" || s == "cpu" || s == "cuda") return {};
                       if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() < 8 &&
                           std::all_of(s.begin() + 5, s.end(), [](char c) { return c >= '0' && c <= '9'; }))
                         return {};
                       return "'" + s + "' is not auto, cpu, cuda or cuda:N";
                     },
                     "auto|cpu|cuda|cuda:N")));
}
Device resolve_device(const std::string& device) {
  if (device == "auto") return cuda::available() ? Device::cuda(0) : Device::cpu();
  const Device d = Device::parse(device);
  if (d.is_cuda()) {
    if (!cuda::available())
      user_error("--device ", device, ": no GPU found", cuda::compiled_with_cuda() ? "" : " (this build is CPU only)");
    const int n = static_cast<int>(cuda::devices().size());
    if (d.index >= n) user_error("--device ", device, ": only ", n, " GPU(s) found");
    // The launchers use the current device's context: cuda:1 must be current before its first kernel.
    // (One GPU per process; GPU work runs on this thread, the loader and prefetch threads prepare host images.)
    cuda::set_device(d.index);
  }
  return d;
}
Opt seed_option(CLI::App& app, uint64_t& seed) {
  seed = kDefaultSeed;
  return Opt(app.add_option("--seed", seed, "seed of every random draw (Philox)"));
}
Opt workers_option(CLI::App& app, int& workers) {
  workers = kDefaultWorkers;
  return option(app, "--workers", workers, "data-loading threads (0: load on the main thread)", 0, 256);
}
Opt iters_option(CLI::App& app, int& iters, int default_iters) {
  iters = default_iters;
  return option(app, "--iters", iters, "timed repetitions (median reported) after one warm-up", 1, 1000000);
}
Opt size_option(CLI::App& app, int& size, int default_size, int min, int max) {
  size = default_size;
  return option(app, "--size", size, "image side in pixels (S x S)", min, max);
}
Opt out_option(CLI::App& app, std::string& out, const std::string& help) {
  return Opt(app.add_option("--out", out, help));
}
Opt threshold_option(CLI::App& app, double& threshold) {
  threshold = 127;
  return option(app, "--threshold", threshold, "mask pixels above this value (0..255) are 'on'", 0.0, 255.0);
}

CLI::App& subcommand(CLI::App& app, const std::string& name, const std::string& help) {
  return *app.add_subcommand(name, help);
}
bool chosen(const CLI::App& sub) { return sub.parsed(); }
void footer(CLI::App& app, const std::string& text) { app.footer(text); }

}  // namespace pneumo::cli

namespace {

// "pneumo rle decode" for the deepest subcommand the parser reached.
std::string command_path(const CLI::App& app) {
  std::string path = "pneumo";
  const CLI::App* at = &app;
  for (;;) {
    const auto subs = at->get_subcommands();
    if (subs.empty()) break;
    at = subs.front();
    path += " " + at->get_name();
  }
  return path;
}

// Engine errors carry "[check failed: EXPR] (file.cpp:LINE)" for whoever debugs the engine; what the user
// asked for failed for the reason in the message before it.
std::string message_of(const pneumo::Error& e) {
  std::string m = e.what();
  if (std::getenv("PNEUMO_DEBUG")) return m;
  const size_t bracket = m.rfind(" [check failed: ");
  const size_t at = bracket != std::string::npos ? bracket : m.rfind(" (");
  if (at != std::string::npos && m.back() == ')' && m.find(".cpp:", at) != std::string::npos) m.erase(at);
  return m;
}

// Messages quote file content; a binary file must not break the one line or the terminal: control bytes and
// bytes that are not UTF-8 become \xNN, and the line is cut at 400 bytes.
std::string one_line(const std::string& m) {
  std::string out;
  char hex[8];
  for (size_t i = 0; i < m.size() && out.size() < 400;) {
    const unsigned char c = static_cast<unsigned char>(m[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    for (size_t k = 1; k < n; ++k)
      if (i + k >= m.size() || (static_cast<unsigned char>(m[i + k]) >> 6) != 0x2) n = 0;
    if (n == 0 || (n == 1 && (c < 0x20 || c == 0x7f))) {
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
      ++i;
    } else {
      out.append(m, i, n);
      i += n;
    }
  }
  if (out.size() >= 400) out += "...";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace pneumo::cli;
  // A file-size limit (ulimit -f) reached mid-write must be an error naming the file (EFBIG, reported by
  // write_file_atomic, the previous file kept), not death by SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);
  auto& commands = registry();
  std::sort(commands.begin(), commands.end(), [](const auto& a, const auto& b) { return a.name < b.name; });

  CLI::App app("pneumo " PNEUMO_VERSION
               ": a native engine for the SIIM-ACR pneumothorax segmentation 2nd-place solution",
               "pneumo");
  app.set_version_flag("--version", "pneumo " PNEUMO_VERSION);
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  std::vector<std::pair<CLI::App*, Runner>> runners;
  for (const Command& c : commands) {
    CLI::App* sub = app.add_subcommand(c.name, c.summary);
    runners.emplace_back(sub, c.setup(*sub));
  }
  app.footer("pneumo <command> --help lists the options of a command.");  // after: subcommands copy it
  if (argc < 2) {
    std::cout << app.help();
    return 2;
  }
  if (std::strcmp(argv[1], "help") == 0) {
    std::cout << app.help();
    return 0;
  }
  if (argv[1][0] != '-' &&
      !std::any_of(commands.begin(), commands.end(), [&](const Command& c) { return c.name == argv[1]; })) {
    std::fprintf(stderr, "pneumo: unknown command '%s' (pneumo --help lists them)\n", argv[1]);
    return 2;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const std::string path = command_path(app);
    std::fprintf(stderr, "%s: %s (see %s --help)\n", path.c_str(), one_line(e.what()).c_str(), path.c_str());
    return 2;
  }

  const std::string path = command_path(app);
  try {
    for (auto& [sub, run] : runners)
      if (sub->parsed()) return run();
    return 2;  // unreachable: require_subcommand(1)
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: %s (see %s --help)\n", path.c_str(), one_line(e.what()).c_str(), path.c_str());
    return 2;
  } catch (const UserError& e) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), one_line(e.what()).c_str());
  } catch (const pneumo::Error& e) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), one_line(message_of(e)).c_str());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: out of memory\n", path.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", path.c_str(), one_line(e.what()).c_str());
  }
  return 1;
}
