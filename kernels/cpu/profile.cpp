// See profile.h.
#include "kernels/cpu/profile.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace pneumo::kernels::cpu {
namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Totals {
  std::mutex mu;
  std::map<std::string, std::pair<int64_t, int64_t>> by_name;  // self ns, calls
  int64_t start_ns = now_ns();
  ~Totals() {
    if (by_name.empty()) return;
    std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> rows(by_name.begin(), by_name.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
    int64_t total = 0;
    for (const auto& r : rows) total += r.second.first;
    std::fprintf(stderr, "\n== PNEUMO_CPU_PROFILE: self wall time per CPU scope (process wall %.2f s)\n",
                 static_cast<double>(now_ns() - start_ns) * 1e-9);
    std::fprintf(stderr, "%-34s %10s %7s %9s\n", "scope", "seconds", "share", "calls");
    for (const auto& r : rows)
      std::fprintf(stderr, "%-34s %10.3f %6.1f%% %9lld\n", r.first.c_str(), static_cast<double>(r.second.first) * 1e-9,
                   100.0 * static_cast<double>(r.second.first) / static_cast<double>(std::max<int64_t>(total, 1)),
                   static_cast<long long>(r.second.second));
    std::fprintf(stderr, "%-34s %10.3f\n", "total", static_cast<double>(total) * 1e-9);
  }
};

Totals& totals() {
  static Totals t;
  return t;
}

thread_local ProfileScope* current = nullptr;

}  // namespace

bool profile_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("PNEUMO_CPU_PROFILE");
    if (v == nullptr || *v == '\0' || std::strcmp(v, "0") == 0) return false;
    totals();  // constructed now so it is destroyed (and prints) after the scopes' last use
    return true;
  }();
  return on;
}

bool profile_shapes() {
  static const bool on = profile_enabled() && std::strcmp(std::getenv("PNEUMO_CPU_PROFILE"), "shapes") == 0;
  return on;
}

const char* profile_label(const char* label) {
  static std::mutex mu;
  static std::set<std::string> labels;
  std::lock_guard<std::mutex> lock(mu);
  return labels.insert(label).first->c_str();
}

void ProfileScope::begin() {
  if (omp_in_parallel()) return;
  timed_ = true;
  parent_ = current;
  current = this;
  start_ns_ = now_ns();
}

void ProfileScope::end() {
  if (!timed_) return;
  const int64_t elapsed = now_ns() - start_ns_;
  current = parent_;
  if (parent_) parent_->child_ns_ += elapsed;
  Totals& t = totals();
  std::lock_guard<std::mutex> lock(t.mu);
  auto& e = t.by_name[name_];
  e.first += elapsed - child_ns_;
  e.second += 1;
}

}  // namespace pneumo::kernels::cpu
