// graph.cpp: recording nodes, saved tensors, grad and anomaly modes, and the backward pass.
#include "graph.h"

#include <cmath>
#include <cstdint>
#include <mutex>

#include "ops.h"

namespace ng {

namespace {
thread_local uint64_t g_next_sequence_nr = 0;  // per thread, as PyTorch's
}

Node::Node(const char* op_name) : op(op_name), sequence_nr(g_next_sequence_nr++) { ++live_count; }

// A long chain of nodes would be destroyed recursively (each node's destructor releasing the next),
// which overflows the stack at around 10^5 nodes. Instead each destructor hands its edges to a
// thread-local queue, and only the outermost destructor empties it.
Node::~Node() {
  thread_local std::vector<std::shared_ptr<Node>> to_release;
  thread_local bool draining = false;
  for (auto& edge : next)
    if (edge) to_release.push_back(std::move(edge));
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

// ---- saved tensors --------------------------------------------------------------------------------
// A leaf that requires grad is kept through an alias of its buffer plus a weak reference: a strong one
// would close a cycle under create_graph (leaf -> leaf.grad -> its graph -> this node -> leaf). Other
// tensors are kept as they are: a graph only points from consumers to producers, so no cycle can form.
SavedTensor::SavedTensor(const Tensor& t) : version_(t.defined() ? t.version() : 0) {
  if (t.defined() && t.requires_grad() && t.is_leaf()) {
    tensor_ = t.detach();
    tensor_.impl()->name = t.name();
    leaf_ = t.impl_ptr();
  } else {
    tensor_ = t;
  }
}

SavedTensor SavedTensor::output(const Tensor& out) {
  SavedTensor saved(out.detach());
  saved.is_output_ = true;
  return saved;
}

static std::string describe(const Tensor& t) {
  std::string s = shape_str(t.shape()) + " " + dtype_name(t.dtype());
  if (!t.name().empty()) s += " '" + t.name() + "'";
  return s;
}

Tensor SavedTensor::unpack(const Node& node) const {
  if (!tensor_.defined()) return tensor_;
  const uint64_t now = tensor_.version();
  if (now != version_)
    throw Error(std::string("backward: one of the tensors needed for gradient computation has been modified by an "
                            "in-place write: '") +
                node.op + "' (forward op #" + std::to_string(node.sequence_nr) + ") saved " + describe(tensor_) +
                (is_output_ ? " (its output)" : "") + " at version " + std::to_string(version_) +
                ", and it is now at version " + std::to_string(now) +
                ". Write into it only after backward, or write into a clone()");
  if (is_grad_enabled())
    if (std::shared_ptr<TensorImpl> leaf = leaf_.lock())
      return Tensor(std::move(leaf));  // create_graph: the leaf itself
  if (is_output_ && is_grad_enabled()) {
    // create_graph: the output rejoins its node, so that gradients can flow through it again.
    auto impl = std::make_shared<TensorImpl>();
    impl->shape = tensor_.shape();
    impl->dtype = tensor_.dtype();
    impl->numel = tensor_.numel();
    impl->storage = tensor_.impl()->storage;
    impl->grad_fn = std::const_pointer_cast<Node>(node.shared_from_this());
    impl->requires_grad = true;
    return Tensor(std::move(impl));
  }
  return tensor_;
}

// ---- grad mode ------------------------------------------------------------------------------------
namespace {
thread_local bool g_grad_enabled = true;
thread_local bool g_anomaly_enabled = false;
}  // namespace
bool is_grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool enabled) { g_grad_enabled = enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }
GradModeGuard::GradModeGuard(bool enabled) : previous_(g_grad_enabled) { g_grad_enabled = enabled; }
GradModeGuard::~GradModeGuard() { g_grad_enabled = previous_; }

// ---- anomaly mode ---------------------------------------------------------------------------------
bool is_anomaly_enabled() { return g_anomaly_enabled; }
void detect_anomaly(bool enabled) { g_anomaly_enabled = enabled; }
DetectAnomalyGuard::DetectAnomalyGuard(bool enabled) : previous_(g_anomaly_enabled) { g_anomaly_enabled = enabled; }
DetectAnomalyGuard::~DetectAnomalyGuard() { g_anomaly_enabled = previous_; }

namespace {

// Where the first NaN or Inf of a floating tensor is, or -1.
int64_t first_non_finite(const Tensor& t) {
  if (t.dtype() == int64) return -1;
  return dispatch_float("anomaly", t.dtype(), [&]<class T>() -> int64_t {
    const T* p = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i)
      if (!std::isfinite(p[i])) return i;
    return -1;
  });
}

std::string value_at(const Tensor& t, int64_t i) {
  const double v = t.dtype() == float32 ? t.data<float>()[i] : t.data<double>()[i];
  return std::isnan(v) ? "NaN" : v > 0 ? "Inf" : "-Inf";
}

std::string node_description(const Node& node) {
  return "'" + std::string(node.op) + "' (forward op #" + std::to_string(node.sequence_nr) + " of its thread; inputs " +
         (node.anomaly_inputs ? *node.anomaly_inputs : std::string("unknown: made before anomaly mode was on")) + ")";
}

}  // namespace

void detail::anomaly_check_forward(const Tensor& output, Node& node, const std::vector<const Tensor*>& inputs) {
  std::string described;
  for (const Tensor* t : inputs) described += (described.empty() ? "" : ", ") + (t->defined() ? describe(*t) : "none");
  node.anomaly_inputs = std::make_unique<std::string>(described);
  const int64_t at = first_non_finite(output);
  if (at >= 0)
    throw Error("anomaly: the forward of " + node_description(node) + " produced " + value_at(output, at) +
                " at element " + std::to_string(at) + " of its output " + shape_str(output.shape()));
}

// ---- leaves ---------------------------------------------------------------------------------------
namespace {
// total += g, elementwise (same shape and dtype): an in-place write, so it bumps total's version.
void add_into(Tensor& total, const Tensor& g) {
  dispatch_float("backward", total.dtype(), [&]<class T>() {
    T* dst = total.mutable_data<T>();
    const T* src = g.data<T>();
    for (int64_t i = 0, n = total.numel(); i < n; ++i) dst[i] += src[i];
  });
}

// True when `t` is the only reference to its buffer anywhere in the program: no other Tensor holds its
// TensorImpl, and no other TensorImpl (a view, an alias) holds its Storage. Only then may the backward
// pass write into the buffer, or hand it to a leaf as its .grad, without anyone seeing the change. This is
// a test of identity, made at the moment of use, so a gradient that a closure returned for two inputs
// (`return {d, d}`) is never taken as private, whatever happened to the first copy.
bool sole_reference(const Tensor& t) { return t.impl_ptr().use_count() == 1 && t.impl()->storage.use_count() == 1; }

}  // namespace

// The sink of the graph for a leaf that requires grad: adds the incoming gradient into leaf.grad().
// The leaf holds it only weakly, so it lives exactly as long as some graph uses the leaf.
struct AccumulateGrad final : Node {
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf_impl) : Node("AccumulateGrad"), target(leaf_impl) {
    shape = leaf_impl->shape;
    dtype = leaf_impl->dtype;
  }
  // leaf.grad += g; returns no gradient (a leaf has no inputs). When the pass holds the only reference
  // to g (sole_reference: `g` is then the pass's own variable), g becomes .grad itself instead of a copy.
  // Under create_graph (grad mode on during the pass), .grad is a new tensor with a graph of its own.
  std::vector<Tensor> apply(const Tensor& g) override {
    const std::shared_ptr<TensorImpl> leaf = target.lock();
    if (!leaf) return {};  // the leaf is gone, and with it every way to read its gradient
    const bool create_graph = is_grad_enabled();
    const bool adopt = !create_graph && sole_reference(g);
    std::lock_guard<std::mutex> lock(leaf->leaf_mutex);  // two threads may backpropagate into one leaf
    Tensor& current = leaf->grad;
    if (!current.defined())
      current = adopt ? g : g.clone();
    else if (create_graph)
      current = current + g;
    else
      add_into(current, g);
    return {};
  }
  TensorImpl* leaf() const override { return target.lock().get(); }
  // Held weakly: under create_graph, leaf.grad's own graph leads back to this node, and a strong
  // reference would make the cycle leaf -> grad -> ... -> AccumulateGrad -> leaf, which never frees.
  std::weak_ptr<TensorImpl> target;
};

std::shared_ptr<Node> gradient_edge(const Tensor& t) {
  TensorImpl* impl = t.impl();
  if (!impl) return nullptr;
  if (impl->grad_fn) return impl->grad_fn;
  if (!impl->requires_grad) return nullptr;
  std::lock_guard<std::mutex> lock(impl->leaf_mutex);  // two threads may record ops on one leaf at once
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
// One backward pass, in four phases, each a function below (PyTorch's engine has the same: GraphTask,
// compute_dependencies, evaluate_function, InputBuffer::add):
//   1. count_dependencies: find every node reachable from the roots, and count for each how many edges
//      lead into it. A node may run only once all of its consumers have sent their gradient (Kahn's
//      algorithm, iterative, so a chain of a million ops is fine).
//   2. seed_roots: the roots' gradients (ones for a scalar loss) go into their slots; roots that wait
//      for nothing are ready.
//   3. evaluate: a ready node's summed gradient goes through its apply() (the op's backward closure, or
//      for a leaf's AccumulateGrad the sum into .grad); each gradient it returns is sent along its edge.
//   4. send: a gradient arriving at a node is added to what that node received so far; the node becomes
//      ready when the last one arrives.
// Everything the pass knows lives here, not on the nodes, so two passes may run through shared nodes.
namespace {

struct Slot {
  Node* node = nullptr;
  int64_t dependencies = 0;  // consumers that have not yet sent their gradient
  Tensor grad;               // the sum of the gradients received so far
  bool captured = false;     // ng::grad wants the gradient that reaches this node ...
  Tensor captured_grad;      // ... and this is it
};

// The pass's table of slots, by node: open addressing over a power-of-two array, because a training
// step's backward is a few dozen nodes and must not pay a hash-map allocation per node. Small graphs
// (up to 8 nodes, such as one op and its leaves) fit in the table's own array and allocate nothing.
class SlotTable {
 public:
  // The node's slot, made on first use; `made` says whether it was.
  Slot& find_or_make(Node* node, bool& made) {
    if ((count_ + 1) * 2 > capacity_) grow();
    Slot& slot = probe(node);
    made = slot.node == nullptr;
    if (made) {
      slot.node = node;
      ++count_;
    }
    return slot;
  }
  Slot& at(Node* node) { return probe(node); }  // the node must be in the table

 private:
  static constexpr std::size_t kInline = 16;
  Slot* slots() { return heap_.empty() ? inline_.data() : heap_.data(); }
  Slot& probe(Node* node) {
    Slot* table = slots();
    const std::size_t mask = capacity_ - 1;
    std::size_t i = ((reinterpret_cast<std::uintptr_t>(node) >> 4) * 0x9E3779B97F4A7C15ULL >> 20) & mask;
    while (table[i].node != nullptr && table[i].node != node) i = (i + 1) & mask;
    return table[i];
  }
  void grow() {
    std::vector<Slot> old(capacity_ * 2);
    old.swap(heap_);
    Slot* from = old.empty() ? inline_.data() : old.data();
    const std::size_t old_capacity = capacity_;
    capacity_ *= 2;
    for (std::size_t i = 0; i < old_capacity; ++i)
      if (from[i].node) probe(from[i].node) = std::move(from[i]);
  }
  std::array<Slot, kInline> inline_{};
  std::vector<Slot> heap_;
  std::size_t capacity_ = kInline;
  std::size_t count_ = 0;
};

void check_gradient(const char* where, const Tensor& g, const Shape& shape, Dtype dtype) {
  if (g.shape() != shape || g.dtype() != dtype)
    throw Error(std::string(where) + ": gradient of shape " + shape_str(g.shape()) + " " + dtype_name(g.dtype()) +
                " does not match the tensor's shape " + shape_str(shape) + " " + dtype_name(dtype));
}

void anomaly_check_backward(const Node& node, std::size_t input, const Tensor& g) {
  const int64_t at = first_non_finite(g);
  if (at >= 0)
    throw Error("anomaly: the backward of " + node_description(node) + " returned " + value_at(g, at) + " at element " +
                std::to_string(at) + " of the gradient for input " + std::to_string(input) + " " +
                shape_str(g.shape()));
}

// For torch.autograd.grad: the nodes whose incoming gradient is wanted, and what reached them.
struct Capture {
  Node* node;
  Tensor grad;
};
using Captured = std::vector<Capture>;

// Where a pass starts: a node, and the gradient of its output.
struct Root {
  std::shared_ptr<Node> node;
  Tensor grad;
};

class BackwardPass {
 public:
  // With `captured`, nothing is accumulated into leaves; the gradient reaching each listed node is
  // stored beside it instead (torch.autograd.grad).
  BackwardPass(bool retain_graph, bool create_graph, Captured* captured)
      : retain_graph_(retain_graph), create_graph_(create_graph), anomaly_(is_anomaly_enabled()), captured_(captured) {}

  void run(std::vector<Root> roots) {
    GradModeGuard grad_mode(create_graph_);  // the backward is recorded only when asked to be
    count_dependencies(roots);
    bool made = false;
    if (captured_)
      for (const Capture& c : *captured_) table_.find_or_make(c.node, made).captured = true;
    seed_roots(roots);
    while (!ready_.empty()) {
      Node* node = ready_.back();
      ready_.pop_back();
      evaluate(*node);
    }
    if (captured_)
      for (Capture& c : *captured_) c.grad = table_.at(c.node).captured_grad;
  }

 private:
  // 1. Every node reachable from the roots gets a slot holding the number of edges into it.
  void count_dependencies(const std::vector<Root>& roots) {
    std::vector<Node*> stack;
    bool made = false;
    for (const Root& root : roots) {
      table_.find_or_make(root.node.get(), made);
      if (made) stack.push_back(root.node.get());
    }
    while (!stack.empty()) {
      Node* node = stack.back();
      stack.pop_back();
      for (const auto& edge : node->next) {
        if (!edge) continue;
        Slot& slot = table_.find_or_make(edge.get(), made);
        ++slot.dependencies;
        if (made) stack.push_back(edge.get());
      }
    }
  }

  // 2. The roots' gradients go into their slots (moved, so that a gradient the pass made, such as the
  //    ones of a scalar loss, stays its own); a root that no other root feeds is ready.
  void seed_roots(std::vector<Root>& roots) {
    for (Root& root : roots) receive(table_.at(root.node.get()), std::move(root.grad));
    for (const Root& root : roots) {
      Slot& slot = table_.at(root.node.get());
      if (slot.dependencies == 0) {
        slot.dependencies = -1;  // queued once even if it is several roots
        ready_.push_back(root.node.get());
      }
    }
  }

  // 3. The node's gradient is complete: run its backward and send what it returns along its edges.
  void evaluate(Node& node) {
    Slot& slot = table_.at(&node);
    Tensor g = std::move(slot.grad);
    if (slot.captured) slot.captured_grad = g;
    std::vector<Tensor> input_grads;                   // stays empty when no consumer sent a gradient (all undefined)
    if (g.defined() && !(captured_ && node.leaf())) {  // ng::grad accumulates into no leaf
      input_grads = node.apply(g);
      if (input_grads.size() != node.next.size())
        throw Error(std::string("backward: the backward of '") + node.op + "' returned " +
                    std::to_string(input_grads.size()) + " gradient(s) for " + std::to_string(node.next.size()) +
                    " input(s); expected one per input (an undefined Tensor where an input needs none)");
    }
    g = Tensor();  // the pass's reference is gone: a gradient passed straight through may now be private
    for (std::size_t i = 0; i < node.next.size(); ++i) {
      Node* edge = node.next[i].get();
      if (!edge) continue;
      if (!input_grads.empty() && input_grads[i].defined()) {
        check_gradient(node.op, input_grads[i], edge->shape, edge->dtype);
        if (anomaly_) anomaly_check_backward(node, i, input_grads[i]);
        send(*edge, std::move(input_grads[i]));
      } else {
        send(*edge, Tensor());  // no gradient (zero), but the edge is done
      }
    }
    if (!retain_graph_) node.release();
  }

  // 4. A gradient for `edge` arrives (undefined: none, the consumer is done all the same).
  void send(Node& edge, Tensor g) {
    Slot& slot = table_.at(&edge);
    if (g.defined()) receive(slot, std::move(g));
    if (--slot.dependencies == 0) ready_.push_back(&edge);
  }

  // The gradients of a tensor used several times are summed. Without create_graph the sum is formed in
  // place in a buffer the pass alone holds (sole_reference), if either is one; otherwise into a new
  // buffer. With create_graph it must be an op, so that the sum is part of the recorded backward.
  void receive(Slot& slot, Tensor g) {
    if (!slot.grad.defined()) {
      slot.grad = std::move(g);
    } else if (create_graph_) {
      slot.grad = slot.grad + g;
    } else if (sole_reference(slot.grad)) {
      add_into(slot.grad, g);
    } else if (sole_reference(g)) {
      add_into(g, slot.grad);  // a + b == b + a exactly, so which buffer holds the sum does not matter
      slot.grad = std::move(g);
    } else {
      slot.grad = slot.grad + g;
    }
  }

  const bool retain_graph_, create_graph_, anomaly_;
  Captured* captured_;
  SlotTable table_;
  std::vector<Node*> ready_;
};

std::shared_ptr<Node> root_of(const char* where, const Tensor& t) {
  if (!t.requires_grad())
    throw Error(std::string(where) + ": tensor of shape " + shape_str(t.shape()) +
                " does not require grad and has no grad_fn; expected the result of ops on tensors with requires_grad");
  return gradient_edge(t);
}

Root make_root(const char* where, const Tensor& output, const Tensor& upstream) {
  Root root{root_of(where, output), upstream};
  if (upstream.defined()) {
    check_gradient(where, upstream, output.shape(), output.dtype());
  } else {
    if (output.numel() != 1)
      throw Error(std::string(where) + ": output of shape " + shape_str(output.shape()) +
                  " is not a single element; pass an upstream gradient of that shape");
    root.grad = ones(output.shape(), output.dtype());
  }
  return root;
}

}  // namespace

void Tensor::backward(BackwardOptions options) const { backward(Tensor(), options); }

void Tensor::backward(const Tensor& upstream, BackwardOptions options) const {
  BackwardPass(options.retain_graph || options.create_graph, options.create_graph, nullptr)
      .run({make_root("backward", *this, upstream)});
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         BackwardOptions options) {
  return detail::grad(outputs, inputs, std::vector<Tensor>{}, options);
}

std::vector<Tensor> detail::grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                                 const std::vector<Tensor>& grad_outputs, BackwardOptions options) {
  const bool create_graph = options.create_graph, retain_graph = options.retain_graph || create_graph;
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    throw Error("grad: " + std::to_string(grad_outputs.size()) + " grad_outputs for " + std::to_string(outputs.size()) +
                " outputs; expected one per output (or none)");
  std::vector<Root> roots;
  for (std::size_t i = 0; i < outputs.size(); ++i)
    roots.push_back(make_root("grad", outputs[i], grad_outputs.empty() ? Tensor() : grad_outputs[i]));

  Captured captured;
  std::vector<std::shared_ptr<Node>> input_nodes;  // keeps accumulators alive during the pass
  for (const Tensor& input : inputs) {
    if (!input.requires_grad())
      throw Error("grad: an input of shape " + shape_str(input.shape()) + " does not require grad");
    input_nodes.push_back(gradient_edge(input));
    captured.push_back({input_nodes.back().get(), Tensor()});
  }
  BackwardPass(retain_graph, create_graph, &captured).run(std::move(roots));

  std::vector<Tensor> result;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& g = captured[i].grad;
    if (!g.defined())
      throw Error("grad: input " + std::to_string(i) + " (shape " + shape_str(inputs[i].shape()) +
                  ") is not used in the graph of the outputs");
    // As torch.autograd.grad, the gradient is handed out as it reached the input: it may share its buffer
    // with another result or with a grad_output (y = a + b passes the same gradient to a and b).
    result.push_back(g);
  }
  return result;
}

}  // namespace ng
