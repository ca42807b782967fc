// Shared by the libFuzzer harnesses: engine errors (pneumo::Error) are the expected answer to bad input and
// are swallowed; anything else escaping (another exception type, a crash, a sanitizer report) is a finding.
// Readers that take a path get the bytes through a per-process scratch file in /dev/shm (or /tmp).
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "kernels/check.h"

namespace pneumo::fuzz {

inline std::string scratch_dir() {
  static const std::string dir = [] {
    const char* base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string d = std::string(base) + "/pneumo-fuzz-" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline void write_file(const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

template <typename Fn>
void expect_clean(Fn fn) {
  try {
    fn();
  } catch (const pneumo::Error& e) {
    // The message must be something a user can act on: non-empty.
    if (e.what()[0] == 0) std::abort();
  }
}

}  // namespace pneumo::fuzz
