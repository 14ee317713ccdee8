// checkpoint.h (nn/): saving a module's parameters and buffers to a file and loading them back
// (PyTorch's torch.save(model.state_dict()) / model.load_state_dict(torch.load(...))).
//
// The file is safetensors (data/safetensors.h), one tensor per name of named_parameters() and
// named_buffers() ("layers.0.weight", "layers.1.running_mean", ...), so Python can read it with the
// safetensors package or twenty lines of the standard library. Save the optimizer with
// optim/checkpoint.h to resume training exactly.
#pragma once

#include <string>

#include "nn/module.h"

namespace ng::nn {

// Written to a temporary file and renamed over `path`: a failed save leaves an older file intact.
void save(const Module& module, const std::string& path);

// Copies the file's tensors into the module's parameters and buffers, in place. The names, shapes and
// dtypes must match the module's exactly; otherwise an Error names the first tensor that differs and
// how, and the module is left unchanged.
void load(Module& module, const std::string& path);

}  // namespace ng::nn
