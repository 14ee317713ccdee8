// bn_graph: see the graph that autograd differentiates, for BatchNorm written two ways.
//
// The composed BatchNorm is Algorithm 1 of the paper in primitive ops, so its backward pass is the
// chain rule run through every one of them: mean, sub, pow, mean, add eps, sqrt, sub, div, mul gamma,
// add beta. The fused BatchNorm is one op whose backward is the closed form derived in
// nn/batchnorm_backward.md; its graph has one node where the composed one has ten. Both compute the
// same numbers (tests/test_batchnorm.cpp).
//
// This program runs a small BatchNorm1d(3) forward on a [4, 3] batch plus an MSE loss, once composed
// and once fused, writes the composed graph as Graphviz DOT to OUT_DIR/bn_graph.dot and, when
// graphviz's `dot` is installed, renders it to OUT_DIR/bn_graph.svg (docs/bn_graph.svg is this picture).
// It prints the fused graph's DOT text and the node counts of both.
//
//   bn_graph [OUT_DIR]      (default: the current directory)
#include <cstdio>
#include <filesystem>
#include <string>

#include "common/args.h"
#include "normgrad.h"

namespace {

using ng::Tensor;

// The loss of one forward through BatchNorm1d(3) with the given implementation, on a fixed batch.
Tensor bn_loss(ng::nn::BatchNormImpl impl) {
  ng::manual_seed(0);
  ng::nn::BatchNorm1d bn(3, {.impl = impl});
  bn.weight.set_name("gamma (weight)");
  bn.bias.set_name("beta (bias)");
  Tensor x = ng::randn({4, 3}).requires_grad_();
  x.set_name("x");
  Tensor target = ng::randn({4, 3});
  return ng::nn::mse_loss(bn(x), target);
}

struct Counts {
  std::size_t ops = 0, leaves = 0;
};
Counts count(const Tensor& t) {
  Counts c;
  for (const auto& node : ng::graph_nodes(t)) ++(node->leaf() ? c.leaves : c.ops);
  return c;
}

// dot -Tsvg, its output read from a pipe and written whole (autograd/atomic_file.h), as every file
// normgrad writes. Returns whether it worked.
bool render_svg(const std::string& dot_path, const std::string& svg_path) {
  const std::string command = "/usr/bin/dot -Tsvg '" + dot_path + "'";
  std::FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return false;
  std::string svg;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) svg.append(buffer, n);
  if (pclose(pipe) != 0 || svg.empty()) return false;
  ng::write_file_atomically(svg_path, svg, "bn_graph");
  return true;
}

}  // namespace

int draw(const std::filesystem::path& out_dir) {
  const Tensor composed = bn_loss(ng::nn::BatchNormImpl::composed);
  const Tensor fused = bn_loss(ng::nn::BatchNormImpl::fused);
  const Counts c = count(composed), f = count(fused);

  const std::string dot_path = (out_dir / "bn_graph.dot").string();
  ng::write_dot(composed, dot_path);
  std::printf("composed BatchNorm1d + mse_loss: %zu nodes (%zu ops, %zu leaves), written to %s\n", c.ops + c.leaves,
              c.ops, c.leaves, dot_path.c_str());
  if (std::filesystem::exists("/usr/bin/dot")) {
    const std::string svg_path = (out_dir / "bn_graph.svg").string();
    if (render_svg(dot_path, svg_path))
      std::printf("rendered to %s\n", svg_path.c_str());
    else
      std::fprintf(stderr, "bn_graph: graphviz could not render %s\n", dot_path.c_str());
  } else {
    std::printf("(graphviz's dot is not installed: render with  dot -Tsvg %s -o bn_graph.svg)\n", dot_path.c_str());
  }

  std::printf("\nfused BatchNorm1d + mse_loss: %zu nodes (%zu ops, %zu leaves), the BN itself one node:\n\n%s",
              f.ops + f.leaves, f.ops, f.leaves, ng::to_dot(fused).c_str());
  std::printf("\nBoth losses are equal: composed %.9g, fused %.9g\n", composed.item(), fused.item());
  return 0;
}

int main(int argc, char** argv) {
  return examples::run_main("bn_graph", [&] {
    examples::ArgParser args("bn_graph",
                             "Writes the composed BatchNorm's graph as Graphviz DOT (and SVG when graphviz is\n"
                             "installed) and prints the fused BatchNorm's one-node graph next to it.");
    args.option("out", "DIR", "output folder (must exist)", ".");
    if (!args.parse(argc, argv)) return 0;
    const std::filesystem::path out_dir = args.get("out");
    if (!std::filesystem::is_directory(out_dir))
      throw examples::UsageError("--out: the folder '" + out_dir.string() + "' does not exist");
    return draw(out_dir);
  });
}
