// test_anomaly.cpp: anomaly mode (graph.h: detect_anomaly, DetectAnomalyGuard, is_anomaly_enabled).
//
// What is specified here: with anomaly mode on, the first recorded op whose output holds a NaN or Inf
// throws, naming the op, its forward sequence number and its inputs' shapes (and names); the backward
// stops at the first node that returns a NaN or Inf gradient and names that node and the input; with it
// off the same code runs and the NaN or Inf is simply in the result. The guard restores the previous
// state, and the mode is per thread.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <thread>

#include "normgrad.h"
#include "test_helpers.h"

// ---- forward -------------------------------------------------------------------------------------------

TEST_CASE("with anomaly mode on, log of a negative number throws naming 'log', its forward op number and input shape") {
  ng::DetectAnomalyGuard anomaly;
  ng::Tensor x = leaf({1, -2, 3});
  const std::string message = error_message([&] { ng::log(x); });
  CHECK_MENTIONS(message, "anomaly");
  CHECK_MENTIONS(message, "'log'");
  CHECK_MENTIONS(message, "forward op #");
  CHECK_MENTIONS(message, "inputs [3] float64");
  CHECK_MENTIONS(message, "NaN at element 1");
}

TEST_CASE("with anomaly mode on, a division by zero throws naming 'div', both inputs' shapes and the Inf") {
  ng::DetectAnomalyGuard anomaly;
  ng::Tensor a = leaf({1, 2, 3, 4, 5, 6}).reshape({2, 3});
  ng::Tensor b = ng::tensor({1, 0, 2}, ng::float64);
  const std::string message = error_message([&] { ng::div(a, b); });
  CHECK_MENTIONS(message, "'div'");
  CHECK_MENTIONS(message, "forward op #");
  CHECK_MENTIONS(message, "[2, 3] float64, [3] float64");
  CHECK_MENTIONS(message, "Inf at element 1");
}

TEST_CASE("the forward op number in the message is the node's sequence number") {
  ng::DetectAnomalyGuard anomaly;
  ng::Tensor x = leaf({4, 0});
  ng::Tensor y = x * 2;  // records 'mul' and then x's AccumulateGrad: two nodes
  ng::Tensor z = y * 3;  // one node, the last made before div's
  const uint64_t next = z.grad_fn()->sequence_nr + 1;
  const std::string message = error_message([&] { ng::div(ng::scalar(1, ng::float64), z); });
  CHECK_MENTIONS(message, "forward op #" + std::to_string(next));
}

TEST_CASE("with anomaly mode off, the same ops do not throw: the output holds the NaN and the Inf") {
  ng::Tensor x = leaf({1, -2, 3});
  ng::Tensor y = ng::log(x);
  CHECK(std::isnan(y.at({1})));
  ng::Tensor z = leaf({1, 2}) / ng::tensor({0, 1}, ng::float64);
  CHECK(std::isinf(z.at({0})));
}

TEST_CASE("anomaly mode checks only ops that record a node: the same NaN without requires_grad does not throw") {
  ng::DetectAnomalyGuard anomaly;
  ng::Tensor y = ng::log(ng::tensor({-1}, ng::float64));
  CHECK(std::isnan(y.at({0})));
}

TEST_CASE("the forward message names an input by its name when it has one") {
  ng::DetectAnomalyGuard anomaly;
  ng::Tensor w = leaf({-1, 1});
  w.set_name("encoder.weight");
  const std::string message = error_message([&] { w.sqrt(); });
  CHECK_MENTIONS(message, "'sqrt'");
  CHECK_MENTIONS(message, "'encoder.weight'");
}

// ---- backward ------------------------------------------------------------------------------------------

TEST_CASE("with anomaly mode off, sqrt's backward at 0 gives an Inf gradient") {
  ng::Tensor x = leaf({0, 4});
  x.sqrt().sum().backward();
  CHECK(std::isinf(x.grad().at({0})));
  CHECK(x.grad().at({1}) == 0.25);  // 1 / (2 sqrt 4)
}

TEST_CASE("with anomaly mode on, sqrt's backward at 0 throws naming 'sqrt', the input index and the Inf") {
  ng::DetectAnomalyGuard anomaly;
  ng::Tensor x = leaf({0, 4});
  ng::Tensor loss = x.sqrt().sum();  // the forward is finite: sqrt(0) = 0
  const std::string message = error_message([&] { loss.backward(); });
  CHECK_MENTIONS(message, "the backward of 'sqrt'");
  CHECK_MENTIONS(message, "Inf at element 0");
  CHECK_MENTIONS(message, "for input 0");
  CHECK_MENTIONS(message, "inputs [2] float64");
  CHECK_FALSE(x.grad().defined());  // stopped before reaching the leaf
}

TEST_CASE("a NaN that first appears deep in a graph is attributed to the node that made it, not to a later one") {
  // loss = sum((sqrt(x * 2) * 0 + 1) * ...): sqrt's gradient at 0 is 0 / (2 * 0) = NaN, which every node after
  // it in the backward (the mul by 2, towards x) would pass on.
  ng::DetectAnomalyGuard anomaly;
  ng::Tensor x = leaf({0, 1});
  ng::Tensor m = x * 2;        // 'mul', runs after sqrt in the backward
  ng::Tensor s = m.sqrt();     // the culprit
  ng::Tensor t = s * 0.0 + 3;  // sends a zero gradient into sqrt
  ng::Tensor loss = (t * t.exp()).sum();
  const uint64_t sqrt_nr = s.grad_fn()->sequence_nr;
  const std::string message = error_message([&] { loss.backward(); });
  CHECK_MENTIONS(message, "the backward of 'sqrt' (forward op #" + std::to_string(sqrt_nr) + " ");
  CHECK_MENTIONS(message, "NaN at element 0");
  CHECK_FALSE(mentions(message, "'mul'"));
  // Without anomaly mode the NaN reaches x.
  ng::DetectAnomalyGuard off(false);
  ng::Tensor loss2 = ((x * 2).sqrt() * 0.0 + 3).sum();
  loss2.backward();
  CHECK(std::isnan(x.grad().at({0})));
}

TEST_CASE("the backward message names the parameter whose gradient went bad") {
  ng::DetectAnomalyGuard anomaly;
  ng::Tensor w = leaf({0, 1});
  w.set_name("layer2.bias");
  ng::Tensor loss = w.sqrt().sum();
  const std::string message = error_message([&] { loss.backward(); });
  CHECK_MENTIONS(message, "'sqrt'");
  CHECK_MENTIONS(message, "'layer2.bias'");
}

TEST_CASE("ng::grad checks gradients in anomaly mode too") {
  ng::DetectAnomalyGuard anomaly;
  ng::Tensor x = leaf({0, 1});
  ng::Tensor loss = x.sqrt().sum();
  CHECK_MENTIONS(error_message([&] { ng::grad({loss}, {x}); }), "the backward of 'sqrt'");
}

TEST_CASE("a finite graph runs backward in anomaly mode with the same gradients as without") {
  ng::Tensor x = leaf({0.5, 1, 2});
  {
    ng::DetectAnomalyGuard anomaly;
    (x.sqrt() * x.exp()).sum().backward();
  }
  const std::vector<double> xs{0.5, 1, 2};
  for (std::size_t i = 0; i < xs.size(); ++i)  // d/dx sqrt(x) e^x = e^x (1 / (2 sqrt x) + sqrt x)
    CHECK(x.grad().to_vector()[i] ==
          doctest::Approx(std::exp(xs[i]) * (0.5 / std::sqrt(xs[i]) + std::sqrt(xs[i]))).epsilon(1e-12));
}

// ---- the switch ----------------------------------------------------------------------------------------

TEST_CASE("anomaly mode is off by default, and detect_anomaly(true / false) switches it") {
  CHECK_FALSE(ng::is_anomaly_enabled());
  ng::detect_anomaly(true);
  CHECK(ng::is_anomaly_enabled());
  ng::Tensor x = leaf({-1});
  CHECK_THROWS_AS(ng::log(x), ng::Error);
  ng::detect_anomaly(false);
  CHECK_FALSE(ng::is_anomaly_enabled());
  CHECK_NOTHROW(ng::log(x));
}

TEST_CASE("DetectAnomalyGuard restores the previous state, also when nested and when leaving by an exception") {
  CHECK_FALSE(ng::is_anomaly_enabled());
  {
    ng::DetectAnomalyGuard on;
    CHECK(ng::is_anomaly_enabled());
    {
      ng::DetectAnomalyGuard off(false);
      CHECK_FALSE(ng::is_anomaly_enabled());
    }
    CHECK(ng::is_anomaly_enabled());
  }
  CHECK_FALSE(ng::is_anomaly_enabled());
  try {
    ng::DetectAnomalyGuard on;
    ng::log(leaf({-1}));
  } catch (const ng::Error&) {
  }
  CHECK_FALSE(ng::is_anomaly_enabled());
  ng::detect_anomaly(true);
  { ng::DetectAnomalyGuard off(false); }
  CHECK(ng::is_anomaly_enabled());
  ng::detect_anomaly(false);
}

TEST_CASE("is_anomaly_enabled is per thread: a guard in one thread is not seen by another") {
  ng::DetectAnomalyGuard on;
  bool seen = true;
  bool threw = true;
  std::thread other([&] {
    seen = ng::is_anomaly_enabled();
    try {
      ng::log(leaf({-1}));
      threw = false;
    } catch (const ng::Error&) {
    }
  });
  other.join();
  CHECK_FALSE(seen);
  CHECK_FALSE(threw);
  CHECK(ng::is_anomaly_enabled());
}
