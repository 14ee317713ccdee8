// dot.h: draws the graph behind a tensor in Graphviz's DOT language.
//
// The drawing is the autograd graph that backward() walks: one box per op node, labelled with the op's
// name and output shape, and one box per leaf that requires grad (labelled with its name, set by
// Tensor::set_name or nn::Module, and its shape). Arrows follow the forward data flow, from an input to
// the op that consumed it. Tensors that need no gradient (inputs, constants) are not part of it.
// Render with `dot -Tsvg graph.dot -o graph.svg`.
#pragma once

#include <string>
#include <vector>

#include "graph.h"

namespace ng {

// Every node reachable from t's grad_fn (or t's AccumulateGrad if t is a leaf that requires grad),
// each once, in depth-first discovery order starting from t's own node; empty if t needs no gradient.
std::vector<std::shared_ptr<Node>> graph_nodes(const Tensor& t);

// The graph as a DOT digraph.
std::string to_dot(const Tensor& t);

// Writes to_dot(t) to `path` whole or not at all (atomic_file.h), so that a reader never sees half a
// file. Throws ng::Error naming the path when it cannot be written.
void write_dot(const Tensor& t, const std::string& path);

}  // namespace ng
