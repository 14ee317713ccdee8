// clip_grad.h: gradient norm clipping (PyTorch's torch.nn.utils.clip_grad_norm_).
//
// Computed over all parameters together, as if their gradients were one long vector g:
//   total_norm = ||g||_p = (sum_i |g_i|^p)^(1/p)    (p = inf: max_i |g_i|)
//   clip_coef  = max_norm / (total_norm + 1e-6)
// and, only when clip_coef < 1, every gradient is multiplied by clip_coef in place: the direction of
// the step is kept, its length capped at (about) max_norm. Used against exploding gradients in
// recurrent and language models (Pascanu et al. 2013).
#pragma once

#include <vector>

#include "autograd/tensor.h"

namespace ng::nn {

// Parameters without a gradient are skipped. Returns total_norm (before clipping) as a 0-dim float64
// tensor; 0 when no parameter has a gradient. norm_type: p > 0, or INFINITY for the max norm.
Tensor clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type = 2.0);

}  // namespace ng::nn
