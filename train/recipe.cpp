// Recipe planning (parse, expand, order, completion) and running (child processes, GPUs, Slurm).
#include "train/recipe.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "train/dataset.h"
#include "train/folds.h"
#include "train/submission.h"

namespace pneumo::train::recipe {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

template <typename... A>
[[noreturn]] void fail(const A&... parts) {
  throw RecipeError(detail::concat(parts...));
}

// ---------------------------------------------------------------------------------------- substitution

// A binding of one foreach variable: a scalar or an object of fields.
using Scope = std::map<std::string, std::string>;  // "fold" -> "0", "m.model" -> "unet_se50", ...

std::string scalar_text(const json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_float()) {
    std::ostringstream os;
    os << v.get<double>();
    return os.str();
  }
  if (v.is_boolean()) return v.get<bool>() ? "1" : "";
  if (v.is_null()) return "";
  fail(where, ": expected a string or a number, got ", v.type_name());
}

// Replaces ${name} by its value; an unknown name is an error naming `where`.
std::string substitute(const std::string& s, const Scope& scope, const std::string& where) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '$' && i + 1 < s.size() && s[i + 1] == '{') {
      const size_t end = s.find('}', i + 2);
      if (end == std::string::npos) fail(where, ": unclosed '${' in \"", s, "\"");
      const std::string name = s.substr(i + 2, end - i - 2);
      auto it = scope.find(name);
      if (it == scope.end()) fail(where, ": unknown variable '${", name, "}' in \"", s, "\"");
      out += it->second;
      i = end + 1;
    } else {
      out += s[i++];
    }
  }
  return out;
}

bool has_empty_variable(const std::string& s, const Scope& scope) {
  size_t i = 0;
  while ((i = s.find("${", i)) != std::string::npos) {
    const size_t end = s.find('}', i);
    if (end == std::string::npos) return false;
    auto it = scope.find(s.substr(i + 2, end - i - 2));
    if (it != scope.end() && it->second.empty()) return true;
    i = end + 1;
  }
  return false;
}

using Lists = std::map<std::string, std::vector<Scope>>;

// An argument list: strings; groups (arrays of strings) dropped entirely when a variable in them is empty
// (optional flags such as ["--extra-data", "${chex}"]); and joins {"join": LIST, "as": VAR, "value": T,
// "sep": ","}: T expanded for every item of LIST (bound to VAR), joined into one argument.
std::vector<std::string> expand_args(const json& a, const Scope& scope, const Lists& lists, const std::string& where) {
  if (!a.is_array()) fail(where, ": expected an array of arguments");
  std::vector<std::string> out;
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string w = detail::concat(where, "[", i, "]");
    if (a[i].is_array()) {
      bool drop = false;
      for (const json& g : a[i]) {
        if (!g.is_string() && !g.is_number()) fail(w, ": a group holds strings only");
        if (g.is_string() && has_empty_variable(g.get<std::string>(), scope)) drop = true;
      }
      if (drop) continue;
      for (size_t j = 0; j < a[i].size(); ++j)
        out.push_back(substitute(scalar_text(a[i][j], w), scope, detail::concat(w, "[", j, "]")));
    } else if (a[i].is_object()) {
      const json& o = a[i];
      if (!o.contains("join") || !o.contains("value") || !o["join"].is_string())
        fail(w, ": expected {\"join\": LIST, \"as\": VAR, \"value\": TEMPLATE[, \"sep\": \",\"]}");
      const std::string ln = o["join"].get<std::string>();
      auto l = lists.find(ln);
      if (l == lists.end()) fail(w, ".join: no list '", ln, "' under lists");
      const std::string var = o.contains("as") ? scalar_text(o["as"], w + ".as") : ln;
      const std::string sep = o.contains("sep") ? scalar_text(o["sep"], w + ".sep") : ",";
      const std::string tmpl = scalar_text(o["value"], w + ".value");
      std::string joined;
      for (size_t k = 0; k < l->second.size(); ++k) {
        Scope sc = scope;
        for (const auto& [f, v] : l->second[k]) sc[f.empty() ? var : var + "." + f] = v;
        joined += (k ? sep : "") + substitute(tmpl, sc, w + ".value");
      }
      out.push_back(joined);
    } else {
      out.push_back(substitute(scalar_text(a[i], w), scope, w));
    }
  }
  return out;
}

bool glob_match(const std::string& pat, const std::string& s) {
  // '*' matches any run of characters.
  size_t p = 0, t = 0, star = std::string::npos, mark = 0;
  while (t < s.size()) {
    if (p < pat.size() && pat[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pat.size() && pat[p] == s[t]) {
      ++p;
      ++t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

double number_of(const std::string& s, const std::string& where) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || !end || *end != 0) fail(where, ": '", s, "' is not a number");
  return v;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

// ---------------------------------------------------------------------------------------- parsing

Plan parse_plan(const std::string& text, const std::string& file, const std::vector<std::string>& sets) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    fail(file, ": not valid JSON: ", e.what());
  }
  if (!j.is_object()) fail(file, ": the recipe must be a JSON object");
  static const std::set<std::string> top_keys = {"description", "vars", "lists", "state", "step_times", "steps", "env"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!top_keys.count(it.key()))
      fail(file, ": unknown key '", it.key(), "' (known: description, vars, lists, state, step_times, steps, env)");
  Plan plan;
  plan.file = file;
  if (j.contains("description")) plan.description = scalar_text(j["description"], file + ": description");

  // Variables: the file's defaults, then --set NAME=VALUE. null = must be set.
  Scope vars;
  std::set<std::string> required;
  if (j.contains("vars")) {
    if (!j["vars"].is_object()) fail(file, ": vars must be an object of NAME: value");
    for (auto it = j["vars"].begin(); it != j["vars"].end(); ++it) {
      if (it.value().is_null()) required.insert(it.key());
      vars[it.key()] = scalar_text(it.value(), file + ": vars." + it.key());
    }
  }
  for (const std::string& s : sets) {
    const size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0) fail("--set '", s, "': expected NAME=VALUE");
    const std::string name = s.substr(0, eq);
    if (!vars.count(name)) fail("--set ", name, ": ", file, " has no variable '", name, "' under vars");
    vars[name] = s.substr(eq + 1);
    required.erase(name);
  }
  for (const std::string& r : required)
    if (vars[r].empty()) fail(file, ": vars.", r, " must be set (--set ", r, "=VALUE)");
  // Variables may refer to earlier ones (work = ${root}/runs): resolve in a few passes.
  for (int pass = 0; pass < 4; ++pass)
    for (auto& [k, v] : vars)
      if (v.find("${") != std::string::npos) {
        Scope others = vars;
        others.erase(k);
        try {
          v = substitute(v, others, file + ": vars." + k);
        } catch (const RecipeError&) {
          if (pass == 3) throw;
        }
      }
  plan.vars = std::map<std::string, std::string>(vars.begin(), vars.end());
  plan.state = j.contains("state") ? substitute(scalar_text(j["state"], file + ": state"), vars, file + ": state")
                                   : (vars.count("work") ? vars["work"] + "/.recipe" : ".recipe");

  // Environment of every step (e.g. OMP_NUM_THREADS).
  if (j.contains("env")) {
    if (!j["env"].is_object()) fail(file, ": env must be an object of NAME: value");
    for (auto it = j["env"].begin(); it != j["env"].end(); ++it)
      plan.env[it.key()] = substitute(scalar_text(it.value(), file + ": env." + it.key()), vars, file + ": env." + it.key());
  }

  // Lists for foreach: arrays of scalars or of objects with scalar fields.
  Lists lists;
  if (j.contains("lists")) {
    if (!j["lists"].is_object()) fail(file, ": lists must be an object of NAME: [items]");
    for (auto it = j["lists"].begin(); it != j["lists"].end(); ++it) {
      const std::string w = file + ": lists." + it.key();
      std::vector<Scope> items;
      if (it.value().is_object() && it.value().contains("range")) {
        // {"range": N}: 0..N-1 (N may be a variable, e.g. "${k}").
        const std::string n = substitute(scalar_text(it.value()["range"], w + ".range"), vars, w + ".range");
        const double v = number_of(n, w + ".range");
        if (v < 1 || v > 1000 || v != std::floor(v)) fail(w, ".range: '", n, "' is not a count in 1..1000");
        for (int i = 0; i < static_cast<int>(v); ++i) items.push_back(Scope{{"", std::to_string(i)}});
        lists[it.key()] = std::move(items);
        continue;
      }
      if (!it.value().is_array()) fail(w, ": expected an array or {\"range\": N}");
      for (size_t i = 0; i < it.value().size(); ++i) {
        const json& item = it.value()[i];
        Scope s;
        if (item.is_object()) {
          for (auto f = item.begin(); f != item.end(); ++f)
            s[f.key()] = substitute(scalar_text(f.value(), detail::concat(w, "[", i, "].", f.key())), vars,
                                    detail::concat(w, "[", i, "].", f.key()));
        } else {
          s[""] = substitute(scalar_text(item, detail::concat(w, "[", i, "]")), vars, detail::concat(w, "[", i, "]"));
        }
        items.push_back(std::move(s));
      }
      lists[it.key()] = std::move(items);
    }
  }

  // Measured step times.
  if (j.contains("step_times")) {
    const json& t = j["step_times"];
    const std::string w = file + ": step_times";
    if (!t.is_object()) fail(w, ": expected an object");
    for (auto it = t.begin(); it != t.end(); ++it) {
      if (it.key() == "source") {
        plan.times_source = scalar_text(it.value(), w + ".source");
        continue;
      }
      const std::string ww = w + "." + it.key();
      const json& e = it.value();
      if (!e.is_object() || !e.contains("ms") || !e.contains("size") || !e.contains("batch"))
        fail(ww, ": expected {\"size\": S, \"batch\": B, \"ms\": T[, \"source\": ...]}");
      StepTime st;
      if (!e["ms"].is_number() || !e["size"].is_number_integer() || !e["batch"].is_number_integer())
        fail(ww, ": size and batch must be integers and ms a number");
      st.ms = e["ms"].get<double>();
      st.size = e["size"].get<int>();
      st.batch = e["batch"].get<int>();
      if (st.ms <= 0 || st.size <= 0 || st.batch <= 0) fail(ww, ": size, batch and ms must be positive");
      if (e.contains("source")) st.source = scalar_text(e["source"], ww + ".source");
      plan.times[it.key()] = st;
    }
  }

  // Steps.
  if (!j.contains("steps") || !j["steps"].is_array() || j["steps"].empty())
    fail(file, ": steps must be a non-empty array");
  static const std::set<std::string> step_keys = {"id", "foreach", "run", "outputs", "after", "resume",
                                                  "gpu", "report", "cost", "when"};
  std::vector<std::vector<std::string>> after_patterns;
  std::vector<std::string> after_where;
  const json& steps = j["steps"];
  for (size_t si = 0; si < steps.size(); ++si) {
    const json& s = steps[si];
    const std::string w = detail::concat(file, ": steps[", si, "]");
    if (!s.is_object()) fail(w, ": expected an object");
    for (auto it = s.begin(); it != s.end(); ++it)
      if (!step_keys.count(it.key()))
        fail(w, ": unknown key '", it.key(), "' (known: id, foreach, run, outputs, after, resume, gpu, report, cost, when)");
    if (!s.contains("id") || !s["id"].is_string()) fail(w, ".id: required, a string");
    if (!s.contains("run")) fail(w, ".run: required, the arguments after `pneumo`");
    // foreach: {"var": "listname", ...}: the cartesian product in declaration order.
    std::vector<Scope> scopes = {vars};
    if (s.contains("foreach")) {
      if (!s["foreach"].is_object()) fail(w, ".foreach: expected {\"var\": \"list name\"}");
      for (auto it = s["foreach"].begin(); it != s["foreach"].end(); ++it) {
        if (!it.value().is_string()) fail(w, ".foreach.", it.key(), ": expected a list name");
        const std::string ln = it.value().get<std::string>();
        auto l = lists.find(ln);
        if (l == lists.end()) fail(w, ".foreach.", it.key(), ": no list '", ln, "' under lists");
        std::vector<Scope> next;
        for (const Scope& base : scopes)
          for (const Scope& item : l->second) {
            Scope sc = base;
            for (const auto& [k, v] : item) sc[k.empty() ? it.key() : it.key() + "." + k] = v;
            next.push_back(std::move(sc));
          }
        scopes = std::move(next);
      }
    }
    for (const Scope& sc : scopes) {
      if (s.contains("when")) {
        // A step instance runs only when this expands to a non-empty string other than "0"/"false".
        const std::string v = substitute(scalar_text(s["when"], w + ".when"), sc, w + ".when");
        if (v.empty() || v == "0" || v == "false") continue;
      }
      Step st;
      st.id = substitute(s["id"].get<std::string>(), sc, w + ".id");
      const std::string ws = w + " (" + st.id + ")";
      if (st.id.empty() || st.id.find_first_of(" /\t\n'\"") != std::string::npos)
        fail(ws, ".id: '", st.id, "' must be non-empty without spaces, quotes or '/'");
      st.argv = expand_args(s["run"], sc, lists, ws + ".run");
      if (st.argv.empty()) fail(ws, ".run: empty command");
      if (st.argv[0] == "recipe") fail(ws, ".run: a recipe step cannot run `pneumo recipe`");
      if (s.contains("outputs")) st.outputs = expand_args(s["outputs"], sc, lists, ws + ".outputs");
      if (s.contains("resume")) {
        const json& r = s["resume"];
        if (!r.is_object() || !r.contains("if") || !r.contains("run"))
          fail(ws, ".resume: expected {\"if\": PATH, \"run\": [args]}");
        st.resume_if = substitute(scalar_text(r["if"], ws + ".resume.if"), sc, ws + ".resume.if");
        st.resume_argv = expand_args(r["run"], sc, lists, ws + ".resume.run");
      }
      if (s.contains("gpu")) {
        if (!s["gpu"].is_boolean()) fail(ws, ".gpu: expected true or false");
        st.gpu = s["gpu"].get<bool>();
      }
      if (s.contains("report")) {
        st.report = true;
        st.label = substitute(scalar_text(s["report"], ws + ".report"), sc, ws + ".report");
      }
      if (s.contains("cost")) {
        const json& c = s["cost"];
        if (!c.is_object()) fail(ws, ".cost: expected an object");
        auto field = [&](const char* k, bool need) -> std::string {
          if (!c.contains(k)) {
            if (need) fail(ws, ".cost.", k, ": required");
            return "";
          }
          return substitute(scalar_text(c[k], ws + ".cost." + k), sc, ws + ".cost." + k);
        };
        st.has_cost = true;
        st.cost.model = field("model", true);
        st.cost.size = static_cast<int>(number_of(field("size", true), ws + ".cost.size"));
        st.cost.batch = static_cast<int>(number_of(field("batch", true), ws + ".cost.batch"));
        st.cost.images = static_cast<int64_t>(number_of(field("images", true), ws + ".cost.images"));
        const std::string e = field("epochs", false), u = field("units", false);
        if (!e.empty()) st.cost.epochs = number_of(e, ws + ".cost.epochs");
        if (!u.empty()) st.cost.units = number_of(u, ws + ".cost.units");
        if (st.cost.size <= 0 || st.cost.batch <= 0 || st.cost.images < 0)
          fail(ws, ".cost: size and batch must be positive");
      }
      std::vector<std::string> pats;
      if (s.contains("after")) pats = expand_args(s["after"], sc, lists, ws + ".after");
      after_patterns.push_back(pats);
      after_where.push_back(ws + ".after");
      plan.steps.push_back(std::move(st));
    }
  }

  // Ids unique; dependencies resolved (a pattern with '*' may match several steps, each must match one).
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    auto [it, inserted] = index.emplace(plan.steps[i].id, i);
    if (!inserted) fail(file, ": two steps have the id '", plan.steps[i].id, "'");
  }
  std::vector<std::vector<size_t>> deps(plan.steps.size());
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    for (const std::string& p : after_patterns[i]) {
      size_t matched = 0;
      for (size_t k = 0; k < plan.steps.size(); ++k)
        if (k != i && glob_match(p, plan.steps[k].id)) {
          deps[i].push_back(k);
          ++matched;
        }
      if (!matched) fail(after_where[i], ": '", p, "' matches no step id");
    }
    std::sort(deps[i].begin(), deps[i].end());
    deps[i].erase(std::unique(deps[i].begin(), deps[i].end()), deps[i].end());
    for (size_t k : deps[i]) plan.steps[i].after.push_back(plan.steps[k].id);
  }
  // Topological order, stable by declaration; levels = longest dependency chain.
  std::vector<int> state(plan.steps.size(), 0);  // 0 new, 1 visiting, 2 done
  std::vector<size_t> order;
  std::function<void(size_t, std::vector<std::string>&)> visit = [&](size_t i, std::vector<std::string>& path) {
    if (state[i] == 2) return;
    path.push_back(plan.steps[i].id);
    if (state[i] == 1) {
      std::string cycle;
      for (const auto& p : path) cycle += (cycle.empty() ? "" : " -> ") + p;
      fail(file, ": the steps' dependencies form a cycle: ", cycle);
    }
    state[i] = 1;
    int level = 0;
    for (size_t k : deps[i]) {
      visit(k, path);
      level = std::max(level, plan.steps[k].level + 1);
    }
    plan.steps[i].level = level;
    state[i] = 2;
    path.pop_back();
    order.push_back(i);
  };
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    std::vector<std::string> path;
    visit(i, path);
  }
  std::vector<Step> sorted;
  for (size_t i : order) sorted.push_back(plan.steps[i]);
  plan.steps = std::move(sorted);
  return plan;
}

Plan load_plan(const std::string& path, const std::vector<std::string>& sets) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open the recipe");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_plan(ss.str(), path, sets);
}

// ---------------------------------------------------------------------------------------- state

std::string marker_path(const Plan& plan, const Step& step) { return plan.state + "/" + step.id + ".done"; }
std::string log_path(const Plan& plan, const Step& step) { return plan.state + "/" + step.id + ".log"; }

bool is_complete(const Plan& plan, const Step& step) {
  std::ifstream f(marker_path(plan, step));
  if (!f) return false;
  json m;
  try {
    f >> m;
  } catch (const std::exception&) {
    return false;  // a damaged marker: the step runs again
  }
  if (!m.is_object() || !m.contains("argv") || m["argv"] != json(step.argv)) return false;
  for (const std::string& o : step.outputs)
    if (!fs::exists(o)) return false;
  return true;
}

// Complete as above, and no dependency re-ran since: every `after` step is itself complete and its marker is
// not newer than this step's (as make does with files). Without this, re-running a training step left the
// evaluate step after it marked done with its old figures. Steps are in topological order.
std::map<std::string, bool> completion(const Plan& plan) {
  std::map<std::string, bool> done;
  for (const Step& s : plan.steps) {
    bool ok = is_complete(plan, s);
    if (ok && !s.after.empty()) {
      std::error_code ec;
      const auto mine = fs::last_write_time(marker_path(plan, s), ec);
      for (const std::string& d : s.after) {
        auto it = done.find(d);
        std::error_code ed;
        const auto theirs = fs::last_write_time(plan.state + "/" + d + ".done", ed);
        if (it == done.end() || !it->second || ec || ed || theirs > mine) {
          ok = false;
          break;
        }
      }
    }
    done[s.id] = ok;
  }
  return done;
}

void write_marker(const Plan& plan, const Step& step, double seconds) {
  fs::create_directories(plan.state);
  json m = {{"id", step.id}, {"argv", step.argv}, {"outputs", step.outputs}, {"seconds", seconds},
            {"finished", utc_now()}};
  write_text_atomic(marker_path(plan, step), m.dump(2) + "\n");
}

const std::vector<std::string>& command_for(const Step& step) {
  if (!step.resume_argv.empty() && !step.resume_if.empty() && fs::exists(step.resume_if)) return step.resume_argv;
  return step.argv;
}

double estimate_hours(const Plan& plan, const Step& step, std::string* source) {
  if (!step.has_cost) return -1;
  auto it = plan.times.find(step.cost.model);
  bool fallback = false;
  if (it == plan.times.end()) {
    it = plan.times.find("*");
    fallback = true;
  }
  if (it == plan.times.end()) {
    if (source) *source = "no step time for " + step.cost.model;
    return -1;
  }
  const StepTime& t = it->second;
  // Time per step scales with the pixels of a batch: ms * (size/size0)^2 * (batch/batch0).
  const double ms = t.ms * std::pow(double(step.cost.size) / t.size, 2) * double(step.cost.batch) / t.batch;
  const double steps = std::ceil(double(step.cost.images) / step.cost.batch) * step.cost.epochs;
  if (source) *source = (fallback ? "as '*': " : "") + t.source;
  return steps * ms * step.cost.units / 3.6e6;
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) {
    if (!out.empty()) out += ' ';
    const bool plain = !a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                         "0123456789_-./=,:@%+") == std::string::npos;
    if (plain) {
      out += a;
    } else {
      out += '\'';
      for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
      out += '\'';
    }
  }
  return out;
}

std::string describe(const Plan& plan, const std::string& exe) {
  std::ostringstream os;
  char buf[256];
  os << "recipe " << plan.file;
  if (!plan.description.empty()) os << ": " << plan.description;
  os << "\nstate " << plan.state << "\n";
  int complete = 0;
  double total = 0, pending = 0;
  bool any_cost = false;
  std::map<std::string, std::string> sources;
  int level = -1;
  const std::map<std::string, bool> completed = completion(plan);
  for (const Step& s : plan.steps) {
    if (s.level != level) {
      level = s.level;
      os << "-- level " << level << "\n";
    }
    const bool done = completed.at(s.id);
    complete += done;
    const bool resume = !done && &command_for(s) != &s.argv;
    std::string src;
    const double h = estimate_hours(plan, s, &src);
    if (h >= 0) {
      any_cost = true;
      total += h;
      if (!done) pending += h;
      sources[s.cost.model] = src;
    }
    std::snprintf(buf, sizeof buf, "%-8s %-34s", done ? "done" : resume ? "resume" : "to run", s.id.c_str());
    os << buf;
    if (h >= 0) {
      if (h >= 1)
        std::snprintf(buf, sizeof buf, " %7.1f h  ", h);
      else
        std::snprintf(buf, sizeof buf, " %7.1f min", h * 60);
      os << buf;
    }
    if (!s.after.empty()) {
      os << "  after ";
      if (s.after.size() <= 3) {
        for (size_t i = 0; i < s.after.size(); ++i) os << (i ? "," : "") << s.after[i];
      } else {
        os << s.after.front() << ", ... (" << s.after.size() << " steps)";
      }
    }
    os << "\n         $ " << exe << " " << shell_join(command_for(s)) << "\n";
  }
  std::snprintf(buf, sizeof buf, "%zu steps, %d complete, %zu to run\n", plan.steps.size(), complete,
                plan.steps.size() - complete);
  os << buf;
  if (any_cost) {
    std::snprintf(buf, sizeof buf, "estimated GPU hours: %.2f in all, %.2f still to run (on one device; "
                  "--gpus 0,..,N-1 runs independent steps at once)\n", total, pending);
    os << buf;
    os << "step times";
    if (!plan.times_source.empty()) os << " (" << plan.times_source << ")";
    os << ", scaled by pixels x batch from the measured size and batch; training = forward+backward per step,\n"
          "prediction and BatchNorm passes = 1/3 of it; validation, data loading and checkpoints not counted:\n";
    for (const auto& [model, src] : sources) os << "  " << model << ": " << src << "\n";
  }
  return os.str();
}

// ---------------------------------------------------------------------------------------- running

namespace {

pid_t spawn(const std::string& exe, const std::vector<std::string>& argv, const std::string& log,
            const std::string& gpu, const std::map<std::string, std::string>& env) {
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) fail(log, ": cannot open the step's log for writing");
  std::vector<std::string> args = {exe};
  args.insert(args.end(), argv.begin(), argv.end());
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fd);
    fail("cannot start a child process for ", argv[0]);
  }
  if (pid == 0) {
    // Its own process group: a terminal's Ctrl-C reaches only the recipe, which passes it on once (a second
    // SIGINT would make pneumo train quit without saving).
    ::setpgid(0, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::close(fd);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    if (!gpu.empty()) ::setenv("CUDA_VISIBLE_DEVICES", gpu.c_str(), 1);
    ::execv(exe.c_str(), cargs.data());
    std::fprintf(stderr, "cannot run %s\n", exe.c_str());
    ::_exit(127);
  }
  ::close(fd);
  return pid;
}

volatile sig_atomic_t g_signal = 0;
void on_stop_signal(int sig) { g_signal = sig; }

// SIGINT/SIGTERM while steps run: passed on to the children (pneumo train saves its state and exits), no new
// step starts, and the recipe exits non-zero once they are gone. The previous handlers come back after.
struct SignalForwarding {
  struct sigaction old_int {}, old_term {};
  SignalForwarding() {
    g_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: waitpid returns EINTR so the loop sees the signal
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
  }
  ~SignalForwarding() {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
  }
};

std::string tail_of(const std::string& path, size_t lines) {
  std::ifstream f(path);
  std::vector<std::string> all;
  std::string line;
  while (std::getline(f, line)) all.push_back(line);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += "    " + all[i] + "\n";
  return out;
}

}  // namespace

RunResult run_plan(const Plan& plan, const RunOptions& o) {
  RunResult r;
  fs::create_directories(plan.state);
  std::map<std::string, int> status;  // 0 waiting, 1 running, 2 complete, 3 failed, 4 blocked
  const std::map<std::string, bool> done = completion(plan);
  for (const Step& s : plan.steps) status[s.id] = done.at(s.id) ? 2 : 0;
  std::vector<const Step*> todo;
  for (const Step& s : plan.steps) {
    if (!o.only.empty() && s.id != o.only) continue;
    if (status[s.id] == 2) {
      ++r.skipped;
      if (o.verbose) std::printf("[skip] %s (complete)\n", s.id.c_str());
      continue;
    }
    todo.push_back(&s);
  }
  if (!o.only.empty()) {
    bool found = false;
    for (const Step& s : plan.steps) found = found || s.id == o.only;
    if (!found) fail("--only ", o.only, ": ", plan.file, " has no step with this id");
    for (const Step* s : todo)
      for (const std::string& d : s->after)
        if (status[d] != 2) fail("--only ", o.only, ": its dependency ", d, " is not complete");
  }
  const std::vector<std::string> slots = o.gpus.empty() ? std::vector<std::string>{""} : o.gpus;
  std::vector<bool> slot_busy(slots.size(), false);
  struct Running {
    const Step* step;
    size_t slot;
    std::chrono::steady_clock::time_point start;
  };
  std::map<pid_t, Running> running;
  bool stop = false, forwarded = false;
  SignalForwarding signals;
  while (true) {
    if (g_signal && !forwarded) {
      forwarded = true;
      stop = true;
      if (r.first_failure.empty()) r.first_failure = "interrupted by signal " + std::to_string(int(g_signal));
      for (const auto& [pid, run] : running) ::kill(pid, g_signal);
    }
    // Launch every ready step while a slot is free (in plan order).
    if (!stop) {
      for (const Step* s : todo) {
        if (status[s->id] != 0) continue;
        bool ready = true, blocked = false;
        for (const std::string& d : s->after) {
          ready = ready && status[d] == 2;
          blocked = blocked || status[d] >= 3;
        }
        if (blocked) {
          status[s->id] = 4;
          continue;
        }
        if (!ready) continue;
        size_t slot = slots.size();
        for (size_t k = 0; k < slots.size(); ++k)
          if (!slot_busy[k]) {
            slot = k;
            break;
          }
        if (slot == slots.size()) break;
        const std::string log = log_path(plan, *s);
        {
          std::ofstream lf(log, std::ios::app);
          lf << "== " << utc_now() << " " << o.exe << " " << shell_join(command_for(*s)) << "\n";
        }
        const std::vector<std::string>& cmd = command_for(*s);
        if (o.verbose) {
          std::printf("[run%s] %s%s: pneumo %s\n", slots[slot].empty() ? "" : (" gpu " + slots[slot]).c_str(),
                      s->id.c_str(), &cmd != &s->argv ? " (resuming)" : "", shell_join(cmd).c_str());
          std::fflush(stdout);
        }
        const pid_t pid = spawn(o.exe, cmd, log, slots[slot], plan.env);
        slot_busy[slot] = true;
        status[s->id] = 1;
        running[pid] = Running{s, slot, std::chrono::steady_clock::now()};
      }
    }
    if (running.empty()) break;
    int wstatus = 0;
    const pid_t pid = ::waitpid(-1, &wstatus, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;  // a signal: forwarded at the top of the loop
      fail("waiting for the recipe's steps failed");
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const Running run = it->second;
    running.erase(it);
    slot_busy[run.slot] = false;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - run.start).count();
    const int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    bool ok = code == 0;
    std::string why;
    if (ok) {
      std::string missing;
      for (const std::string& out : run.step->outputs)
        if (!fs::exists(out)) missing += (missing.empty() ? "" : ", ") + out;
      if (!missing.empty()) {
        ok = false;
        why = "exited 0 but did not write " + missing;
      }
    } else {
      why = "exit " + std::to_string(code);
    }
    if (ok) {
      write_marker(plan, *run.step, secs);
      status[run.step->id] = 2;
      ++r.ran;
      r.ran_ids.push_back(run.step->id);
      if (o.verbose) std::printf("[done] %s (%.1f s)\n", run.step->id.c_str(), secs);
    } else {
      status[run.step->id] = 3;
      ++r.failed;
      const std::string log = log_path(plan, *run.step);
      if (r.first_failure.empty()) r.first_failure = run.step->id + " (" + why + "), log " + log;
      std::fprintf(stderr, "[fail] %s: %s; last lines of %s:\n%s", run.step->id.c_str(), why.c_str(), log.c_str(),
                   tail_of(log, 8).c_str());
      stop = true;  // no new steps; the running ones finish
    }
    std::fflush(stdout);
  }
  for (const Step* s : todo)
    if (status[s->id] == 0 || status[s->id] == 4) ++r.not_run;
  if (g_signal) r.interrupted = int(g_signal);
  return r;
}

std::string report(const Plan& plan) {
  std::ostringstream os;
  for (const Step& s : plan.steps) {
    if (!s.report) continue;
    std::ifstream f(log_path(plan, s));
    std::string line, metric, pos, errors;
    while (std::getline(f, line)) {
      if (line.rfind("metric", 0) == 0) metric = line.substr(line.rfind(' ') + 1);
      if (line.rfind("Dice on truth positives", 0) == 0) pos = line.substr(line.rfind(' ') + 1);
      if (line.rfind("false-positive images", 0) == 0) errors = line;
    }
    char buf[512];
    std::snprintf(buf, sizeof buf, "| %s | %s | %s | %s |\n", s.label.c_str(), metric.empty() ? "?" : metric.c_str(),
                  pos.empty() ? "?" : pos.c_str(), errors.c_str());
    os << buf;
  }
  if (os.str().empty()) return "";
  return "| step | metric (mean Dice, empty = 1) | Dice on positives | error images |\n|---|---|---|---|\n" + os.str();
}

// ---------------------------------------------------------------------------------------- Slurm

void emit_slurm(const Plan& plan, const std::string& dir, const std::string& exe, const std::string& config,
                const std::vector<std::string>& sets, const std::string& sbatch_extra) {
  fs::create_directories(dir);
  fs::create_directories(plan.state);  // Slurm does not create the folder of --output
  const std::string cwd = fs::current_path().string();  // relative paths of the recipe mean this folder
  int max_level = 0;
  for (const Step& s : plan.steps) max_level = std::max(max_level, s.level);
  std::vector<std::string> base = {exe, "recipe", fs::absolute(config).string()};
  for (const std::string& s : sets) {
    base.push_back("--set");
    base.push_back(s);
  }
  std::string submit =
      "#!/bin/bash\n# Submits the recipe " + config +
      " as one Slurm array job per dependency level; each level starts when the previous one succeeded.\n"
      "set -euo pipefail\ncd \"$(dirname \"$0\")\"\n";
  std::string prev;
  for (int level = 0; level <= max_level; ++level) {
    std::vector<const Step*> steps;
    bool gpu = false;
    for (const Step& s : plan.steps)
      if (s.level == level) {
        steps.push_back(&s);
        gpu = gpu || s.gpu;
      }
    if (steps.empty()) continue;
    std::string name = "stage-" + std::to_string(level) + ".sbatch";
    std::ostringstream sb;
    sb << "#!/bin/bash\n#SBATCH --job-name=recipe-" << level << "\n#SBATCH --array=0-" << steps.size() - 1 << "\n";
    if (gpu) sb << "#SBATCH --gres=gpu:1\n";
    sb << "#SBATCH --output=" << fs::absolute(plan.state).string() << "/slurm-%A_%a.out\n";
    sb << "#SBATCH --chdir=" << cwd << "\n";
    if (!sbatch_extra.empty()) sb << "#SBATCH " << sbatch_extra << "\n";
    sb << "# Each task runs one step through `pneumo recipe --only`, which skips it when complete, resumes an\n"
          "# interrupted training and records it; the step's own command line is in the comment.\n"
          "set -euo pipefail\ncase \"$SLURM_ARRAY_TASK_ID\" in\n";
    for (size_t i = 0; i < steps.size(); ++i) {
      std::vector<std::string> cmd = base;
      cmd.push_back("--only");
      cmd.push_back(steps[i]->id);
      sb << "  " << i << ")  # pneumo " << shell_join(steps[i]->argv) << "\n     exec " << shell_join(cmd) << " ;;\n";
    }
    sb << "  *) echo \"no step for task $SLURM_ARRAY_TASK_ID\" >&2; exit 1 ;;\nesac\n";
    write_text_atomic(dir + "/" + name, sb.str());
    fs::permissions(dir + "/" + name, fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add);
    const std::string var = "j" + std::to_string(level);
    submit += var + "=$(sbatch --parsable" + (prev.empty() ? "" : " --dependency=afterok:$" + prev) + " " + name +
              ")\necho \"level " + std::to_string(level) + ": " + std::to_string(steps.size()) +
              " steps, job $" + var + "\"\n";
    prev = var;
  }
  write_text_atomic(dir + "/submit.sh", submit);
  fs::permissions(dir + "/submit.sh", fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add);
}

// ---------------------------------------------------------------------------------------- helper commands

namespace {

std::string absolute_image_path(const std::string& images, const std::string& id) {
  for (const char* ext : {".png", ".jpg", ".jpeg", ".dcm"}) {
    const fs::path p = fs::path(images) / (id + ext);
    if (fs::exists(p)) return fs::absolute(p).string();
  }
  fail(images, ": no image for id '", id, "' (.png, .jpg, .jpeg or .dcm)");
}

void write_lines(const std::string& path, const std::vector<std::string>& lines, const std::string& header = "") {
  std::string text = header;
  for (const std::string& l : lines) text += l + "\n";
  fs::create_directories(fs::path(path).parent_path());
  write_text_atomic(path, text);
}

}  // namespace

std::string split_dataset(const SplitOptions& o) {
  MaskFolderDataset ds(o.images, o.masks);
  std::vector<std::string> ids;
  std::vector<bool> pos;
  std::vector<std::string> paths;
  for (size_t i = 0; i < ds.size(); ++i) {
    ids.push_back(ds.id(i));
    paths.push_back(fs::absolute(ds.image_path(i)).string());
    pos.push_back(ds.positive(i));
  }
  if (ids.empty()) fail(o.images, ": no images");
  // A stratified subset: positives and negatives in their proportions, seeded.
  std::vector<size_t> chosen;
  {
    std::vector<size_t> p, n;
    for (size_t i = 0; i < ids.size(); ++i) (pos[i] ? p : n).push_back(i);
    const auto pp = philox_permutation(static_cast<int64_t>(p.size()), o.seed, 11);
    const auto pn = philox_permutation(static_cast<int64_t>(n.size()), o.seed, 12);
    const size_t total = o.n > 0 ? std::min<size_t>(static_cast<size_t>(o.n), ids.size()) : ids.size();
    const size_t np = static_cast<size_t>(std::llround(double(total) * p.size() / ids.size()));
    for (size_t i = 0; i < std::min(np, p.size()); ++i) chosen.push_back(p[static_cast<size_t>(pp[i])]);
    for (size_t i = 0; i < std::min(total - np, n.size()); ++i) chosen.push_back(n[static_cast<size_t>(pn[i])]);
    std::sort(chosen.begin(), chosen.end());
  }
  // Held-out test images: every class dealt by the same seeded shuffle.
  std::vector<bool> cpos;
  for (size_t i : chosen) cpos.push_back(pos[i]);
  const int parts = std::max(2, static_cast<int>(std::lround(1.0 / std::max(o.test_fraction, 1e-3))));
  const std::vector<int> test_part = stratified_folds(cpos, parts, o.seed + 1);
  std::vector<std::string> train_ids, train_paths, test_ids, test_paths, labels;
  std::vector<bool> train_pos;
  size_t test_pos = 0;
  for (size_t c = 0; c < chosen.size(); ++c) {
    const std::string& id = ids[chosen[c]];
    if (test_part[c] == 0) {
      test_ids.push_back(id);
      test_paths.push_back(paths[chosen[c]]);
      test_pos += cpos[c];
    } else {
      train_ids.push_back(id);
      train_paths.push_back(paths[chosen[c]]);
      train_pos.push_back(cpos[c]);
      labels.push_back(id + "," + (cpos[c] ? "1" : "0"));
    }
  }
  size_t ntp = 0;
  for (bool b : train_pos) ntp += b;
  if (ntp < static_cast<size_t>(o.k)) fail("recipe-split: ", ntp, " positive training images, too few for ", o.k, " folds");
  const std::vector<int> assignment = stratified_folds(train_pos, o.k, o.seed);
  std::vector<FoldSplit> seg, cls;
  for (int f = 0; f < o.k; ++f) {
    seg.push_back(make_split(train_ids, train_pos, assignment, f, FoldTask::Segmentation));
    cls.push_back(make_split(train_ids, train_pos, assignment, f, FoldTask::Classification));
  }
  write_folds(o.out + "/folds-seg", seg);
  write_folds(o.out + "/folds-cls", cls);
  fold_image_lists(o.out + "/folds-cls", o.images, o.out + "/folds-cls");
  write_lines(o.out + "/train-ids.txt", train_ids);
  write_lines(o.out + "/train.txt", train_paths);
  write_lines(o.out + "/test.txt", test_paths);
  std::vector<std::string> sub;
  for (const std::string& id : test_ids) sub.push_back(id + ",-1");
  write_lines(o.out + "/test-ids.csv", sub, "ImageId,EncodedPixels\n");
  write_lines(o.out + "/labels.csv", labels, "image,label\n");
  return detail::concat(chosen.size(), " images: ", train_ids.size(), " for training (", ntp, " positive) in ", o.k,
                        " folds, ", test_ids.size(), " held out (", test_pos, " positive) -> ", o.out);
}

void fold_image_lists(const std::string& folds, const std::string& images, const std::string& out) {
  const int k = count_folds(folds);
  if (k == 0) fail(folds, ": no fold0/ folder");
  for (int f = 0; f < k; ++f) {
    const FoldSplit s = read_fold(folds, f);
    std::vector<std::string> paths;
    for (const std::string& id : s.val) paths.push_back(absolute_image_path(images, id));
    write_lines(out + "/fold" + std::to_string(f) + "/val-images.txt", paths);
  }
}

void concat_csv(const std::vector<std::string>& inputs, const std::string& out) {
  if (inputs.empty()) fail("recipe-concat: no input files");
  std::string header, text;
  for (const std::string& in : inputs) {
    std::ifstream f(in);
    if (!f) fail(in, ": cannot open");
    std::string line;
    if (!std::getline(f, line)) fail(in, ": empty file (expected a header line)");
    if (header.empty()) {
      header = line;
      text = line + "\n";
    } else if (line != header) {
      fail(in, ": header '", line, "' differs from '", header, "' of ", inputs.front());
    }
    while (std::getline(f, line))
      if (!line.empty()) text += line + "\n";
  }
  write_text_atomic(out, text);
}

}  // namespace pneumo::train::recipe
