// percentile.h: percentiles of a sample, as numpy.percentile computes them by default ("linear").
//
// With the n values sorted, v[0] <= ... <= v[n-1], the q-th percentile sits at position
// p = q/100 * (n - 1); between the two neighbouring values it is interpolated linearly:
//   percentile = v[floor p] + (p - floor p) * (v[floor p + 1] - v[floor p]).
// The examples use it for the paper's Figure 1(b, c): the 15th, 50th and 85th percentiles of a
// sigmoid's input over a batch.
#pragma once

#include <vector>

namespace examples {

// The q-th percentile (0 <= q <= 100) of `values`; NaN if any value is NaN. Throws std::invalid_argument
// for an empty sample or q outside [0, 100].
double percentile(std::vector<double> values, double q);

// Several percentiles of one sample, sorting it once.
std::vector<double> percentiles(std::vector<double> values, const std::vector<double>& qs);

}  // namespace examples
