// test_requirements.h: what a test needs from the machine (a dataset, a tool), checked before it runs.
//
// A test that needs something missing is declared with doctest's skip decorator,
//   TEST_CASE("..." * doctest::skip(fashion_mnist_missing())) { ... }
// so that doctest reports it as skipped, never as passed.
#pragma once

#include <cstdlib>
#include <string>

#include "data/mnist.h"

// Fashion-MNIST's IDX files are not in the Debian package's folder (apt-get install dataset-fashion-mnist).
inline bool fashion_mnist_missing() { return !ng::data::MNIST::available(ng::data::default_fashion_mnist_dir()); }

// python3 cannot import `modules` (a comma-separated list, as in an import statement).
inline bool python3_missing(const std::string& modules) {
  return std::system(("python3 -c 'import " + modules + "' > /dev/null 2>&1").c_str()) != 0;
}
