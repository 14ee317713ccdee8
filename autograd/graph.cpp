// graph.cpp: recording nodes, and the backward pass that walks them.
#include "graph.h"

#include <unordered_map>

#include "ops.h"

namespace ng {

// A long chain of nodes would be destroyed recursively (each node's destructor releasing the next),
// which overflows the stack at around 10^5 nodes. Instead each destructor hands its edges to a
// thread-local queue, and only the outermost destructor empties it.
Node::~Node() {
  thread_local std::vector<std::shared_ptr<Node>> to_release;
  thread_local bool draining = false;
  for (auto& edge : next)
    if (edge) to_release.push_back(std::move(edge));
  pending_grad = Tensor();
  --live_count;
  if (draining) return;
  draining = true;
  while (!to_release.empty()) {
    std::shared_ptr<Node> edge = std::move(to_release.back());
    to_release.pop_back();
    edge.reset();  // may run another ~Node, which only appends to the queue
  }
  draining = false;
}

void throw_graph_released(const char* op) {
  throw Error(std::string("backward: the graph behind this tensor was freed by an earlier backward (at node '") + op +
              "'); call the first backward with retain_graph = true to run backward through it twice");
}

// ---- grad mode ------------------------------------------------------------------------------------
namespace {
thread_local bool g_grad_enabled = true;
}
bool is_grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

// ---- leaves ---------------------------------------------------------------------------------------
// The sink of the graph for a leaf that requires grad: adds the incoming gradient into leaf.grad().
// The leaf holds it only weakly, so it lives exactly as long as some graph uses the leaf.
struct AccumulateGrad final : Node {
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf_impl) : Node("AccumulateGrad"), target(std::move(leaf_impl)) {
    shape = target->shape;
    dtype = target->dtype;
  }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor& current = target->grad;
    if (!current.defined()) {
      // Keep our own copy: g may share its buffer with other gradients that the engine still uses.
      current = g.impl_ptr().use_count() == 1 && g.impl()->storage.use_count() == 1 ? g : g.clone();
    } else {
      accumulate_into(current, g);
    }
    return {};
  }
  TensorImpl* leaf() const override { return target.get(); }
  static void accumulate_into(Tensor& total, const Tensor& g);
  std::shared_ptr<TensorImpl> target;
};

// total += g, elementwise (same shape and dtype).
void AccumulateGrad::accumulate_into(Tensor& total, const Tensor& g) {
  dispatch_float("backward", total.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* dst = total.data<T>();
    const T* src = g.data<T>();
    for (int64_t i = 0, n = total.numel(); i < n; ++i) dst[i] += src[i];
  });
}

std::shared_ptr<Node> gradient_edge(const Tensor& t) {
  TensorImpl* impl = t.impl();
  if (!impl) return nullptr;
  if (impl->grad_fn) return impl->grad_fn;
  if (!impl->requires_grad) return nullptr;
  if (auto existing = impl->grad_accumulator.lock()) return existing;
  auto acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
  impl->grad_accumulator = acc;
  return acc;
}

void attach_node(Tensor& output, std::shared_ptr<Node> node) {
  node->shape = output.shape();
  node->dtype = output.dtype();
  output.impl()->grad_fn = std::move(node);
  output.impl()->requires_grad = true;
}

// ---- the backward pass ----------------------------------------------------------------------------
namespace {

std::atomic<uint64_t> g_visit_mark{0};  // atomic: threads may each run backward on their own graphs

// Adds g into node.pending_grad: gradients of a tensor used several times are summed.
void add_pending(Node& node, Tensor g) {
  if (!node.pending_grad.defined()) {
    node.pending_grad = std::move(g);
  } else if (node.pending_grad.impl_ptr().use_count() == 1 && node.pending_grad.impl()->storage.use_count() == 1) {
    AccumulateGrad::accumulate_into(node.pending_grad, g);  // the buffer is ours alone: add in place
  } else {
    node.pending_grad = node.pending_grad + g;
  }
}

void check_gradient(const char* where, const Tensor& g, const Shape& shape, Dtype dtype) {
  if (g.shape() != shape || g.dtype() != dtype)
    throw Error(std::string(where) + ": gradient of shape " + shape_str(g.shape()) + " " + dtype_name(g.dtype()) +
                " does not match the tensor's shape " + shape_str(shape) + " " + dtype_name(dtype));
}

// Runs reverse mode from `roots` (node, gradient of its output). When `captured` is given, nothing is
// accumulated into leaves; instead the gradient reaching each node in `captured` is stored there
// (torch.autograd.grad).
void run_backward(const std::vector<std::pair<std::shared_ptr<Node>, Tensor>>& roots, bool retain_graph,
                  std::unordered_map<Node*, Tensor>* captured) {
  NoGradGuard no_grad;  // the backward computations themselves are not recorded
  const uint64_t mark = ++g_visit_mark;

  // 1. Find every node reachable from the roots and count, for each, the edges that lead into it:
  //    a node may run only once all of its consumers have sent their gradient (Kahn's algorithm).
  //    Its pending gradient is cleared on the first visit: a backward that threw halfway may have left
  //    one behind, which must not leak into this pass.
  std::vector<Node*> stack;
  for (const auto& [node, g] : roots)
    if (node->visit_mark != mark) {
      node->visit_mark = mark;
      node->dependencies = 0;
      node->pending_grad = Tensor();
      stack.push_back(node.get());
    }
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    for (const auto& edge : node->next) {
      if (!edge) continue;
      if (edge->visit_mark != mark) {
        edge->visit_mark = mark;
        edge->dependencies = 0;
        edge->pending_grad = Tensor();
        stack.push_back(edge.get());
      }
      ++edge->dependencies;
    }
  }

  // 2. Seed the roots, then run each node once its gradient is complete.
  for (const auto& [node, g] : roots) add_pending(*node, g);
  std::vector<Node*> ready;
  for (const auto& [node, g] : roots)
    if (node->dependencies == 0 && node->visit_mark == mark) {
      node->visit_mark = mark - 1;  // queued once even if it is several roots
      ready.push_back(node.get());
    }
  while (!ready.empty()) {
    Node* node = ready.back();
    ready.pop_back();
    Tensor g = std::move(node->pending_grad);  // leaves pending_grad undefined
    if (captured) {
      auto it = captured->find(node);
      if (it != captured->end()) it->second = g;
    }
    std::vector<Tensor> input_grads;  // stays empty when no consumer sent a gradient (all undefined)
    if (g.defined() && (!captured || !node->leaf())) input_grads = node->apply(g);
    g = Tensor();
    for (std::size_t i = 0; i < node->next.size(); ++i) {
      Node* edge = node->next[i].get();
      if (!edge) continue;
      if (i < input_grads.size() && input_grads[i].defined()) {
        check_gradient(node->op, input_grads[i], edge->shape, edge->dtype);
        add_pending(*edge, std::move(input_grads[i]));
      }
      if (--edge->dependencies == 0) ready.push_back(edge);
    }
    if (!retain_graph) node->release();
  }
}

std::shared_ptr<Node> root_of(const char* where, const Tensor& t) {
  if (!t.requires_grad())
    throw Error(std::string(where) + ": tensor of shape " + shape_str(t.shape()) +
                " does not require grad and has no grad_fn; expected the result of ops on tensors with requires_grad");
  return gradient_edge(t);
}

Tensor seed_gradient(const char* where, const Tensor& output, const Tensor& upstream) {
  if (upstream.defined()) {
    check_gradient(where, upstream, output.shape(), output.dtype());
    return upstream;
  }
  if (output.numel() != 1)
    throw Error(std::string(where) + ": output of shape " + shape_str(output.shape()) +
                " is not a single element; pass an upstream gradient of that shape");
  return ones(output.shape(), output.dtype());
}

}  // namespace

void Tensor::backward(BackwardOptions options) const { backward(Tensor(), options); }

void Tensor::backward(const Tensor& upstream, BackwardOptions options) const {
  auto root = root_of("backward", *this);
  run_backward({{root, seed_gradient("backward", *this, upstream)}}, options.retain_graph, nullptr);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph) {
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    throw Error("grad: " + std::to_string(grad_outputs.size()) + " grad_outputs for " + std::to_string(outputs.size()) +
                " outputs; expected one per output (or none)");
  std::vector<std::pair<std::shared_ptr<Node>, Tensor>> roots;
  for (std::size_t i = 0; i < outputs.size(); ++i)
    roots.emplace_back(root_of("grad", outputs[i]),
                       seed_gradient("grad", outputs[i], grad_outputs.empty() ? Tensor() : grad_outputs[i]));

  std::unordered_map<Node*, Tensor> captured;
  std::vector<std::shared_ptr<Node>> input_nodes;  // keeps accumulators alive during the pass
  for (const Tensor& input : inputs) {
    if (!input.requires_grad())
      throw Error("grad: an input of shape " + shape_str(input.shape()) + " does not require grad");
    input_nodes.push_back(gradient_edge(input));
    captured[input_nodes.back().get()] = Tensor();
  }
  run_backward(roots, retain_graph, &captured);

  std::vector<Tensor> result;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    Tensor g = captured[input_nodes[i].get()];
    if (!g.defined())
      throw Error("grad: input " + std::to_string(i) + " (shape " + shape_str(inputs[i].shape()) +
                  ") is not used in the graph of the outputs");
    result.push_back(g.impl()->storage.use_count() == 1 ? g : g.clone());
  }
  return result;
}

}  // namespace ng
