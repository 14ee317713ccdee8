// test_helpers.h: small helpers that several test files share: float64 leaves, the message of an
// expected ng::Error and checks that it names what it should, gradcheck with a labelled failure, the
// largest difference of two tensors, and bit-for-bit comparison across thread counts.
//
// Header-only (inline functions and macros); a test file includes it after <doctest/doctest.h> and
// "normgrad.h".
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "autograd/thread_pool.h"
#include "normgrad.h"

// Checks that `expr` throws ng::Error whose message contains each of the strings that follow.
#define CHECK_ERROR_MENTIONS(expr, ...)           \
  for (const char* expected_part : {__VA_ARGS__}) \
  CHECK_THROWS_WITH_AS(expr, doctest::Contains(expected_part), ng::Error)

// Checks that `message` contains `part`, and shows the whole message when it does not.
#define CHECK_MENTIONS(message, part) CHECK_MESSAGE(mentions(message, part), "message: ", message)

using Inputs = std::vector<ng::Tensor>;
using Fn = std::function<ng::Tensor(const Inputs&)>;

// A float64 leaf (requires_grad) holding `values` in `shape`.
inline ng::Tensor leaf(const std::vector<double>& values, const ng::Shape& shape) {
  return ng::tensor(values, shape, ng::float64).requires_grad_();
}
// A float64 leaf of `shape` with values drawn uniformly from [low, high) by the seeded generator.
inline ng::Tensor uniform_leaf(const ng::Shape& shape, double low, double high) {
  ng::Tensor t = ng::rand(shape, ng::float64) * (high - low) + low;
  t.requires_grad_();
  return t;
}
// The same as a 1-d tensor [values.size()].
inline ng::Tensor leaf(const std::vector<double>& values) {
  return leaf(values, {static_cast<int64_t>(values.size())});
}

// The message of the ng::Error that f throws; fails the test (and returns "") when it throws none.
template <class F> std::string error_message(F&& f) {
  try {
    f();
  } catch (const ng::Error& e) {
    return e.what();
  }
  FAIL_CHECK("expected an ng::Error, none was thrown");
  return "";
}

inline bool mentions(const std::string& message, const std::string& part) {
  return message.find(part) != std::string::npos;
}

// gradcheck(f, inputs) in float64; on failure the check names `what` and gradcheck's message.
inline void check_gradients(const std::string& what, const Fn& f, const Inputs& inputs) {
  const ng::GradcheckResult result = ng::gradcheck(f, inputs);
  CHECK_MESSAGE(result.ok, what << ": " << result.message);
}

// gradgradcheck(f, inputs) in float64: the second derivatives against finite differences of the first.
inline void check_second_derivatives(const std::string& what, const Fn& f, const Inputs& inputs) {
  const ng::GradcheckResult result = ng::gradgradcheck(f, inputs);
  CHECK_MESSAGE(result.ok, what << " (second derivatives): " << result.message);
}

// Both of the above.
inline void check_first_and_second_derivatives(const std::string& what, const Fn& f, const Inputs& inputs) {
  check_gradients(what, f, inputs);
  check_second_derivatives(what, f, inputs);
}

// The largest |a_i - b_i| of two tensors of one shape.
inline double max_abs_difference(const ng::Tensor& a, const ng::Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double largest = 0;
  for (std::size_t i = 0; i < va.size(); ++i) largest = std::max(largest, std::abs(va[i] - vb[i]));
  return largest;
}

// True when set_num_threads(2) cannot give two threads (normgrad built without OpenMP).
inline bool two_threads_unavailable() {
  const int before = ng::get_num_threads();
  ng::set_num_threads(2);
  const bool unavailable = ng::get_num_threads() != 2;
  ng::set_num_threads(before);
  return unavailable;
}

// Same dtype, shape and bytes (NaN included: the comparison is of bits, not values).
inline bool same_bits(const ng::Tensor& a, const ng::Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  return ng::dispatch_float("same_bits", a.dtype(), [&]<class T>() {
    return std::memcmp(a.data<T>(), b.data<T>(), static_cast<std::size_t>(a.numel()) * sizeof(T)) == 0;
  });
}

// The named results of a computation, for comparing runs.
using NamedResults = std::vector<std::pair<std::string, ng::Tensor>>;

// Runs `compute` with 1 thread, then with 2, and checks that every named result has the same bits. (A test
// that calls it is skipped where two_threads_unavailable().)
inline void check_same_bits_on_1_and_2_threads(const std::function<NamedResults()>& compute) {
  const int before = ng::get_num_threads();
  ng::set_num_threads(1);
  const NamedResults one = compute();
  ng::set_num_threads(2);
  REQUIRE(ng::get_num_threads() == 2);
  // Every loop that can be shared out is, as on cores close together, whatever the pool measured here.
  ng::kernel::set_cores_far_for_tests(0);
  const NamedResults two = compute();
  ng::kernel::set_cores_far_for_tests(-1);
  ng::set_num_threads(before);
  REQUIRE(one.size() == two.size());
  for (std::size_t i = 0; i < one.size(); ++i) {
    INFO(one[i].first);
    CHECK(same_bits(one[i].second, two[i].second));
  }
}
