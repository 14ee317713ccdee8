// graph.h: the dynamic computation graph and reverse-mode differentiation.
//
// Each op that sees an input requiring grad gives its output a Node (`grad_fn`). The node keeps the
// op's name, one edge per input (the input's own grad_fn, or for a leaf the AccumulateGrad node that
// adds into leaf.grad()), and a closure that turns the gradient of the output into gradients of the
// inputs. The graph is built as the program runs (define-by-run), so ordinary C++ control flow works.
//
// backward() walks the nodes in reverse topological order (iteratively: a chain of a million ops is
// fine), sums the gradients that reach each node, runs every node's closure once and, unless asked to
// retain the graph, frees what the closures saved.
#pragma once

#include <array>
#include <atomic>
#include <optional>
#include <utility>

#include "tensor.h"

namespace ng {

struct Node {
  explicit Node(const char* op_name) : op(op_name) { ++live_count; }
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Gradients of the inputs, given the gradient of the output; entry i may be undefined when
  // !needs_grad(i).
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  // Drops the saved tensors (after a backward without retain_graph).
  virtual void release() { released = true; }
  // The leaf this node accumulates into, for AccumulateGrad; null otherwise.
  virtual TensorImpl* leaf() const { return nullptr; }

  bool needs_grad(std::size_t input) const { return next[input] != nullptr; }

  const char* op;                            // "mul", "matmul", ... shown by to_dot and printing
  std::vector<std::shared_ptr<Node>> next;   // one per input; null where that input needs no gradient
  Shape shape;                               // of the output, for to_dot and to check incoming gradients
  Dtype dtype = float32;                     // of the output, to check incoming gradients
  bool released = false;

  // Scratch for the backward pass (engine only).
  Tensor pending_grad;
  uint64_t visit_mark = 0;
  int64_t dependencies = 0;

  static inline std::atomic<int64_t> live_count{0};
};

// How many graph nodes are alive: a finished training step should leave none.
inline int64_t live_nodes() { return Node::live_count.load(); }

// A node whose backward is a closure; the closure is destroyed on release().
template <class F> struct FunctionNode final : Node {
  FunctionNode(const char* op_name, F&& f) : Node(op_name), fn(std::move(f)) {}
  std::vector<Tensor> apply(const Tensor& grad_output) override {
    if (!fn) throw_released();
    return (*fn)(grad_output, static_cast<const Node&>(*this));
  }
  void release() override {
    fn.reset();
    released = true;
  }
  [[noreturn]] void throw_released() const;
  std::optional<F> fn;
};

[[noreturn]] void throw_graph_released(const char* op);
template <class F> void FunctionNode<F>::throw_released() const { throw_graph_released(op); }

// ---- grad mode ------------------------------------------------------------------------------------
bool is_grad_enabled();
// While one lives, ops record nothing (evaluation, optimizer updates, the backward pass itself).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// ---- recording ------------------------------------------------------------------------------------
// The edge a gradient for `t` should follow: its grad_fn, its AccumulateGrad if it is a leaf that
// requires grad, or null (also for an undefined tensor standing for an absent optional input).
std::shared_ptr<Node> gradient_edge(const Tensor& t);

// True when an op on these inputs must record a node.
inline bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!is_grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;  // an undefined tensor is an absent optional input
  return false;
}

void attach_node(Tensor& output, std::shared_ptr<Node> node);

// Gives `output` a grad_fn named `op` over `inputs`, whose backward is
// backward(const Tensor& grad_output, const Node& self) -> std::vector<Tensor> (one per input).
// Ops call it only when any_requires_grad() said so.
template <class Inputs, class F> void record(Tensor& output, const char* op, const Inputs& inputs, F&& backward) {
  auto node = std::make_shared<FunctionNode<std::decay_t<F>>>(op, std::forward<F>(backward));
  node->next.reserve(std::size(inputs));
  for (const Tensor* t : inputs) node->next.push_back(gradient_edge(*t));
  attach_node(output, std::move(node));
}
template <class F> void record(Tensor& output, const char* op, std::initializer_list<const Tensor*> inputs, F&& backward) {
  record<std::initializer_list<const Tensor*>, F>(output, op, inputs, std::forward<F>(backward));
}

// ---- running backward -----------------------------------------------------------------------------
// PyTorch's torch.autograd.grad: the gradients of sum_i <outputs[i], grad_outputs[i]> with respect to
// `inputs`, returned instead of accumulated into .grad(). grad_outputs may be empty when every output
// holds one element.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false);

}  // namespace ng
