// Training progress output: on a terminal a bar per epoch (step, loss, images/s, ETA) redrawn in place;
// when stdout is not a terminal (logs, CI) plain lines at about every tenth of an epoch or every 30 s.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace pneumo::train {

class Progress {
 public:
  Progress();  // decides terminal vs plain from isatty(stdout); PNEUMO_PROGRESS=plain|bar overrides
  void begin(const std::string& label, int64_t total_steps, int64_t first_step = 0);
  void update(int64_t step, double loss, double images_per_s);  // step = steps done so far
  void finish();  // ends the bar's line (no-op for plain output)
  bool terminal() const { return tty_; }

 private:
  bool tty_ = false, open_ = false;
  std::string label_;
  int64_t total_ = 0, first_ = 0, last_plain_step_ = -1;
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace pneumo::train
