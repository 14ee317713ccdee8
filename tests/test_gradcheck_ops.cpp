// test_gradcheck_ops.cpp: every differentiable op's backward against central finite differences.
//
// The op cases of tests/op_cases.h give each op of autograd/ops.h its shapes (equal, broadcast, 0-dim,
// size-1 dims; reductions with and without keepdim) and where its inputs come from (away from the kinks
// and edges of the ops: abs and relu away from 0, log, sqrt, division and pow on positive numbers, max
// on distinct values); every case runs ng::gradcheck in float64 (gradcheck.h), and a test holds the
// table to ops.h, so that an op without a row fails. Then what does not fit a row: one input of two
// requiring grad, a double on either side of an operator, sigmoid where it saturates, to(dtype) and
// clone, and compositions of ops.
#include <doctest/doctest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "normgrad.h"
#include "op_cases.h"
#include "test_helpers.h"

#ifndef NG_SOURCE_DIR  // the source root, where autograd/ops.h is; tests/meson.build defines it
#define NG_SOURCE_DIR "."
#endif

namespace {

std::string read_ops_header() {
  std::ifstream file(NG_SOURCE_DIR "/autograd/ops.h");
  REQUIRE_MESSAGE(file, "cannot open " NG_SOURCE_DIR "/autograd/ops.h");
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// The words of the index that are its prose, not ops: "and the fused backward ops ...", "(over all
// elements or a dim)", "and their backward ops", "and the fused backward op gelu_backward".
const std::set<std::string> kIndexProse = {"a",  "all", "and", "backward", "dim", "elements", "fused",
                                           "op", "or",  "ops", "over",     "the", "their"};

// The names the index at the top of ops.h lists: its comment lines indented by three spaces, the words
// after each group's "(file):", with "Tensor::" dropped and the operators (== != ...) and prose left out.
std::set<std::string> index_op_names(const std::string& header) {
  std::set<std::string> names;
  std::istringstream lines(header);
  for (std::string line; std::getline(lines, line) && line.rfind("#pragma", 0) != 0;) {
    if (line.rfind("//   ", 0) != 0) continue;
    std::string ops = line.substr(2);
    if (const std::size_t colon = ops.find("):"); colon != std::string::npos) ops = ops.substr(colon + 2);
    for (char& ch : ops)
      if (ch == ',' || ch == '(' || ch == ')') ch = ' ';
    std::istringstream words(ops);
    for (std::string word; words >> word;) {
      if (word.rfind("Tensor::", 0) == 0) word = word.substr(8);
      if (std::regex_match(word, std::regex("[a-z_][a-z0-9_]*")) && !kIndexProse.count(word)) names.insert(word);
    }
  }
  return names;
}

// The ops ops.h declares: the functions that return a Tensor, a MaxResult, MinResult or TopKResult, or
// pieces (std::vector<Tensor>), one per line start.
std::set<std::string> declared_op_names(const std::string& header) {
  std::set<std::string> names;
  const std::regex declaration(
      R"(^(?:Tensor|MaxResult|MinResult|TopKResult|std::vector<Tensor>) ([a-z_][a-z0-9_]*)\()");
  std::istringstream lines(header);
  std::smatch match;
  for (std::string line; std::getline(lines, line);)
    if (std::regex_search(line, match, declaration)) names.insert(match[1]);
  return names;
}

std::set<std::string> row_names() {
  std::set<std::string> names;
  for (const OpCase& c : op_cases()) names.insert(c.name);
  return names;
}

}  // namespace

// ---- the table -----------------------------------------------------------------------------------------

TEST_CASE("every op of ops.h's index and declarations has a row in op_cases.h or a reason it has none") {
  const std::string header = read_ops_header();
  const std::set<std::string> index = index_op_names(header), declared = declared_op_names(header);
  REQUIRE(index.size() > 50);  // the index was found and read
  REQUIRE(declared.size() > 50);
  const std::set<std::string> rows = row_names();
  std::set<std::string> not_differentiable;
  for (const NotDifferentiable& op : not_differentiable_ops()) not_differentiable.insert(op.name);
  for (const std::set<std::string>* names : {&index, &declared})
    for (const std::string& name : *names)
      CHECK_MESSAGE((rows.count(name) || not_differentiable.count(name)),
                    name << std::string(names == &index ? " (in ops.h's index)" : " (declared in ops.h)")
                         << " has no row in tests/op_cases.h; add one, or add it to not_differentiable_ops() with the "
                            "reason (a word of the index's prose goes into kIndexProse)");
}

TEST_CASE("every row of op_cases.h and every op it lists as not differentiable names an op of ops.h") {
  const std::string header = read_ops_header();
  const std::set<std::string> index = index_op_names(header), declared = declared_op_names(header);
  const std::set<std::string> rows = row_names();
  for (const std::string& name : rows)
    CHECK_MESSAGE((index.count(name) || declared.count(name)), "row " << name << " is not an op of ops.h");
  for (const NotDifferentiable& op : not_differentiable_ops()) {
    const std::string name = op.name;  // doctest prints a const char* as a pointer
    CHECK_MESSAGE((index.count(name) || declared.count(name)), name << " is not an op of ops.h");
    CHECK_MESSAGE(!rows.count(name), name << " has a row and is listed as not differentiable");
  }
}

TEST_CASE("every op case passes gradcheck on each of its shape sets") {
  for (const OpCase& c : op_cases())
    for (const std::vector<ng::Shape>& shapes : c.shape_sets) {
      const std::string name = case_name(c, shapes);
      INFO(name);
      ng::GradcheckResult result;
      CHECK_NOTHROW(result = ng::gradcheck(c.f, draw_inputs(c, shapes, name)));
      CHECK_MESSAGE(result.ok, result.message);
    }
}

// ---- what does not fit a row -----------------------------------------------------------------------------

TEST_CASE("only the input that requires grad gets a gradient, and it passes gradcheck") {
  ng::manual_seed(8);
  ng::Tensor constant = ng::rand({3, 1}, ng::float64) + 0.5;
  check_gradients("mul by constant", [&](const Inputs& in) { return in[0] * constant; }, {uniform_leaf({1, 4}, -1, 1)});
  check_gradients("div of constant", [&](const Inputs& in) { return constant / in[0]; },
                  {uniform_leaf({1, 4}, 0.5, 2)});
  check_gradients("pow with constant base", [&](const Inputs& in) { return ng::pow(constant, in[0]); },
                  {uniform_leaf({1, 4}, -1, 1)});
}

TEST_CASE("the operators with a double on either side pass gradcheck") {
  ng::manual_seed(9);
  const Inputs x = {uniform_leaf({2, 3}, 0.5, 2)};
  check_gradients(
      "x + 3", [](const Inputs& in) { return in[0] + 3.0; }, x);
  check_gradients(
      "3 + x", [](const Inputs& in) { return 3.0 + in[0]; }, x);
  check_gradients(
      "x - 3", [](const Inputs& in) { return in[0] - 3.0; }, x);
  check_gradients(
      "3 - x", [](const Inputs& in) { return 3.0 - in[0]; }, x);
  check_gradients(
      "x * 3", [](const Inputs& in) { return in[0] * 3.0; }, x);
  check_gradients(
      "3 * x", [](const Inputs& in) { return 3.0 * in[0]; }, x);
  check_gradients(
      "x / 3", [](const Inputs& in) { return in[0] / 3.0; }, x);
  check_gradients(
      "3 / x", [](const Inputs& in) { return 3.0 / in[0]; }, x);
  check_gradients(
      "-x", [](const Inputs& in) { return -in[0]; }, x);
}

TEST_CASE("sigmoid passes gradcheck far from 0, where it saturates") {
  check_gradients("sigmoid", [](const Inputs& in) { return ng::sigmoid(in[0]); },
                  {ng::tensor({-30, -8, 8, 30}, ng::float64).requires_grad_()});
}

TEST_CASE("matmul passes gradcheck when only one side requires grad") {
  ng::manual_seed(17);
  ng::Tensor a = ng::rand({2, 3, 4}, ng::float64);
  ng::Tensor b = ng::rand({4, 5}, ng::float64);
  check_gradients("constant @ b", [&](const Inputs& in) { return ng::matmul(a, in[0]); },
                  {uniform_leaf({4, 5}, -1, 1)});
  check_gradients("a @ constant", [&](const Inputs& in) { return ng::matmul(in[0], b); },
                  {uniform_leaf({2, 3, 4}, -1, 1)});
}

TEST_CASE("to(dtype) and clone pass gradcheck, and to(float32) sends a float64 gradient back") {
  ng::manual_seed(25);
  const Inputs x = {uniform_leaf({2, 3}, -1, 1)};
  check_gradients(
      "to float64", [](const Inputs& in) { return in[0].to(ng::float64) * 2.0; }, x);
  check_gradients(
      "clone", [](const Inputs& in) { return in[0].clone() * in[0]; }, x);
  // Through float32 the finite differences are too coarse for gradcheck, so the gradient is checked
  // directly: d/dx sum(3 * float32(x)) = 3, in x's dtype.
  ng::Tensor x64 = uniform_leaf({2, 2}, -1, 1);
  (x64.to(ng::float32) * 3.0).sum().backward();
  CHECK(x64.grad().dtype() == ng::float64);
  CHECK(x64.grad().to_vector() == std::vector<double>{3, 3, 3, 3});
}

// ---- compositions ------------------------------------------------------------------------------------

TEST_CASE("a composed batch normalization (mean and variance over dim 0) passes gradcheck") {
  ng::manual_seed(26);
  // x_hat = (x - mu) / sqrt(var + eps), y = gamma x_hat + beta, over a batch of 5 with 3 features
  auto batch_norm = [](const Inputs& in) {
    const ng::Tensor& x = in[0];
    ng::Tensor mu = x.mean({0});
    ng::Tensor var = (x - mu).pow(2).mean({0});
    ng::Tensor x_hat = (x - mu) / (var + 1e-5).sqrt();
    return in[1] * x_hat + in[2];
  };
  check_gradients("batch norm", batch_norm,
                  {uniform_leaf({5, 3}, -1, 1), uniform_leaf({3}, 0.5, 2), uniform_leaf({3}, -1, 1)});
}

TEST_CASE("a small two-layer network with a log_softmax loss passes gradcheck in all its parameters") {
  ng::manual_seed(27);
  const ng::Tensor input = ng::rand({4, 3}, ng::float64);
  const ng::Tensor picks = ng::from_vector<int64_t>({1, 2, 4, 7}, {4});  // one class per row of a [4, 2] output
  auto loss = [&](const Inputs& in) {
    ng::Tensor hidden = ng::tanh(input.matmul(in[0]) + in[1]);
    ng::Tensor log_p = ng::log_softmax(hidden.matmul(in[2]), -1);
    return -ng::index_select(log_p.reshape({-1}), 0, picks).mean();
  };
  check_gradients("mlp", loss, {uniform_leaf({3, 5}, -1, 1), uniform_leaf({5}, -1, 1), uniform_leaf({5, 2}, -1, 1)});
}

TEST_CASE("float32 and float64 give the same values and gradients for a composition of every op kind") {
  ng::manual_seed(28);
  const ng::Tensor x_values = ng::rand({2, 3, 4}, ng::float64) + 1.5;  // log(x) > 0 for the sqrt
  const ng::Tensor w_values = ng::rand({4, 3}, ng::float64) - 0.5;
  std::vector<std::vector<double>> results[2];
  for (int k = 0; k < 2; ++k) {
    const ng::Dtype dtype = k == 0 ? ng::float64 : ng::float32;
    ng::Tensor x = x_values.to(dtype).requires_grad_();
    ng::Tensor w = w_values.to(dtype).requires_grad_();
    ng::Tensor h = ng::matmul(x.log().sqrt() * x.exp().sigmoid(), w).tanh();  // [2, 3, 3]
    ng::Tensor y = ng::log_softmax(h.permute({0, 2, 1}), 1) + ng::max(h, 1, true).values / x.sum({2}, true).abs();
    ng::Tensor loss = ng::cat({y, ng::slice(y, 1, 0, 1).relu()}, 1).pow(2).mean();
    loss.backward();
    results[k] = {loss.to_vector(), x.grad().to_vector(), w.grad().to_vector()};
  }
  for (std::size_t r = 0; r < 3; ++r) {
    REQUIRE(results[0][r].size() == results[1][r].size());
    for (std::size_t i = 0; i < results[0][r].size(); ++i)
      CHECK(results[1][r][i] == doctest::Approx(results[0][r][i]).epsilon(1e-4));
  }
}
