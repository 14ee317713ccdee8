// scale_invariance: Batch Normalization does not care how large the weights before it are.
//
// Section 3.3 of the BN paper: for x = W u and a scalar a, BN(a W u) = BN(W u), since scaling x scales
// its batch mean and standard deviation alike. So the layer's output, and the gradient passed down to u,
// stay the same, while the gradient for the weights becomes (1/a) times smaller: d BN((aW) u) / d(aW) =
// (1/a) d BN(W u) / dW. Large weights get small updates, which keeps training stable even at high
// learning rates. This program measures both for a in {0.01, 1, 100}, for the composed and the fused
// BN, in float64:
//   - with eps = 0 the invariance is exact: the output differs only by rounding (~1e-15) and the
//     gradient ratio times a is 1 to all printed digits;
//   - with eps = 1e-5 it is approximate. Here W is small (entries ~0.01), so the batch variances v of
//     x are only 150 to 450 eps; x_hat = a d / sqrt(a^2 v + eps) then differs from d / sqrt(v + eps)
//     by a relative eps |1 - 1/a^2| / (2 (v + eps min(1, 1/a^2))) at most (tests/test_bn_properties.cpp
//     derives it): ~3e-3 of |x_hat| for a = 100, and for a = 0.01, where a^2 v is far below eps, eps
//     dominates and the output shrinks towards 0 (and so does the weight gradient).
#include <cmath>
#include <cstdio>

#include "common/args.h"
#include "normgrad.h"

namespace {

using ng::Tensor;
namespace F = ng::nn::functional;
using BatchNorm = Tensor (*)(const Tensor&, const Tensor&, const Tensor&, double);

double max_abs_difference(const Tensor& a, const Tensor& b) {
  double d = 0;
  const auto va = a.to_vector(), vb = b.to_vector();
  for (std::size_t i = 0; i < va.size(); ++i) d = std::max(d, std::abs(va[i] - vb[i]));
  return d;
}

double norm(const Tensor& t) { return std::sqrt((t * t).sum().item()); }

struct Result {
  Tensor y;       // BN(u W^T)
  Tensor grad_W;  // d sum(dy * y) / dW
};

// x = u W^T: [N, C_in] @ [C_in, C_out] -> [N, C_out], then BN (gamma = 1, beta = 0).
Result run(BatchNorm bn, const Tensor& W, const Tensor& u, const Tensor& dy, double eps) {
  Tensor w = W.detach().requires_grad_();
  Tensor y = bn(ng::matmul(u, w.t()), Tensor(), Tensor(), eps);
  return {y.detach(), ng::grad({y}, {w}, {dy})[0]};
}

}  // namespace

int measure() {
  ng::manual_seed(33);
  const int64_t N = 32, C_in = 20, C_out = 8;
  const Tensor W = ng::randn({C_out, C_in}, ng::float64) * 0.01;
  const Tensor u = ng::randn({N, C_in}, ng::float64);
  const Tensor dy = ng::randn({N, C_out}, ng::float64);

  const Tensor x = ng::matmul(u, W.t());
  const Tensor batch_var = ((x - x.mean({0}, true)) * (x - x.mean({0}, true))).mean({0});
  double v_min = INFINITY, v_max = 0;
  for (double v : batch_var.to_vector()) {
    v_min = std::min(v_min, v);
    v_max = std::max(v_max, v);
  }
  std::printf(
      "BN(a W u) against BN(W u): u [%ld, %ld], W [%ld, %ld] with entries ~0.01, float64;\n"
      "batch variances of W u from %.1e to %.1e (eps = 1e-5 is %.1f%% of the smallest)\n\n",
      static_cast<long>(N), static_cast<long>(C_in), static_cast<long>(C_out), static_cast<long>(C_in), v_min, v_max,
      100 * 1e-5 / v_min);
  std::printf("%-9s %-6s %6s   %-24s %-22s %s\n", "BN", "eps", "a", "max |BN(aWu) - BN(Wu)|", "|dL/d(aW)| / |dL/dW|",
              "times a (1 if exact)");

  const struct {
    const char* name;
    BatchNorm bn;
  } implementations[] = {{"composed", F::batch_norm_composed}, {"fused", F::batch_norm_fused}};
  for (const auto& impl : implementations)
    for (double eps : {0.0, 1e-5})
      for (double a : {0.01, 1.0, 100.0}) {
        const Result base = run(impl.bn, W, u, dy, eps);
        const Result scaled = run(impl.bn, W * a, u, dy, eps);
        const double ratio = norm(scaled.grad_W) / norm(base.grad_W);
        std::printf("%-9s %-6g %6g   %-24.2e %-22.6g %.12f\n", impl.name, eps, a, max_abs_difference(scaled.y, base.y),
                    ratio, ratio * a);
      }
  return 0;
}

int main(int argc, char** argv) {
  return examples::run_main("scale_invariance", [&] {
    examples::ArgParser args(
        "scale_invariance",
        "BN(aWu) = BN(Wu) and the 1/a weight gradient, for a in {0.01, 1, 100}, composed and fused BN,\n"
        "with eps = 0 and eps = 1e-5 (float64).");
    if (!args.parse(argc, argv)) return 0;
    return measure();
  });
}
