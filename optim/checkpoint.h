// checkpoint.h (optim/): saving and restoring an optimizer's state, so that training can stop and
// resume exactly (momentum buffers and Adam's moving averages matter as much as the weights).
//
// The file is safetensors (data/safetensors.h): the tensors of Optimizer::state_dict()
// ("state.<i>.momentum_buffer", "state.<i>.exp_avg", ..., and each param group's
// "param_groups.<g>.lr", ".weight_decay", ".params") and, in "__metadata__", the optimizer's name, its
// number of parameters and its (first group's) learning rate. Save the model with nn/checkpoint.h.
#pragma once

#include <string>

#include "optim/optimizer.h"

namespace ng::optim {

void save(const Optimizer& optimizer, const std::string& path);
// Refuses (with an Error naming the first difference, the optimizer unchanged) a file from another
// kind of optimizer, for another number of parameters, or with state unlike the parameters.
// Restores each group's learning rate and weight decay too, as PyTorch's load_state_dict does (a file
// written before param groups existed restores the one learning rate of its metadata).
void load(Optimizer& optimizer, const std::string& path);

}  // namespace ng::optim
