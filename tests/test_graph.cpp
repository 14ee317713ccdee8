#include <doctest/doctest.h>
#include "normgrad.h"
TEST_CASE("smoke") {
  ng::Tensor x = ng::tensor({1, 2, 3}, ng::float64).requires_grad_();
  ng::Tensor y = (x * x + 2.0 * x).sum();
  y.backward();
  CHECK(x.grad().at({1}) == doctest::Approx(6));
}
