// Builds the text of every pneumo::Error; one place decides its format.
#include "kernels/check.h"

#include <cstdlib>
#include <cstring>

namespace pneumo {
namespace detail {
void throw_error(const char* kind, const char* expr, const char* file, int line, const std::string& msg) {
  const char* base = std::strrchr(file, '/');
  std::string text = msg;
  if (expr && *expr) text += std::string(msg.empty() ? "" : " ") + "[" + kind + ": " + expr + "]";
  text += std::string(" (") + (base ? base + 1 : file) + ":" + std::to_string(line) + ")";
  throw Error(text);
}
}  // namespace detail

bool sync_debug_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("PNEUMO_SYNC_DEBUG");
    return v && std::strcmp(v, "0") != 0 && *v;
  }();
  return enabled;
}
}  // namespace pneumo
