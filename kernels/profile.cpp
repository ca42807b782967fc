#include "kernels/profile.h"

#include <algorithm>
#include <cstdio>

namespace pneumo::kernels::profile {

void Aggregator::add(const std::vector<Scope>& scopes) {
  std::vector<double> children(scopes.size(), 0.0);
  for (size_t i = 0; i < scopes.size(); ++i) {
    const int p = scopes[i].parent;
    if (p >= 0 && static_cast<size_t>(p) < i) children[static_cast<size_t>(p)] += scopes[i].inclusive_ms;
  }
  for (size_t i = 0; i < scopes.size(); ++i) {
    const Scope& s = scopes[i];
    add_row(s.op, s.shape, s.direction, std::max(0.0, s.inclusive_ms - children[i]));
  }
}

void Aggregator::add_row(const std::string& op, const std::string& shape, const std::string& direction,
                         double self_ms) {
  auto& r = rows_[std::make_tuple(op, shape, direction)];
  r.first += 1;
  r.second += self_ms;
}

std::vector<Row> Aggregator::rows() const {
  std::vector<Row> out;
  out.reserve(rows_.size());
  for (const auto& kv : rows_)
    out.push_back({std::get<0>(kv.first), std::get<1>(kv.first), std::get<2>(kv.first), kv.second.first,
                   kv.second.second});
  // std::map order already breaks ties by (op, shape, direction); stable_sort keeps it.
  std::stable_sort(out.begin(), out.end(), [](const Row& a, const Row& b) { return a.total_ms > b.total_ms; });
  return out;
}

double Aggregator::total_ms() const {
  double t = 0;
  for (const auto& kv : rows_) t += kv.second.second;
  return t;
}

int64_t Aggregator::calls() const {
  int64_t n = 0;
  for (const auto& kv : rows_) n += kv.second.first;
  return n;
}

std::string Aggregator::table(int top, double wall_ms, const std::string& title) const {
  const std::vector<Row> r = rows();
  const double sum = total_ms();
  std::string out = title + "\n";
  char line[512];
  std::snprintf(line, sizeof line, "%4s %11s %6s %7s %10s %4s  %-28s %s\n", "rank", "total ms", "%sum", "calls",
                "mean ms", "dir", "op", "shape");
  out += line;
  const size_t n = top > 0 ? std::min(r.size(), static_cast<size_t>(top)) : r.size();
  double shown = 0;
  for (size_t i = 0; i < n; ++i) {
    shown += r[i].total_ms;
    std::snprintf(line, sizeof line, "%4zu %11.3f %6.2f %7lld %10.4f %4s  %-28s %s\n", i + 1, r[i].total_ms,
                  sum > 0 ? 100.0 * r[i].total_ms / sum : 0.0, static_cast<long long>(r[i].calls),
                  r[i].total_ms / static_cast<double>(r[i].calls), r[i].direction.c_str(), r[i].op.c_str(),
                  r[i].shape.c_str());
    out += line;
  }
  if (n < r.size()) {
    std::snprintf(line, sizeof line, "     %11.3f %6.2f  (%zu more rows)\n", sum - shown,
                  sum > 0 ? 100.0 * (sum - shown) / sum : 0.0, r.size() - n);
    out += line;
  }
  std::snprintf(line, sizeof line, "sum over ops %.3f ms in %lld calls (%zu rows)", sum,
                static_cast<long long>(calls()), r.size());
  out += line;
  if (wall_ms > 0) {
    std::snprintf(line, sizeof line, "; wall %.3f ms; ops cover %.1f%%, gap (wall - ops) %.3f ms", wall_ms,
                  100.0 * sum / wall_ms, wall_ms - sum);
    out += line;
  }
  out += "\n";
  return out;
}

}  // namespace pneumo::kernels::profile
