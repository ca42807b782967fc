#include "train/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace pneumo::train {

namespace {
std::string hms(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  char buf[32];
  const long t = std::lround(s);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%02ld:%02ld", t / 60, t % 60);
  return buf;
}
}  // namespace

Progress::Progress() {
  tty_ = isatty(fileno(stdout)) != 0;
  if (const char* e = std::getenv("PNEUMO_PROGRESS")) {
    if (std::strcmp(e, "plain") == 0) tty_ = false;
    if (std::strcmp(e, "bar") == 0) tty_ = true;
  }
}

void Progress::begin(const std::string& label, int64_t total_steps, int64_t first_step) {
  label_ = label;
  total_ = total_steps;
  first_ = first_step;
  last_plain_step_ = first_step;
  start_ = last_print_ = std::chrono::steady_clock::now();
  open_ = false;
}

void Progress::update(int64_t step, double loss, double images_per_s) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  const double eta = step > first_ ? elapsed / (step - first_) * (total_ - step) : NAN;
  const bool last = step >= total_;
  if (tty_) {
    if (since < 0.2 && !last) return;  // redraw at most 5 times a second
    const int width = 28;
    const int filled = total_ > 0 ? static_cast<int>(width * step / total_) : width;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(width - filled), '.');
    std::printf("\r%s [%s] %lld/%lld  loss %.4f  %.1f img/s  ETA %s ", label_.c_str(), bar.c_str(),
                static_cast<long long>(step), static_cast<long long>(total_), loss, images_per_s, hms(eta).c_str());
    std::fflush(stdout);
    open_ = true;
  } else {
    const int64_t tenth = std::max<int64_t>(1, total_ / 10);
    if (!last && step - last_plain_step_ < tenth && since < 30) return;
    std::printf("%s step %lld/%lld  loss %.4f  %.1f img/s  ETA %s\n", label_.c_str(), static_cast<long long>(step),
                static_cast<long long>(total_), loss, images_per_s, hms(eta).c_str());
    std::fflush(stdout);
    last_plain_step_ = step;
  }
  last_print_ = now;
}

void Progress::finish() {
  if (tty_ && open_) {
    std::printf("\n");
    std::fflush(stdout);
  }
  open_ = false;
}

}  // namespace pneumo::train
