// normgrad.h: the whole API in one include.
//
//   autograd/  Tensor, the graph and backward, the primitive ops, gradcheck   (namespace ng)
//   nn/        modules, BatchNorm (composed and closed form), IterNorm, losses, init  (ng::nn)
//   optim/     SGD, Adam, AdamW, learning-rate schedules                      (ng::optim)
//   data/      IDX (MNIST) files, ImageFolder, Subset, DataLoader             (ng::data)
#pragma once

#include "autograd/atomic_file.h"
#include "autograd/dot.h"
#include "autograd/gradcheck.h"
#include "autograd/graph.h"
#include "autograd/ops.h"
#include "autograd/parallel.h"
#include "autograd/tensor.h"
#include "data/dataloader.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "data/mnist.h"
#include "data/random_permutation.h"
#include "data/safetensors.h"
#include "data/subset.h"
#include "data/transforms.h"
#include "nn/activation.h"
#include "nn/batchnorm.h"
#include "nn/checkpoint.h"
#include "nn/clip_grad.h"
#include "nn/conv.h"
#include "nn/embedding.h"
#include "nn/flatten.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/module.h"
#include "nn/normalization.h"
#include "nn/pooling.h"
#include "nn/sequential.h"
#include "nn/whitening.h"
#include "optim/adam.h"
#include "optim/checkpoint.h"
#include "optim/optimizer.h"
#include "optim/scheduler.h"
#include "optim/sgd.h"
