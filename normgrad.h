// normgrad.h: the whole API in one include.
//
//   autograd/  Tensor, the graph and backward, the primitive ops, gradcheck   (namespace ng)
//   nn/        modules, BatchNorm (composed and closed form), losses          (ng::nn)
//   optim/     SGD, Adam, AdamW, learning-rate schedules                      (ng::optim)
//   data/      IDX (MNIST) files, ImageFolder, DataLoader                     (ng::data)
#pragma once

#include "autograd/gradcheck.h"
#include "autograd/graph.h"
#include "autograd/ops.h"
#include "autograd/tensor.h"
