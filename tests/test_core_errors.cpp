// test_core_errors.cpp: bad input to the ops (autograd/ops.h) throws an ng::Error whose message names
// the op, the shapes or dtypes it got, and what it expected.
#include <doctest/doctest.h>

#include "normgrad.h"

using doctest::Contains;

// Checks that `expr` throws ng::Error whose message contains each of the strings that follow.
#define CHECK_ERROR_MENTIONS(expr, ...) \
  for (const char* expected_part : {__VA_ARGS__}) CHECK_THROWS_WITH_AS(expr, Contains(expected_part), ng::Error)

TEST_CASE("binary ops on shapes that do not broadcast throw an error naming the op and both shapes") {
  ng::Tensor a = ng::zeros({2, 3});
  ng::Tensor b = ng::zeros({4});
  CHECK_ERROR_MENTIONS(ng::add(a, b), "add", "[2, 3]", "[4]");
  CHECK_ERROR_MENTIONS(ng::sub(a, b), "sub", "[2, 3]", "[4]");
  CHECK_ERROR_MENTIONS(ng::mul(b, a), "mul", "[4]", "[2, 3]");
  CHECK_ERROR_MENTIONS(ng::div(a, b), "div", "[2, 3]", "[4]");
  CHECK_ERROR_MENTIONS(ng::pow(a, b), "pow", "[2, 3]", "[4]");
  CHECK_ERROR_MENTIONS(a + ng::zeros({3, 2}), "add", "[2, 3]", "[3, 2]");
}

TEST_CASE("binary ops on float32 and float64 together throw an error naming both dtypes") {
  ng::Tensor a = ng::zeros({2}, ng::float32);
  ng::Tensor b = ng::zeros({2}, ng::float64);
  CHECK_ERROR_MENTIONS(ng::add(a, b), "add", "float32", "float64");
  CHECK_ERROR_MENTIONS(ng::mul(b, a), "mul", "float32", "float64");
  CHECK_ERROR_MENTIONS(ng::matmul(ng::zeros({2, 2}), ng::zeros({2, 2}, ng::float64)), "matmul", "float32", "float64");
  CHECK_ERROR_MENTIONS(ng::cat({a, b}), "cat", "float32", "float64");
}

TEST_CASE("arithmetic on int64 tensors throws an error naming the op and the dtype") {
  ng::Tensor i = ng::arange(3, ng::int64);
  CHECK_ERROR_MENTIONS(ng::exp(i), "exp", "int64");
  CHECK_ERROR_MENTIONS(i + i, "add", "int64");
  CHECK_ERROR_MENTIONS(ng::sqrt(i), "sqrt", "int64");
  CHECK_ERROR_MENTIONS(ng::log_softmax(i, 0), "log_softmax", "int64");
  CHECK_ERROR_MENTIONS(ng::logsumexp(i, 0), "logsumexp", "int64");
}

TEST_CASE("matmul of mismatched shapes throws an error naming both shapes and the inner sizes") {
  CHECK_ERROR_MENTIONS(ng::matmul(ng::zeros({60, 784}), ng::zeros({100, 10})), "matmul", "[60, 784]", "[100, 10]",
                       "784", "100");
  CHECK_ERROR_MENTIONS(ng::matmul(ng::zeros({3}), ng::zeros({4, 5})), "matmul", "[3]", "[4, 5]", "3", "4");
  CHECK_ERROR_MENTIONS(ng::matmul(ng::zeros({4, 5}), ng::zeros({3})), "matmul", "[4, 5]", "[3]");
  CHECK_ERROR_MENTIONS(ng::matmul(ng::zeros({3}), ng::zeros({4})), "matmul", "[3]", "[4]");
  CHECK_ERROR_MENTIONS(ng::matmul(ng::zeros({2, 3, 4}), ng::zeros({3, 4, 5})), "matmul", "[2, 3, 4]", "[3, 4, 5]",
                       "batch");
  CHECK_ERROR_MENTIONS(ng::matmul(ng::zeros({2, 2, 3, 4}), ng::zeros({3, 4, 5})), "matmul", "[2, 2, 3, 4]", "batch");
  CHECK_ERROR_MENTIONS(ng::matmul(ng::scalar(1), ng::zeros({4, 5})), "matmul", "[]", "[4, 5]");
}

TEST_CASE("out-of-range dims throw an error naming the op, the dim and the valid range") {
  ng::Tensor x = ng::zeros({2, 3});
  CHECK_ERROR_MENTIONS(x.sum({2}), "sum", "dim 2", "-2 to 1");
  CHECK_ERROR_MENTIONS(x.mean({-3}), "mean", "dim -3");
  CHECK_ERROR_MENTIONS(x.sum({0, -2}), "sum", "twice");
  CHECK_ERROR_MENTIONS(ng::max(x, 2), "max", "dim 2");
  CHECK_ERROR_MENTIONS(ng::log_softmax(x, -3), "log_softmax", "dim -3");
  CHECK_ERROR_MENTIONS(ng::logsumexp(x, 2), "logsumexp", "dim 2");
  CHECK_ERROR_MENTIONS(ng::logsumexp(ng::scalar(1.0), 1), "logsumexp", "dim 1");
  CHECK_ERROR_MENTIONS(x.transpose(0, 2), "transpose", "dim 2");
  CHECK_ERROR_MENTIONS(x.permute({0, 2}), "permute", "dim 2");
  CHECK_ERROR_MENTIONS(x.permute({0}), "permute", "[2, 3]");
  CHECK_ERROR_MENTIONS(x.permute({1, 1}), "permute", "repeated");
  CHECK_ERROR_MENTIONS(x.unsqueeze(3), "unsqueeze", "dim 3");
  CHECK_ERROR_MENTIONS(x.squeeze(2), "squeeze", "dim 2");
  CHECK_ERROR_MENTIONS(ng::cat({x, x}, 2), "cat", "dim 2");
  CHECK_ERROR_MENTIONS(ng::slice(x, 2, 0, 1), "slice", "dim 2");
  CHECK_ERROR_MENTIONS(ng::index_select(x, 2, ng::arange(1, ng::int64)), "index_select", "dim 2");
  CHECK_ERROR_MENTIONS(x.size(2), "size", "dim 2");
  CHECK_ERROR_MENTIONS(ng::max(ng::scalar(1), 0), "max", "0-dim");
}

TEST_CASE("reshape to a shape with another number of elements throws an error naming both shapes") {
  ng::Tensor x = ng::zeros({2, 3});
  CHECK_ERROR_MENTIONS(x.reshape({4, 2}), "reshape", "[2, 3]", "[4, 2]", "6");
  CHECK_ERROR_MENTIONS(x.view({-1, 4}), "reshape", "[2, 3]");
  CHECK_ERROR_MENTIONS(x.reshape({-1, -1}), "reshape", "-1");
  CHECK_ERROR_MENTIONS(x.reshape({-2, 3}), "reshape", "negative");
}

TEST_CASE("slice ranges outside the dim throw an error naming the range and the shape") {
  ng::Tensor x = ng::zeros({3, 4});
  CHECK_ERROR_MENTIONS(ng::slice(x, 0, 1, 5), "slice", "[1, 5)", "[3, 4]");
  CHECK_ERROR_MENTIONS(ng::slice(x, 1, 3, 2), "slice", "[3, 2)");
  CHECK_ERROR_MENTIONS(ng::slice(x, 1, -9, 2), "slice", "[3, 4]");
}

TEST_CASE("index_select with an index out of range or of the wrong kind throws an error") {
  ng::Tensor x = ng::zeros({3, 4});
  CHECK_ERROR_MENTIONS(ng::index_select(x, 0, ng::from_vector<int64_t>({0, 3}, {2})), "index_select", "index 3",
                       "[3, 4]");
  CHECK_ERROR_MENTIONS(ng::index_select(x, 1, ng::from_vector<int64_t>({-1}, {1})), "index_select", "index -1");
  CHECK_ERROR_MENTIONS(ng::index_select(x, 0, ng::zeros({2})), "index_select", "int64", "float32");
  CHECK_ERROR_MENTIONS(ng::index_select(x, 0, ng::zeros({1, 1}, ng::int64)), "index_select", "1-D", "[1, 1]");
}

TEST_CASE("cat of tensors that differ outside the cat dim throws an error naming both shapes") {
  CHECK_ERROR_MENTIONS(ng::cat({ng::zeros({2, 3}), ng::zeros({2, 4})}, 0), "cat", "[2, 3]", "[2, 4]");
  CHECK_ERROR_MENTIONS(ng::cat({ng::zeros({2, 3}), ng::zeros({2, 3, 1})}, 0), "cat", "[2, 3]", "[2, 3, 1]");
  CHECK_ERROR_MENTIONS(ng::cat({}, 0), "cat", "none");
}

TEST_CASE("broadcast_to and sum_to between incompatible shapes throw an error naming both shapes") {
  CHECK_ERROR_MENTIONS(ng::broadcast_to(ng::zeros({2, 3}), {3, 3}), "broadcast_to", "[2, 3]", "[3, 3]");
  CHECK_ERROR_MENTIONS(ng::broadcast_to(ng::zeros({2, 3}), {3}), "broadcast_to", "[2, 3]", "[3]");
  CHECK_ERROR_MENTIONS(ng::sum_to(ng::zeros({2, 3}), {4}), "sum_to", "[2, 3]", "[4]");
  CHECK_ERROR_MENTIONS(ng::sum_to(ng::zeros({3}), {2, 3}), "sum_to", "[3]", "[2, 3]");
}

TEST_CASE("mean over zero elements and max over an empty dim throw instead of returning garbage") {
  CHECK_ERROR_MENTIONS(ng::zeros({0, 3}).mean(), "mean", "[0, 3]");
  CHECK_ERROR_MENTIONS(ng::max(ng::zeros({0, 3}), 0), "max", "empty");
}
