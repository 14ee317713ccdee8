// percentile.cpp: sort once, then interpolate between neighbours (formula in percentile.h).
#include "percentile.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace examples {

std::vector<double> percentiles(std::vector<double> values, const std::vector<double>& qs) {
  if (values.empty()) throw std::invalid_argument("percentile: the sample is empty (expected at least one value)");
  for (double q : qs)
    if (!(q >= 0 && q <= 100))
      throw std::invalid_argument("percentile: q = " + std::to_string(q) + " is outside [0, 100]");
  std::vector<double> result;
  if (std::any_of(values.begin(), values.end(), [](double v) { return std::isnan(v); })) {
    result.assign(qs.size(), std::numeric_limits<double>::quiet_NaN());
    return result;
  }
  std::sort(values.begin(), values.end());
  const double last = static_cast<double>(values.size() - 1);
  for (double q : qs) {
    const double position = q / 100 * last;
    const auto below = static_cast<std::size_t>(std::floor(position));
    const std::size_t above = std::min(below + 1, values.size() - 1);
    const double fraction = position - static_cast<double>(below);
    result.push_back(values[below] + fraction * (values[above] - values[below]));
  }
  return result;
}

double percentile(std::vector<double> values, double q) { return percentiles(std::move(values), {q}).front(); }

}  // namespace examples
