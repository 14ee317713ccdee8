// custom_op: writing your own differentiable op, and differentiating it twice.
//
// The idea: an op is its forward plus one call to ng::record, whose closure turns the output's gradient
// into the input's. Here that op is softplus(x) = log(1 + e^x), whose derivative is sigmoid(x). Because
// the closure computes with ops (g * sigmoid(x)), the engine can record the backward itself
// (create_graph), so the second derivative sigmoid(x) (1 - sigmoid(x)) comes out of the graph with no
// more code. The program checks the first derivative with ng::gradcheck (finite differences, float64),
// compares both derivatives with their formulas, prints a table and draws softplus with its two
// derivatives (custom_op_out/softplus.svg).
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common/args.h"
#include "common/svg_plot.h"
#include "normgrad.h"

namespace {

// softplus(x) = log(1 + e^x)      d softplus / dx = sigmoid(x)
ng::Tensor softplus(const ng::Tensor& x) {
  ng::Tensor out = ng::log(ng::exp(x.detach()) + 1.0);  // the forward, outside the graph
  if (ng::any_requires_grad({&x}))
    ng::record(out, "softplus", {&x}, [x = ng::SavedTensor(x)](const ng::Tensor& g, const ng::Node& node) {
      return std::vector<ng::Tensor>{g * ng::sigmoid(x.unpack(node))};
    });
  return out;
}

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

}  // namespace

int show(const std::string& out_dir) {
  // 1. The first derivative against central finite differences.
  ng::manual_seed(0);
  ng::Tensor probe = (ng::rand({5}, ng::float64) * 8.0 - 4.0).requires_grad_();
  const ng::GradcheckResult check =
      ng::gradcheck([](const std::vector<ng::Tensor>& in) { return softplus(in[0]); }, {probe});
  std::printf("gradcheck of softplus (float64, 5 points in [-4, 4)): %s, largest error %.2e\n",
              check.ok ? "passed" : check.message.c_str(), check.max_abs_error);

  // 2. First and second derivatives from the graph, on a grid, against the formulas.
  ng::Tensor x = ng::arange(-6.0, 6.01, 0.25, ng::float64).requires_grad_();
  ng::Tensor y = softplus(x);
  ng::Tensor dy = ng::grad({y.sum()}, {x}, {.create_graph = true})[0];
  ng::Tensor d2y = ng::grad({dy.sum()}, {x})[0];

  examples::Line f{"softplus(x)", examples::palette_color(0), {}, {}};
  examples::Line f1{"d/dx (from the graph)", examples::palette_color(1), {}, {}};
  examples::Line f2{"d2/dx2 (from the graph of the backward)", examples::palette_color(2), {}, {}};
  double worst1 = 0, worst2 = 0;
  std::printf("\n%8s %12s %14s %14s %14s %14s\n", "x", "softplus", "d/dx", "sigmoid(x)", "d2/dx2", "s(1-s)");
  const std::vector<double> xs = x.to_vector(), ys = y.to_vector(), d1 = dy.to_vector(), d2 = d2y.to_vector();
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double s = sigmoid(xs[i]);
    worst1 = std::max(worst1, std::abs(d1[i] - s));
    worst2 = std::max(worst2, std::abs(d2[i] - s * (1 - s)));
    if (i % 8 == 0)
      std::printf("%8.2f %12.6f %14.6f %14.6f %14.6f %14.6f\n", xs[i], ys[i], d1[i], s, d2[i], s * (1 - s));
    for (auto* line : {&f, &f1, &f2}) line->x.push_back(xs[i]);
    f.y.push_back(ys[i]);
    f1.y.push_back(d1[i]);
    f2.y.push_back(d2[i]);
  }
  std::printf("\nlargest difference from the formulas on %zu points: first derivative %.1e, second %.1e\n", xs.size(),
              worst1, worst2);

  examples::Plot plot;
  plot.title = "softplus and the derivatives the engine computes";
  plot.x_label = std::string("x");  // not = "x": GCC 12 warns about that one, wrongly (its bug 105329, -Wrestrict)
  plot.y_label = "value";
  plot.lines = {f, f1, f2};
  std::printf("figure: %s\n", examples::write_svg(out_dir, "softplus.svg", plot).c_str());
  return check.ok && worst1 < 1e-12 && worst2 < 1e-12 ? 0 : 1;
}

int main(int argc, char** argv) {
  return examples::run_main("custom_op", [&] {
    examples::ArgParser args(
        "custom_op",
        "softplus as an op of one's own (ng::record): gradcheck, its first and second derivatives\n"
        "from the graph against their formulas, and a figure of the three.");
    args.option("out", "DIR", "output folder for softplus.svg", "custom_op_out");
    if (!args.parse(argc, argv)) return 0;
    return show(args.get("out"));
  });
}
