// Generic checkers every op and layer goes through (tests link them; they live in the library so benches
// and tools can use them too).
//  - gradcheck: float64 central differences against backward, on a random projection of the output, and a
//    check that backward ADDS to existing leaf gradients (the accumulation convention).
//  - Inputs for kinked functions (relu, abs, max-pool) should be drawn away from kinks with
//    `random_away_from`; the checker also refuses an element whose one-sided differences disagree, naming it.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.h"

namespace pneumo::ag {

struct GradcheckOptions {
  double step = 1e-6;
  double atol = 1e-7;
  double rtol = 1e-5;
  uint64_t seed = 1234;
  bool check_accumulation = true;
  int max_elements_per_input = 4096;  // larger inputs are checked on a fixed random subset
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // first failure, with input index, element, analytic and numeric values
};

// `fn` maps the inputs (float64 CPU Variables with requires_grad) to one output Variable of any shape.
GradcheckResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

// float64 CPU tensor uniform in [lo, hi] with every element at least `margin` away from each kink point.
Tensor random_away_from(const Shape& shape, double lo, double hi, const std::vector<double>& kinks, double margin,
                        uint64_t seed);

}  // namespace pneumo::ag
