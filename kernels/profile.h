// Per-op time aggregation (PNEUMO_PROFILE=1, issue 12 part 2 item 1), device-agnostic: tensor/profile.cpp
// times each op scope (cudaEvents on CUDA, std::chrono on the CPU) and hands the finished scopes here.
// Scopes nest (a backward node around its tensor ops, an op calling another op); each scope is charged its
// SELF time (inclusive minus its children's inclusive), so the sum over rows never counts a span twice and
// sum(ops) / wall shows how much of the wall time no op covered (host gaps, launch latency, syncs).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace pneumo::kernels::profile {

// One finished scope: its key, its parent's index in the same batch (-1: outermost), inclusive time.
struct Scope {
  std::string op, shape, direction;
  int parent = -1;
  double inclusive_ms = 0;
};

struct Row {
  std::string op, shape, direction;
  int64_t calls = 0;
  double total_ms = 0;  // self time summed over calls
};

class Aggregator {
 public:
  // Adds a batch of scopes whose parents precede them (indices into `scopes`), charging self times.
  // A child longer than its parent (timer resolution) leaves the parent at 0, never negative.
  void add(const std::vector<Scope>& scopes);
  void add_row(const std::string& op, const std::string& shape, const std::string& direction, double self_ms);
  // Rows sorted by total time, largest first (ties by op, shape, direction: a stable table).
  std::vector<Row> rows() const;
  double total_ms() const;  // sum of every row
  int64_t calls() const;
  bool empty() const { return rows_.empty(); }
  void clear() { rows_.clear(); }
  // The top-N table: rank, total ms, % of the op sum, calls, mean ms, direction, op, shape; then the op sum
  // against `wall_ms` (omitted when wall_ms <= 0) and the gap wall - sum, with `title` on the first line.
  std::string table(int top, double wall_ms, const std::string& title) const;

 private:
  std::map<std::tuple<std::string, std::string, std::string>, std::pair<int64_t, double>> rows_;
};

}  // namespace pneumo::kernels::profile
