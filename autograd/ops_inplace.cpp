// ops_inplace.cpp: the in-place ops (add_, mul_, zero_, fill_, copy_, clamp_) and clamp.
//
// An in-place op writes into the tensor's own buffer and bumps its version (tensor.h), so that any
// node that saved the tensor for its backward refuses to run with the new numbers (SavedTensor,
// graph.h). Where the graph is not involved (grad mode off, as in an optimizer step, or no tensor
// requiring grad) the write is a plain loop over the buffer.
//
// Where it is involved, PyTorch's rules apply:
//   - a leaf that requires grad cannot be written in place: the graph uses it as the variable itself;
//   - a tensor made by ops is rewritten as if by the out-of-place op, and its history is "rebased":
//     it takes the out-of-place result's grad_fn, so gradients flow through the in-place op.
// normgrad refuses the second case when the buffer is shared with another tensor (a reshape or view
// of it, or its op's saved output): PyTorch tracks views to rebase them too; normgrad does not.
#include <algorithm>
#include <cstring>

#include "graph.h"
#include "kernels.h"
#include "ops.h"

namespace ng {

namespace {

std::string described(const Tensor& t) { return shape_str(t.shape()) + " " + dtype_name(t.dtype()); }

// Whether the write must be recorded, after checking that it is allowed.
bool records(const char* op, const Tensor& self, std::initializer_list<const Tensor*> others) {
  if (!self.defined()) throw Error(std::string(op) + ": the tensor is undefined");
  if (!is_grad_enabled()) return false;
  bool any = self.requires_grad();
  for (const Tensor* t : others) any = any || (t->defined() && t->requires_grad());
  if (!any) return false;
  if (self.requires_grad() && self.is_leaf())
    throw Error(std::string(op) + ": a leaf tensor that requires grad (" + described(self) +
                (self.name().empty() ? "" : " '" + self.name() + "'") +
                ") cannot be written in place while grad mode is on; do it under NoGradGuard (as an optimizer "
                "step does), or use the out-of-place op");
  if (self.impl()->storage.use_count() > 1)
    throw Error(std::string(op) + ": the tensor " + described(self) +
                " is part of a graph and shares its buffer with another tensor (a reshape or view of it, or a copy "
                "saved for backward); normgrad cannot rebase that one's history. Use the out-of-place op");
  return true;
}

// The recorded path: self takes the numbers and the grad_fn of `result`, the out-of-place value.
Tensor& rebase(Tensor& self, const Tensor& result) {
  std::memcpy(self.mutable_raw_data(), result.raw_data(),
              static_cast<std::size_t>(self.numel()) * dtype_size(self.dtype()));
  self.impl()->grad_fn = result.grad_fn();
  self.impl()->requires_grad = result.requires_grad();
  return self;
}

void check_result_shape(const char* op, const Tensor& self, const Tensor& other) {
  if (broadcast_shapes(op, self.shape(), other.shape()) != self.shape())
    throw Error(std::string(op) + ": " + described(other) + " does not broadcast to the shape of the tensor written, " +
                described(self));
}

// self = f(self, other) elementwise, in place, other broadcast to self's shape.
template <class F> void binary_in_place(const char* op, Tensor& self, const Tensor& other, F f) {
  check_result_shape(op, self, other);
  if (self.dtype() != other.dtype())
    throw Error(std::string(op) + ": dtypes " + described(self) + " and " + described(other) +
                " differ; convert with .to()");
  dispatch_float(op, self.dtype(), [&]<class T>() { kernel::binary<T>(self, other, self, f); });
}

}  // namespace

// self += other
Tensor& Tensor::add_(const Tensor& other) {
  if (records("add_", *this, {&other})) {
    check_result_shape("add_", *this, other);
    return rebase(*this, add(*this, other));
  }
  binary_in_place("add_", *this, other, [](auto x, auto y) { return x + y; });
  return *this;
}
Tensor& Tensor::add_(double value) { return add_(scalar(value, dtype())); }

// self *= other   (the recorded path multiplies a clone of the old value: mul saves it for its backward)
Tensor& Tensor::mul_(const Tensor& other) {
  if (records("mul_", *this, {&other})) {
    check_result_shape("mul_", *this, other);
    return rebase(*this, mul(clone(), other));
  }
  binary_in_place("mul_", *this, other, [](auto x, auto y) { return x * y; });
  return *this;
}
Tensor& Tensor::mul_(double value) { return mul_(scalar(value, dtype())); }

// self = source (broadcast to self's shape, converted to self's dtype)
Tensor& Tensor::copy_(const Tensor& source) {
  check_result_shape("copy_", *this, source);
  if (records("copy_", *this, {&source})) return rebase(*this, broadcast_to(source.to(dtype()), shape()));
  const Tensor converted = source.dtype() == dtype() ? source : source.detach().to(dtype());
  const Tensor full_size = converted.shape() == shape() ? converted : broadcast_to(converted.detach(), shape());
  std::memmove(mutable_raw_data(), full_size.raw_data(), static_cast<std::size_t>(numel()) * dtype_size(dtype()));
  return *this;
}

// self = value everywhere (`op` names fill_ or zero_ in errors)
static Tensor& fill_named(const char* op, Tensor& self, double value) {
  if (records(op, self, {})) return rebase(self, full(self.shape(), value, self.dtype()));
  const Tensor filled = full(self.shape(), value, self.dtype());
  std::memcpy(self.mutable_raw_data(), filled.raw_data(),
              static_cast<std::size_t>(self.numel()) * dtype_size(self.dtype()));
  return self;
}
Tensor& Tensor::fill_(double value) { return fill_named("fill_", *this, value); }
Tensor& Tensor::zero_() { return fill_named("zero_", *this, 0.0); }

// out = min(max(x, lo), hi)      d/dx = 1 where lo <= x <= hi, else 0
Tensor clamp(const Tensor& x, double lo, double hi) {
  if (lo > hi) throw Error("clamp: min " + std::to_string(lo) + " is larger than max " + std::to_string(hi));
  Tensor out = empty(x.shape(), x.dtype());
  dispatch_float("clamp", x.dtype(), [&]<class T>() {
    const T l = static_cast<T>(lo), h = static_cast<T>(hi);
    kernel::unary<T>(x, out, [l, h](T v) { return std::min(std::max(v, l), h); });
  });
  if (any_requires_grad({&x}))
    record(out, "clamp", {&x}, [x = SavedTensor(x), lo, hi](const Tensor& g, const Node& n) {
      // The mask is a constant (no gradient flows into it), so this backward is linear in g.
      const Tensor xv = x.unpack(n);
      Tensor inside = empty(xv.shape(), xv.dtype());
      dispatch_float("clamp", xv.dtype(), [&]<class T>() {
        kernel::unary<T>(xv, inside, [lo, hi](T v) { return static_cast<T>(v >= lo && v <= hi); });
      });
      return std::vector<Tensor>{g * inside};
    });
  return out;
}

Tensor& Tensor::clamp_(double lo, double hi) {
  if (records("clamp_", *this, {})) return rebase(*this, clamp(clone(), lo, hi));
  if (lo > hi) throw Error("clamp_: min " + std::to_string(lo) + " is larger than max " + std::to_string(hi));
  dispatch_float("clamp_", dtype(), [&]<class T>() {
    const T l = static_cast<T>(lo), h = static_cast<T>(hi);
    kernel::unary<T>(*this, *this, [l, h](T v) { return std::min(std::max(v, l), h); });
  });
  return *this;
}

}  // namespace ng
