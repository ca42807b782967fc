// Error checking for every layer: PNEUMO_CHECK and its CUDA/cuDNN/cuBLAS variants throw pneumo::Error
// carrying the failed expression, file, line and a message (callers put shapes in the message).
// PNEUMO_SYNC_DEBUG=1 in the environment synchronises after every launch so a fault is blamed on its op.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace pneumo {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
inline void stream_all(std::ostringstream&) {}
template <typename T, typename... Rest>
void stream_all(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  stream_all(os, rest...);
}
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  stream_all(os, args...);
  return os.str();
}
[[noreturn]] void throw_error(const char* kind, const char* expr, const char* file, int line, const std::string& msg);
}  // namespace detail

// True when PNEUMO_SYNC_DEBUG=1 was set when the process first asked.
bool sync_debug_enabled();

}  // namespace pneumo

#define PNEUMO_CHECK(cond, ...)                                                                        \
  do {                                                                                                 \
    if (!(cond))                                                                                       \
      ::pneumo::detail::throw_error("check failed", #cond, __FILE__, __LINE__,                        \
                                    ::pneumo::detail::concat(__VA_ARGS__));                            \
  } while (0)

// Unconditional failure with a message.
#define PNEUMO_FAIL(...) \
  ::pneumo::detail::throw_error("error", "", __FILE__, __LINE__, ::pneumo::detail::concat(__VA_ARGS__))
