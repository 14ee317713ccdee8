// tensor.h: the Tensor, normgrad's one data type.
//
// A Tensor is a handle (a shared pointer) to a TensorImpl: a shape, a dtype and a contiguous row-major
// buffer (Storage). Copying a Tensor copies the handle, not the numbers, as in PyTorch. A tensor that
// requires grad and was produced by an op remembers the op in `grad_fn` (a Node of the graph, graph.h);
// a leaf that requires grad collects its gradient in `grad()`.
//
// This file is the bottom of the stack: it knows shapes, dtypes and memory, nothing about ops.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace ng {

// Every error normgrad raises on bad input: the message names the operation, what it got and what it expected.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// float32 is the default, as in PyTorch; float64 is there for gradient checks; int64 holds indices
// and class labels (no gradients flow through it).
enum class Dtype { float32, float64, int64 };
inline constexpr Dtype float32 = Dtype::float32;
inline constexpr Dtype float64 = Dtype::float64;
inline constexpr Dtype int64 = Dtype::int64;

const char* dtype_name(Dtype dtype);
std::size_t dtype_size(Dtype dtype);

using Shape = std::vector<int64_t>;

// "[60, 784]"
std::string shape_str(const Shape& shape);
// Product of the sizes; 1 for a 0-dim (scalar) shape. A product past 2^63 - 1 is an Error naming `op`
// and the shape (checked before it is formed: no signed overflow on the way).
int64_t shape_numel(const Shape& shape, const char* op = "tensor");
// The most bytes one tensor may hold: 2^48 (256 TiB), more than any machine has, and small enough
// that every byte offset and every element count derived from it fits in 64 bits.
inline constexpr uint64_t kMaxTensorBytes = uint64_t{1} << 48;
// Turns a possibly negative dim (-1 = last) into 0..ndim-1, or throws naming `op`.
int64_t normalize_dim(const char* op, int64_t dim, int64_t ndim);

// The bytes behind one or more tensors, 64-byte aligned so that loops over them vectorize.
//
// `version` counts the writes into an existing buffer (PyTorch's version counter): every writer
// (mutable_data(), set(), the in-place ops, the optimizers, checkpoint loading) bumps it, and a node
// that saved the tensor for its backward compares it with the version it saw (SavedTensor, graph.h).
// Tensors that share a buffer (reshape, view, detach) share the counter, since a write through one
// changes them all. `serial` numbers buffers in the order they were made: the backward pass uses it to
// tell a gradient buffer a closure has just made (its own to add into) from one shared with others.
struct Storage {
  // An allocation the system refuses is an Error saying how many bytes were asked for.
  explicit Storage(std::size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data;
  std::size_t bytes;
  std::atomic<uint64_t> version{0};
  uint64_t serial;
};
// The serial the next Storage will get (graph.cpp compares serials against it).
uint64_t next_storage_serial();
// How many Storage buffers are alive: tests use it to prove a training step leaves nothing behind.
int64_t live_storages();

struct Node;
struct TensorImpl;
struct MaxResult;   // ops.h
struct TopKResult;  // ops.h

struct BackwardOptions {
  bool retain_graph = false;  // keep the graph's saved buffers so backward can run through it again
  // Record the backward pass itself, so that the gradients it produces can be differentiated again
  // (Hessian-vector products, gradient penalties). Implies retain_graph, as in PyTorch.
  bool create_graph = false;
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (like a null pointer); defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t dim() const;
  int64_t numel() const;
  int64_t size(int64_t dim) const;  // dim may be negative
  Dtype dtype() const;

  // Read-only access to the buffer; T must match dtype() (float, double or int64_t).
  template <class T> const T* data() const;
  const void* raw_data() const;
  // Writable access: counts as a write (bumps the version), so a backward that saved this tensor
  // before the write refuses to run instead of using the new numbers. Kernels filling a tensor they
  // just made use it too; for them the bump is harmless.
  template <class T> T* mutable_data();
  void* mutable_raw_data();
  // How many writes the buffer has seen (PyTorch's t._version).
  uint64_t version() const;

  // The value of a one-element tensor, as a double.
  double item() const;
  // Element access for tests and small programs (slow: one bounds check per call).
  double at(std::initializer_list<int64_t> index) const;
  void set(std::initializer_list<int64_t> index, double value);  // a write: bumps the version
  // All elements in row-major order, converted to double.
  std::vector<double> to_vector() const;

  Tensor to(Dtype dtype) const;  // a copy in another dtype (records a node so gradients flow back)
  Tensor clone() const;          // a copy of the numbers (records a node)
  Tensor detach() const;         // the same numbers, cut from the graph

  bool requires_grad() const;
  Tensor& requires_grad_(bool enabled = true);  // only on leaves
  bool is_leaf() const;
  const std::shared_ptr<Node>& grad_fn() const;

  // The accumulated gradient of a leaf (undefined until a backward reaches it).
  Tensor grad() const;
  void set_grad(const Tensor& grad);
  void zero_grad();  // drops the gradient, as PyTorch's zero_grad(set_to_none=True)

  // Reverse mode from this tensor: it must hold one element, or an upstream gradient of its shape is given.
  void backward(BackwardOptions options = {}) const;
  void backward(const Tensor& upstream, BackwardOptions options = {}) const;

  // In-place ops (ops_inplace.cpp), PyTorch's add_, mul_, ...: they write into this tensor's buffer
  // and bump its version. On a leaf that requires grad they throw while grad mode is on (wrap
  // optimizer-style updates in NoGradGuard); on a tensor in a graph they are recorded.
  Tensor& add_(const Tensor& other);
  Tensor& add_(double value);
  Tensor& mul_(const Tensor& other);
  Tensor& mul_(double value);
  Tensor& zero_();
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& source);  // same shape (or broadcastable to it); converts the dtype
  Tensor& clamp_(double min, double max);

  // A name shown by printing and by to_dot (parameters get theirs from nn::Module).
  Tensor& set_name(std::string name);
  const std::string& name() const;

  // Method forms of common ops (defined in the ops_*.cpp files), so model code reads like PyTorch.
  Tensor sum() const;
  Tensor sum(std::vector<int64_t> dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(std::vector<int64_t> dims, bool keepdim = false) const;
  Tensor pow(double exponent) const;
  Tensor sqrt() const;
  Tensor exp() const;
  Tensor log() const;
  Tensor abs() const;
  Tensor relu() const;
  Tensor sigmoid() const;
  Tensor tanh() const;
  Tensor reshape(Shape shape) const;
  Tensor view(Shape shape) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const;  // transpose of a 2-D tensor
  Tensor permute(std::vector<int64_t> dims) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor matmul(const Tensor& other) const;
  // (ops_select.cpp) over all elements, or along dim with values and indices, as PyTorch's t.max(dim).
  Tensor max() const;
  MaxResult max(int64_t dim, bool keepdim = false) const;
  Tensor min() const;
  MaxResult min(int64_t dim, bool keepdim = false) const;
  Tensor argmax() const;
  Tensor argmax(int64_t dim, bool keepdim = false) const;
  Tensor argmin() const;
  Tensor argmin(int64_t dim, bool keepdim = false) const;
  TopKResult topk(int64_t k, int64_t dim = -1, bool largest = true, bool sorted = true) const;
  Tensor softmax(int64_t dim) const;
  Tensor logsumexp(int64_t dim, bool keepdim = false) const;
  // (ops_select.cpp) masking, triangles and pieces, as PyTorch's t.masked_fill(mask, value), ...
  Tensor masked_fill(const Tensor& mask, double value) const;
  Tensor tril(int64_t diagonal = 0) const;
  Tensor triu(int64_t diagonal = 0) const;
  Tensor select(int64_t dim, int64_t index) const;
  std::vector<Tensor> split(int64_t split_size, int64_t dim = 0) const;
  std::vector<Tensor> chunk(int64_t chunks, int64_t dim = 0) const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  Shape shape;
  Dtype dtype = float32;
  int64_t numel = 0;
  std::shared_ptr<Storage> storage;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;         // set on results of ops that need gradients
  std::weak_ptr<Node> grad_accumulator;  // leaves: the graph node that adds into `grad` (graph.cpp)
  Tensor grad;                           // leaves: the accumulated gradient
  std::string name;
  // Guards grad_accumulator and grad: two threads may run forward and backward through the same
  // leaf (a shared parameter) at once.
  std::mutex leaf_mutex;
};

// ---- factories ------------------------------------------------------------------------------------
// A new tensor with uninitialized contents (kernels fill it).
Tensor empty(const Shape& shape, Dtype dtype = float32);
Tensor zeros(const Shape& shape, Dtype dtype = float32);
Tensor ones(const Shape& shape, Dtype dtype = float32);
Tensor full(const Shape& shape, double value, Dtype dtype = float32);
Tensor scalar(double value, Dtype dtype = float32);  // 0-dim
// 0, 1, ..., n-1 (or start, start+step, ... below end)
Tensor arange(int64_t n, Dtype dtype = float32);
Tensor arange(double start, double end, double step = 1, Dtype dtype = float32);
// Uniform in [0, 1) and standard normal, from the generator seeded by manual_seed.
Tensor rand(const Shape& shape, Dtype dtype = float32);
Tensor randn(const Shape& shape, Dtype dtype = float32);
// From values in row-major order; the shape defaults to 1-D.
Tensor tensor(const std::vector<double>& values, Dtype dtype = float32);
Tensor tensor(const std::vector<double>& values, const Shape& shape, Dtype dtype = float32);
template <class T> Tensor from_vector(const std::vector<T>& values, const Shape& shape);

// The global random generator (splitmix64-seeded xoshiro256**; the same seed gives the same numbers everywhere).
// It is shared by all threads and guarded by a lock, as PyTorch's default CPU generator is: each call
// takes the next numbers of the one sequence.
void manual_seed(uint64_t seed);
// The generator's state, to save mid-way through a run and put back with set_rng_state, after which
// the draws repeat the uninterrupted run bit for bit. It is an int64 tensor [4] holding xoshiro256**'s
// four 64-bit words (bit for bit; PyTorch's is a uint8 tensor, and normgrad has no uint8 dtype).
// set_rng_state refuses (an Error, the generator unchanged) another dtype or shape, and the all-zero
// state, from which xoshiro would only ever draw 0.
Tensor get_rng_state();
void set_rng_state(const Tensor& state);
uint64_t random_u64();
double random_uniform();  // [0, 1)
double random_normal();   // N(0, 1)
// Holds the generator's lock for a run of draws (a whole tensor's worth), so that they are one
// uninterrupted stretch of the sequence and cost no lock each.
class RandomDraws {
 public:
  RandomDraws();
  uint64_t u64();
  double uniform();  // [0, 1)
  double normal();   // N(0, 1)

 private:
  std::unique_lock<std::mutex> lock_;
};

// PyTorch-like printing: values (summarized when large), shape, dtype and grad_fn or requires_grad.
std::ostream& operator<<(std::ostream& os, const Tensor& t);

template <class T> constexpr Dtype dtype_of();
template <> constexpr Dtype dtype_of<float>() { return float32; }
template <> constexpr Dtype dtype_of<double>() { return float64; }
template <> constexpr Dtype dtype_of<int64_t>() { return int64; }

void check_dtype_access(const Tensor& t, Dtype wanted);
template <class T> const T* Tensor::data() const {
  check_dtype_access(*this, dtype_of<T>());
  return static_cast<const T*>(impl_->storage->data);
}
template <class T> T* Tensor::mutable_data() {
  check_dtype_access(*this, dtype_of<T>());
  impl_->storage->version.fetch_add(1, std::memory_order_relaxed);
  return static_cast<T*>(impl_->storage->data);
}

template <class T> Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
  Tensor out = empty(shape, dtype_of<T>());
  if (static_cast<int64_t>(values.size()) != out.numel())
    throw Error("from_vector: " + std::to_string(values.size()) + " values do not fill shape " + shape_str(shape) +
                " (" + std::to_string(out.numel()) + " elements)");
  T* dst = out.mutable_data<T>();
  for (std::size_t i = 0; i < values.size(); ++i) dst[i] = values[i];
  return out;
}

// Calls f.operator()<T>() with the C++ type T behind a floating dtype (float or double), so that a kernel
// written once as a template lambda runs for both; int64 is refused, naming `op`:
//   dispatch_float("exp", x.dtype(), [&]<class T>() { const T* px = x.data<T>(); ... });
template <class F> decltype(auto) dispatch_float(const char* op, Dtype dtype, F&& f) {
  switch (dtype) {
    case float32:
      return f.template operator()<float>();
    case float64:
      return f.template operator()<double>();
    default:
      throw Error(std::string(op) + ": dtype " + dtype_name(dtype) + " is not supported; expected float32 or float64");
  }
}

}  // namespace ng
