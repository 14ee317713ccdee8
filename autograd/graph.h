// graph.h: the dynamic computation graph and reverse-mode differentiation.
//
// Each op that sees an input requiring grad gives its output a Node (`grad_fn`). The node keeps the
// op's name, one edge per input (the input's own grad_fn, or for a leaf the AccumulateGrad node that
// adds into leaf.grad()), and a closure that turns the gradient of the output into gradients of the
// inputs. The graph is built as the program runs (define-by-run), so ordinary C++ control flow works.
//
// backward() walks the nodes in reverse topological order (iteratively: a chain of a million ops is
// fine), sums the gradients that reach each node, runs every node's closure once and, unless asked to
// retain the graph, frees what the closures saved. Everything the walk needs (which nodes it reached,
// how many gradients each still waits for, the sums so far) lives in the pass, not on the nodes, so
// two threads may run backward through graphs that share nodes (with retain_graph both get their
// gradients; without, a pass that reaches a node the other has freed throws an Error saying so), and
// a backward may run inside one.
//
// The closures compute gradients with the same ops as the forward. With create_graph, the backward
// runs with grad mode on, so those ops record a graph of their own: the gradients can then be
// differentiated again (second derivatives, Hessian-vector products, gradient penalties).
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <type_traits>
#include <utility>

#include "tensor.h"

namespace ng {

struct Node : std::enable_shared_from_this<Node> {
  explicit Node(const char* op_name);
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Gradients of the inputs, given the gradient of the output: one per input, where entry i may be
  // undefined when !needs_grad(i). For AccumulateGrad, the sink that adds into a leaf's .grad(): none.
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  // Drops the saved tensors (after a backward without retain_graph).
  virtual void release() {}
  // The leaf this node accumulates into, for AccumulateGrad; null otherwise.
  virtual TensorImpl* leaf() const { return nullptr; }

  bool needs_grad(std::size_t input) const { return next[input] != nullptr; }

  const char* op;                           // "mul", "matmul", ... shown by to_dot and printing
  std::vector<std::shared_ptr<Node>> next;  // one per input; null where that input needs no gradient
  Shape shape;                              // of the output, for to_dot and to check incoming gradients
  Dtype dtype = float32;                    // of the output, to check incoming gradients
  // The order in which this thread's forward made its nodes (PyTorch's sequence_nr): anomaly mode's
  // messages name it, so that "op #17" can be found by counting ops in the forward.
  uint64_t sequence_nr;
  // Set only in anomaly mode: the inputs' shapes, dtypes and names, for its messages.
  std::unique_ptr<std::string> anomaly_inputs;

  static inline std::atomic<int64_t> live_count{0};
};

// How many graph nodes are alive: a finished training step should leave none.
inline int64_t live_nodes() { return Node::live_count.load(); }

// A node whose backward is a closure; the closure is destroyed on release().
//
// Two threads may run backward through one node at once (graphs that share a subgraph): any number of
// apply() calls may run together, each under a shared lock, while release() takes the lock alone, so
// it waits for the closures running and frees what they use only after. An apply() after the release
// finds no closure and throws "the graph ... was freed", as PyTorch does; with retain_graph both passes
// run through it.
template <class F> struct FunctionNode final : Node {
  FunctionNode(const char* op_name, F&& f) : Node(op_name), fn(std::move(f)) {}
  std::vector<Tensor> apply(const Tensor& grad_output) override {
    std::shared_lock lock(fn_mutex);
    if (!fn) throw_released();
    return (*fn)(grad_output, static_cast<const Node&>(*this));
  }
  void release() override {
    std::optional<F> released;  // destroyed after the lock is let go: its saved tensors may free graphs
    std::unique_lock lock(fn_mutex);
    if (!fn) return;
    released.emplace(std::move(*fn));
    fn.reset();
  }
  [[noreturn]] void throw_released() const;
  std::optional<F> fn;
  std::shared_mutex fn_mutex;
};

[[noreturn]] void throw_graph_released(const char* op);
template <class F> void FunctionNode<F>::throw_released() const { throw_graph_released(op); }

// ---- saved tensors --------------------------------------------------------------------------------
// A tensor that a backward closure needs (an input of the op, or its output), saved with the version
// of its buffer at the time. unpack() checks that nothing has written into the buffer since: a write
// between forward and backward (an optimizer step, an in-place op) would otherwise make the backward
// use numbers the forward never saw, and return a wrong gradient without a word. PyTorch's
// SavedVariable does the same.
class SavedTensor {
 public:
  SavedTensor() = default;  // nothing saved (an absent optional input)
  // Saves an input of the op (any tensor that is not the op's own output).
  SavedTensor(const Tensor& t);  // NOLINT: implicit, so closures can write [x = SavedTensor(x)] or pass tensors
  // Saves the op's own output. Keeping it with its grad_fn would be a cycle (output -> node -> output),
  // so it is kept without, and rejoined to the node when unpacked to build a differentiable backward.
  static SavedTensor output(const Tensor& out);

  // The saved tensor; throws an Error naming the node's op when its buffer was written since it was saved.
  Tensor unpack(const Node& node) const;
  bool defined() const { return tensor_.defined(); }

 private:
  Tensor tensor_;
  std::weak_ptr<TensorImpl> leaf_;  // set for a leaf that requires grad (tensor_ is then an alias of its buffer)
  uint64_t version_ = 0;
  bool is_output_ = false;
};

// ---- grad mode ------------------------------------------------------------------------------------
bool is_grad_enabled();
void set_grad_enabled(bool enabled);
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
// Sets grad mode for its lifetime (the backward pass uses it: on with create_graph, off without).
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled);
  ~GradModeGuard();
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

// ---- anomaly mode ---------------------------------------------------------------------------------
// A debugging mode, per thread like grad mode, off by default. While on, every op that records a node
// checks its output, and throws an Error naming the op, its inputs and its sequence number at the
// first NaN or Inf; the backward checks every gradient a node returns the same way and stops at the
// first bad one. When off it costs one test of a thread-local flag per recorded op.
bool is_anomaly_enabled();
void detect_anomaly(bool enabled);
class DetectAnomalyGuard {
 public:
  explicit DetectAnomalyGuard(bool enabled = true);
  ~DetectAnomalyGuard();
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

 private:
  bool previous_;
};
namespace detail {
void anomaly_check_forward(const Tensor& output, Node& node, const std::vector<const Tensor*>& inputs);
}

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
// Ops call it only when any_requires_grad() said so. This is also how a user writes an op of their
// own (README, "Writing your own op"): compute the forward, then record its backward.
//
// The backward should compute with ops (not raw loops), so that it can be differentiated again under
// create_graph, and read the tensors it needs through SavedTensor, so that an in-place write between
// forward and backward is caught.
template <class Inputs, class F> void record(Tensor& output, const char* op, const Inputs& inputs, F&& backward) {
  static_assert(std::is_invocable_r_v<std::vector<Tensor>, const std::decay_t<F>&, const Tensor&, const Node&>,
                "ng::record: the backward must be a callable "
                "(const ng::Tensor& grad_output, const ng::Node& self) -> std::vector<ng::Tensor>, "
                "returning one gradient per input (an undefined Tensor where an input needs none)");
  auto node = std::make_shared<FunctionNode<std::decay_t<F>>>(op, std::forward<F>(backward));
  node->next.reserve(std::size(inputs));
  for (const Tensor* t : inputs) node->next.push_back(gradient_edge(*t));
  Node& recorded = *node;
  attach_node(output, std::move(node));
  if (is_anomaly_enabled()) detail::anomaly_check_forward(output, recorded, {std::begin(inputs), std::end(inputs)});
}
template <class F>
void record(Tensor& output, const char* op, std::initializer_list<const Tensor*> inputs, F&& backward) {
  record<std::initializer_list<const Tensor*>, F>(output, op, inputs, std::forward<F>(backward));
}

// ---- running backward -----------------------------------------------------------------------------
// PyTorch's torch.autograd.grad: the gradients of sum_i <outputs[i], grad_outputs[i]> with respect to
// `inputs`, returned instead of accumulated into .grad(). grad_outputs may be left out when every output
// holds one element. The options are backward()'s: with create_graph the returned gradients carry a graph
// of their own and can be differentiated again (create_graph implies retain_graph):
//   ng::grad({y.sum()}, {x}, {.create_graph = true})      ng::grad({y}, {x}, {upstream}, {.retain_graph = true})
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         BackwardOptions options = {});
namespace detail {
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, BackwardOptions options);
}
// With grad_outputs. (A template only for overload resolution: GCC 12 takes `{.create_graph = true}` as a
// possible vector too and calls the pair ambiguous; between equal candidates the non-template wins.)
template <class = void> std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                                                 const std::vector<Tensor>& grad_outputs,
                                                 BackwardOptions options = {}) {
  return detail::grad(outputs, inputs, grad_outputs, options);
}

}  // namespace ng
