// test_dot.cpp: to_dot and write_dot draw the autograd graph behind a tensor.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "normgrad.h"

namespace {

using ng::Tensor;

int64_t count_of(const std::string& text, const std::string& piece) {
  int64_t n = 0;
  for (std::size_t at = text.find(piece); at != std::string::npos; at = text.find(piece, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("to_dot shows op nodes with their output shape, named leaves, and one edge per input") {
  Tensor w = ng::randn({3, 2}).requires_grad_();
  w.set_name("w");
  Tensor x = ng::randn({4, 3}).requires_grad_();  // unnamed leaf
  Tensor constant = ng::randn({4, 2});            // needs no gradient: not part of the graph
  Tensor loss = (ng::matmul(x, w) * constant).sum();
  const std::string dot = to_dot(loss);

  CHECK(dot.rfind("digraph autograd {", 0) == 0);
  CHECK(dot.find("\"sum\\n[]\"") != std::string::npos);
  CHECK(dot.find("\"mul\\n[4, 2]\"") != std::string::npos);
  CHECK(dot.find("\"matmul\\n[4, 2]\"") != std::string::npos);
  CHECK(dot.find("\"w\\n[3, 2]\"") != std::string::npos);
  CHECK(dot.find("\"leaf\\n[4, 3]\"") != std::string::npos);
  // sum, mul, matmul, and the two leaves; edges leaf->matmul (2), matmul->mul, mul->sum.
  CHECK(ng::graph_nodes(loss).size() == 5);
  CHECK(count_of(dot, "[label=") == 5);
  CHECK(count_of(dot, " -> ") == 4);
}

TEST_CASE("a tensor used twice appears once in the graph, with two edges into its consumer") {
  Tensor x = ng::randn({2}).requires_grad_();
  Tensor y = x * x;
  CHECK(ng::graph_nodes(y).size() == 2);  // mul, and x's leaf
  const std::string dot = to_dot(y);
  CHECK(count_of(dot, "n1 -> n0;") == 2);
}

TEST_CASE("to_dot escapes quotes and backslashes in names, and draws a tensor without a graph") {
  Tensor x = ng::ones({2}).requires_grad_();
  x.set_name("say \"hi\"\\");
  CHECK(to_dot(x * 2.0).find("\"say \\\"hi\\\"\\\\\\n[2]\"") != std::string::npos);
  CHECK(to_dot(ng::ones({2})).find("no graph") != std::string::npos);
  CHECK(ng::graph_nodes(ng::ones({2})).empty());
}

TEST_CASE("the fused BatchNorm's graph is far smaller than the composed one's") {
  Tensor x = ng::randn({4, 3}).requires_grad_();
  ng::nn::BatchNorm1d fused(3), composed(3, {.impl = ng::nn::BatchNormImpl::composed});
  const auto fused_nodes = ng::graph_nodes(fused(x)).size();
  const auto composed_nodes = ng::graph_nodes(composed(x)).size();
  CHECK(fused_nodes == 4);  // batch_norm, x, weight, bias
  // mean, sub, pow, mean, add, sqrt, div, mul, add (Algorithm 1, x - mu_B computed once) + 3 leaves
  CHECK(composed_nodes == 12);
  CHECK(to_dot(fused(x)).find("\"weight\\n[3]\"") != std::string::npos);
}

TEST_CASE("write_dot writes the whole file, leaves no temporary beside it, and names the path on failure") {
  const auto dir = std::filesystem::temp_directory_path() / "normgrad_test_dot";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "graph.dot").string();
  Tensor x = ng::randn({2}).requires_grad_();
  Tensor y = (x * 3.0).sum();
  ng::write_dot(y, path);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str() == to_dot(y));
  // No temporary file is left beside it: the folder holds the graph alone.
  CHECK(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()) == 1);
  std::filesystem::remove_all(dir);

  CHECK_THROWS_WITH_AS(ng::write_dot(y, (dir / "missing" / "graph.dot").string()),
                       doctest::Contains("normgrad_test_dot/missing/graph.dot"), ng::Error);
}
