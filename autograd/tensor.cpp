// tensor.cpp: storage, factories, the random generator, element access and printing.
#include "tensor.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <new>
#include <ostream>
#include <sstream>

#include "buffer_cache.h"
#include "checked_size.h"
#include "graph.h"
#include "ops.h"

namespace ng {

const char* dtype_name(Dtype dtype) {
  switch (dtype) {
    case float32:
      return "float32";
    case float64:
      return "float64";
    case int64:
      return "int64";
  }
  return "?";
}

std::size_t dtype_size(Dtype dtype) { return dtype == float32 ? 4 : 8; }

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t shape_numel(const Shape& shape, const char* op) {
  for (int64_t s : shape)
    if (s < 0) throw Error(std::string(op) + ": negative size in shape " + shape_str(shape));
  // The product is formed with every 0 counted as 1 (the extent, checked_size.h), checked at each step:
  // a shape that holds no element is still checked dimension by dimension, since its strides are those
  // products ([0, 2^62, 2^62] would overflow them, and then any transpose or cat of it).
  const int64_t reach = checked_size::extent(shape, op);
  return std::find(shape.begin(), shape.end(), 0) != shape.end() ? 0 : reach;
}

int64_t normalize_dim(const char* op, int64_t dim, int64_t ndim) {
  if (dim < -ndim || dim >= ndim)
    throw Error(std::string(op) + ": dim " + std::to_string(dim) + " is out of range for a tensor of " +
                std::to_string(ndim) + " dimensions (expected " + std::to_string(-ndim) + " to " +
                std::to_string(ndim - 1) + ")");
  return dim < 0 ? dim + ndim : dim;
}

// ---- storage --------------------------------------------------------------------------------------
namespace {
std::atomic<int64_t> g_live_storages{0};
std::atomic<uint64_t> g_storage_serial{0};
}  // namespace

Storage::Storage(std::size_t n)
    : data(buffer_cache::take(n)), bytes(n), serial(g_storage_serial.fetch_add(1, std::memory_order_relaxed)) {
  // nothrow: a refusal becomes an Error with the size (std::bad_alloc says nothing of it).
  if (!data) throw Error("cannot allocate " + std::to_string(n) + " bytes: out of memory");
  ++g_live_storages;
}
uint64_t next_storage_serial() { return g_storage_serial.load(std::memory_order_relaxed); }
Storage::~Storage() {
  buffer_cache::give_back(data, bytes);
  --g_live_storages;
}
int64_t live_storages() { return g_live_storages.load(); }

// ---- Tensor accessors -----------------------------------------------------------------------------
Tensor::Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

static const TensorImpl& checked(const std::shared_ptr<TensorImpl>& impl) {
  if (!impl) throw Error("tensor: this tensor is undefined (default-constructed); expected a tensor with values");
  return *impl;
}

const Shape& Tensor::shape() const { return checked(impl_).shape; }
int64_t Tensor::dim() const { return static_cast<int64_t>(shape().size()); }
int64_t Tensor::numel() const { return checked(impl_).numel; }
Dtype Tensor::dtype() const { return checked(impl_).dtype; }
int64_t Tensor::size(int64_t d) const { return shape()[normalize_dim("size", d, dim())]; }
const void* Tensor::raw_data() const { return checked(impl_).storage->data; }
void* Tensor::mutable_raw_data() {
  checked(impl_).storage->version.fetch_add(1, std::memory_order_relaxed);
  return impl_->storage->data;
}
uint64_t Tensor::version() const { return checked(impl_).storage->version.load(std::memory_order_relaxed); }

void check_dtype_access(const Tensor& t, Dtype wanted) {
  if (t.dtype() != wanted)
    throw Error(std::string("data<T>: tensor has dtype ") + dtype_name(t.dtype()) + ", but " + dtype_name(wanted) +
                " was asked for");
}

// Reads element i of any dtype as a double.
static double load(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case float32:
      return t.data<float>()[i];
    case float64:
      return t.data<double>()[i];
    case int64:
      return static_cast<double>(t.data<int64_t>()[i]);
  }
  return 0;
}

// Writes element i of a buffer of `dtype` from a double.
static void store_raw(void* data, Dtype dtype, int64_t i, double v) {
  switch (dtype) {
    case float32:
      static_cast<float*>(data)[i] = static_cast<float>(v);
      break;
    case float64:
      static_cast<double*>(data)[i] = v;
      break;
    case int64:
      static_cast<int64_t*>(data)[i] = static_cast<int64_t>(v);
      break;
  }
}
static void store(Tensor& t, int64_t i, double v) { store_raw(t.mutable_raw_data(), t.dtype(), i, v); }

double Tensor::item() const {
  if (numel() != 1)
    throw Error("item: tensor of shape " + shape_str(shape()) + " has " + std::to_string(numel()) +
                " elements; expected exactly one");
  return load(*this, 0);
}

static int64_t flat_index(const Tensor& t, std::initializer_list<int64_t> index) {
  if (static_cast<int64_t>(index.size()) != t.dim())
    throw Error("at: " + std::to_string(index.size()) + " indices for a tensor of shape " + shape_str(t.shape()));
  int64_t flat = 0, d = 0;
  for (int64_t i : index) {
    int64_t n = t.shape()[d];
    if (i < -n || i >= n)
      throw Error("at: index " + std::to_string(i) + " out of range for dim " + std::to_string(d) + " of shape " +
                  shape_str(t.shape()));
    flat = flat * n + (i < 0 ? i + n : i);
    ++d;
  }
  return flat;
}

double Tensor::at(std::initializer_list<int64_t> index) const { return load(*this, flat_index(*this, index)); }
void Tensor::set(std::initializer_list<int64_t> index, double value) { store(*this, flat_index(*this, index), value); }

std::vector<double> Tensor::to_vector() const {
  std::vector<double> v(static_cast<std::size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) v[i] = load(*this, i);
  return v;
}

// A copy of x in dtype `target`, recorded as `op` ("to" or "clone").
// d(copy(x))/dx = 1: the gradient is converted back to x's dtype.
static Tensor copy_as(const Tensor& x, Dtype target, const char* op) {
  Tensor out = empty(x.shape(), target);
  if (x.dtype() == target) {
    std::memcpy(out.mutable_raw_data(), x.raw_data(), x.numel() * dtype_size(target));
  } else {
    void* data = out.mutable_raw_data();
    for (int64_t i = 0; i < x.numel(); ++i) store_raw(data, target, i, load(x, i));
  }
  if (target != int64 && x.dtype() != int64 && any_requires_grad({&x})) {
    Dtype source = x.dtype();
    record(out, op, {&x}, [source](const Tensor& g, const Node&) { return std::vector<Tensor>{g.to(source)}; });
  }
  return out;
}

Tensor Tensor::to(Dtype target) const { return copy_as(*this, target, "to"); }
Tensor Tensor::clone() const { return copy_as(*this, dtype(), "clone"); }

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape();
  impl->dtype = dtype();
  impl->numel = numel();
  impl->storage = impl_->storage;
  return Tensor(std::move(impl));
}

bool Tensor::requires_grad() const { return checked(impl_).requires_grad; }
bool Tensor::is_leaf() const { return checked(impl_).grad_fn == nullptr; }
const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked(impl_).grad_fn; }

Tensor& Tensor::requires_grad_(bool enabled) {
  if (!is_leaf())
    throw Error("requires_grad_: only leaf tensors can change requires_grad; this one was made by '" +
                std::string(grad_fn()->op) + "' (use detach() to get a leaf)");
  if (enabled && dtype() == int64) throw Error("requires_grad_: int64 tensors cannot require gradients");
  impl_->requires_grad = enabled;
  return *this;
}

Tensor Tensor::grad() const { return checked(impl_).grad; }
void Tensor::set_grad(const Tensor& g) {
  checked(impl_);
  if (g.defined() && (g.shape() != shape() || g.dtype() != dtype()))
    throw Error("set_grad: gradient of shape " + shape_str(g.shape()) + " " + dtype_name(g.dtype()) +
                " for a tensor of shape " + shape_str(shape()) + " " + dtype_name(dtype()));
  impl_->grad = g;
}
void Tensor::zero_grad() {
  checked(impl_);
  impl_->grad = Tensor();
}

Tensor& Tensor::set_name(std::string n) {
  checked(impl_);
  impl_->name = std::move(n);
  return *this;
}
const std::string& Tensor::name() const { return checked(impl_).name; }

// ---- factories ------------------------------------------------------------------------------------
Tensor empty(const Shape& shape, Dtype dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->numel = shape_numel(shape, "empty");
  checked_size::check_fits(shape, dtype, "empty");
  try {
    impl->storage = std::make_shared<Storage>(static_cast<std::size_t>(impl->numel) * dtype_size(dtype));
  } catch (const Error& error) {  // said again with the shape that asked for it
    throw Error("empty: shape " + shape_str(shape) + " " + dtype_name(dtype) + ": " + error.what());
  }
  return Tensor(std::move(impl));
}

Tensor full(const Shape& shape, double value, Dtype dtype) {
  Tensor t = empty(shape, dtype);
  switch (dtype) {
    case float32:
      std::fill_n(t.mutable_data<float>(), t.numel(), static_cast<float>(value));
      break;
    case float64:
      std::fill_n(t.mutable_data<double>(), t.numel(), value);
      break;
    case int64:
      std::fill_n(t.mutable_data<int64_t>(), t.numel(), static_cast<int64_t>(value));
      break;
  }
  return t;
}
Tensor zeros(const Shape& shape, Dtype dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, Dtype dtype) { return full(shape, 1.0, dtype); }
Tensor scalar(double value, Dtype dtype) { return full({}, value, dtype); }

Tensor arange(int64_t n, Dtype dtype) { return arange(0.0, static_cast<double>(n), 1.0, dtype); }
Tensor arange(double start, double end, double step, Dtype dtype) {
  if (step == 0 || (end - start) * step < 0)
    throw Error("arange: step " + std::to_string(step) + " never gets from " + std::to_string(start) + " to " +
                std::to_string(end));
  auto n = static_cast<int64_t>(std::ceil((end - start) / step));
  Tensor t = empty({n}, dtype);
  void* data = t.mutable_raw_data();
  for (int64_t i = 0; i < n; ++i) store_raw(data, dtype, i, start + static_cast<double>(i) * step);
  return t;
}

Tensor tensor(const std::vector<double>& values, Dtype dtype) {
  return tensor(values, {static_cast<int64_t>(values.size())}, dtype);
}
Tensor tensor(const std::vector<double>& values, const Shape& shape, Dtype dtype) {
  Tensor t = empty(shape, dtype);
  if (static_cast<int64_t>(values.size()) != t.numel())
    throw Error("tensor: " + std::to_string(values.size()) + " values do not fill shape " + shape_str(shape) + " (" +
                std::to_string(t.numel()) + " elements)");
  void* data = t.mutable_raw_data();
  for (int64_t i = 0; i < t.numel(); ++i) store_raw(data, dtype, i, values[i]);
  return t;
}

// ---- random numbers -------------------------------------------------------------------------------
// xoshiro256** (Blackman and Vigna), seeded through splitmix64: small, fast, and the same on every
// platform, unlike std::normal_distribution.
namespace {
struct Xoshiro {
  uint64_t s[4];
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  void seed(uint64_t seed) {
    for (auto& word : s) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
  }
  uint64_t next() {
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
};
Xoshiro& generator() {
  static Xoshiro g = [] {
    Xoshiro x{};
    x.seed(0);
    return x;
  }();
  return g;
}
std::mutex g_generator_mutex;  // one generator for all threads, one thread at a time
}  // namespace

RandomDraws::RandomDraws() : lock_(g_generator_mutex) {}
uint64_t RandomDraws::u64() { return generator().next(); }
double RandomDraws::uniform() { return static_cast<double>(u64() >> 11) * 0x1.0p-53; }
// Box-Muller: if u1, u2 ~ U(0,1], then sqrt(-2 ln u1) cos(2 pi u2) ~ N(0, 1).
double RandomDraws::normal() {
  double u1 = 1.0 - uniform(), u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

void manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(g_generator_mutex);
  generator().seed(seed);
}

Tensor get_rng_state() {
  Tensor state = empty({4}, int64);
  int64_t* words = state.mutable_data<int64_t>();
  std::lock_guard<std::mutex> lock(g_generator_mutex);
  for (int w = 0; w < 4; ++w) words[w] = std::bit_cast<int64_t>(generator().s[w]);
  return state;
}

void set_rng_state(const Tensor& state) {
  if (!state.defined() || state.dtype() != int64 || state.shape() != Shape{4})
    throw Error("set_rng_state: got " +
                (state.defined() ? "a tensor of shape " + shape_str(state.shape()) + " " + dtype_name(state.dtype())
                                 : std::string("an undefined tensor")) +
                "; expected the int64 tensor of shape [4] that get_rng_state returns");
  const int64_t* words = state.data<int64_t>();
  if (std::all_of(words, words + 4, [](int64_t w) { return w == 0; }))
    throw Error(
        "set_rng_state: the state is all zeros, from which the generator would only draw 0; expected a "
        "state from get_rng_state");
  std::lock_guard<std::mutex> lock(g_generator_mutex);
  for (int w = 0; w < 4; ++w) generator().s[w] = std::bit_cast<uint64_t>(words[w]);
}

uint64_t random_u64() { return RandomDraws().u64(); }
double random_uniform() { return RandomDraws().uniform(); }
double random_normal() { return RandomDraws().normal(); }

// float32 draws 24 random bits, k / 2^24: a 53-bit double close to 1 would round up to 1.0f.
Tensor rand(const Shape& shape, Dtype dtype) {
  Tensor t = empty(shape, dtype);
  void* data = t.mutable_raw_data();
  RandomDraws draws;
  for (int64_t i = 0; i < t.numel(); ++i)
    store_raw(data, dtype, i, dtype == float32 ? static_cast<double>(draws.u64() >> 40) * 0x1.0p-24 : draws.uniform());
  return t;
}
Tensor randn(const Shape& shape, Dtype dtype) {
  Tensor t = empty(shape, dtype);
  void* data = t.mutable_raw_data();
  RandomDraws draws;
  for (int64_t i = 0; i < t.numel(); ++i) store_raw(data, dtype, i, draws.normal());
  return t;
}

// ---- printing -------------------------------------------------------------------------------------
// Like PyTorch: nested brackets, 4 decimals, rows aligned; past 1000 elements only the first and last
// three entries of each dimension are shown.
namespace {
// Whether a summary shows element `flat`: it must be among the first or last three along every
// dimension longer than 6.
bool shown_in_summary(const Shape& shape, int64_t flat) {
  for (std::size_t d = shape.size(); d-- > 0;) {
    const int64_t i = flat % shape[d];
    flat /= shape[d];
    if (shape[d] > 6 && i >= 3 && i < shape[d] - 3) return false;
  }
  return true;
}

void print_values(std::ostream& os, const Tensor& t, int64_t dim, int64_t offset, bool summarize, int width,
                  int indent) {
  const Shape& shape = t.shape();
  if (t.dim() == 0) {
    os << std::setw(width) << load(t, 0);
    return;
  }
  int64_t n = shape[dim], stride = 1;
  for (int64_t d = dim + 1; d < t.dim(); ++d) stride *= shape[d];
  os << '[';
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 6 && i == 3) {
      os << (dim + 1 == t.dim() ? "..., " : "...,\n" + std::string(indent + 1, ' '));
      i = n - 3;
    }
    if (dim + 1 == t.dim())
      os << std::setw(width) << load(t, offset + i);
    else
      print_values(os, t, dim + 1, offset + i * stride, summarize, width, indent + 1);
    if (i + 1 < n) os << (dim + 1 == t.dim() ? ", " : ",\n" + std::string(indent + 1, ' '));
  }
  os << ']';
}
}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  std::ostringstream values;
  values << std::fixed << std::setprecision(t.dtype() == int64 ? 0 : 4);
  const bool summarize = t.numel() > 1000;
  int width = 0;  // of the widest value shown, so that columns line up
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (summarize && !shown_in_summary(t.shape(), i)) continue;
    std::ostringstream one;
    one << std::fixed << std::setprecision(t.dtype() == int64 ? 0 : 4) << load(t, i);
    width = std::max(width, static_cast<int>(one.str().size()));
  }
  print_values(values, t, 0, 0, summarize, width, 7);
  os << "tensor(" << values.str() << ", shape=" << shape_str(t.shape()) << ", dtype=" << dtype_name(t.dtype());
  if (t.grad_fn())
    os << ", grad_fn=<" << t.grad_fn()->op << ">";
  else if (t.requires_grad())
    os << ", requires_grad=true";
  return os << ")";
}

}  // namespace ng
