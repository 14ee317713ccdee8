// test_tensor.cpp: the Tensor itself (autograd/tensor.h): factories, element access, dtype
// conversion, detach and requires_grad, the random generator, printing and buffer bookkeeping.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <thread>

#include "autograd/buffer_cache.h"
#include "normgrad.h"

using doctest::Approx;
using doctest::Contains;
using Values = std::vector<double>;

// Checks that `expr` throws ng::Error whose message contains each of the strings that follow.
#define CHECK_ERROR_MENTIONS(expr, ...) \
  for (const char* expected_part : {__VA_ARGS__}) CHECK_THROWS_WITH_AS(expr, Contains(expected_part), ng::Error)

namespace {

std::string printed(const ng::Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

}  // namespace

// ---- factories ---------------------------------------------------------------------------------------

TEST_CASE("zeros, ones and full fill the whole shape, float32 by default") {
  ng::Tensor z = ng::zeros({2, 3});
  CHECK(z.shape() == ng::Shape{2, 3});
  CHECK(z.dim() == 2);
  CHECK(z.numel() == 6);
  CHECK(z.size(-1) == 3);
  CHECK(z.dtype() == ng::float32);
  CHECK(z.to_vector() == Values(6, 0.0));
  CHECK(ng::ones({4}, ng::float64).to_vector() == Values(4, 1.0));
  CHECK(ng::full({2, 2}, 2.5, ng::float64).to_vector() == Values(4, 2.5));
  CHECK(ng::full({3}, 7, ng::int64).to_vector() == Values{7, 7, 7});
}

TEST_CASE("a 0-dim scalar has one element and an empty shape") {
  ng::Tensor s = ng::scalar(3.5);
  CHECK(s.dim() == 0);
  CHECK(s.shape().empty());
  CHECK(s.numel() == 1);
  CHECK(s.item() == 3.5);
  CHECK(s.at({}) == 3.5);
}

TEST_CASE("arange counts from start below end by step") {
  CHECK(ng::arange(4).to_vector() == Values{0, 1, 2, 3});
  CHECK(ng::arange(4, ng::int64).dtype() == ng::int64);
  CHECK(ng::arange(1, 2, 0.25, ng::float64).to_vector() == Values{1, 1.25, 1.5, 1.75});
  CHECK(ng::arange(5, 0, -2, ng::float64).to_vector() == Values{5, 3, 1});
  CHECK(ng::arange(0).numel() == 0);
  CHECK_ERROR_MENTIONS(ng::arange(0, 5, -1), "arange", "step");
  CHECK_ERROR_MENTIONS(ng::arange(0, 5, 0), "arange", "step");
}

TEST_CASE("tensor() and from_vector take row-major values and refuse a count that does not fill the shape") {
  ng::Tensor t = ng::tensor({1, 2, 3, 4, 5, 6}, {2, 3}, ng::float64);
  CHECK(t.at({0, 2}) == 3);
  CHECK(t.at({1, 0}) == 4);
  CHECK(ng::tensor({1, 2, 3}).shape() == ng::Shape{3});
  ng::Tensor ints = ng::from_vector<int64_t>({5, -6}, {2});
  CHECK(ints.dtype() == ng::int64);
  CHECK(ints.to_vector() == Values{5, -6});
  CHECK(ng::from_vector<float>({1.5f}, {}).dtype() == ng::float32);
  CHECK_ERROR_MENTIONS(ng::tensor({1, 2, 3}, {2, 2}), "tensor", "3 values", "[2, 2]", "4");
  CHECK_ERROR_MENTIONS(ng::from_vector<double>({1, 2, 3, 4, 5}, {2, 2}), "from_vector", "5 values", "[2, 2]");
  CHECK_ERROR_MENTIONS(ng::zeros({2, -1}), "negative", "[2, -1]");
}

// ---- element access ----------------------------------------------------------------------------------

TEST_CASE("at and set read and write one element; negative indices count from the end") {
  ng::Tensor t = ng::zeros({2, 3}, ng::float64);
  t.set({1, 2}, 7);
  t.set({0, -3}, 4);
  CHECK(t.to_vector() == Values{4, 0, 0, 0, 0, 7});
  CHECK(t.at({-1, -1}) == 7);
  ng::Tensor f = ng::zeros({2});
  f.set({1}, 0.25);
  CHECK(f.at({1}) == 0.25);
  CHECK(f.data<float>()[1] == 0.25f);
}

TEST_CASE("at with a wrong number of indices or an index out of range throws an error naming the shape") {
  ng::Tensor t = ng::zeros({2, 3});
  CHECK_ERROR_MENTIONS(t.at({0}), "at", "1 indices", "[2, 3]");
  CHECK_ERROR_MENTIONS(t.at({0, 3}), "at", "index 3", "[2, 3]");
  CHECK_ERROR_MENTIONS(t.set({-3, 0}, 1), "at", "index -3");
}

TEST_CASE("item returns the one element, and refuses a tensor of several elements") {
  CHECK(ng::tensor({4.5}, {1, 1}).item() == 4.5);
  CHECK_ERROR_MENTIONS(ng::zeros({2, 3}).item(), "item", "[2, 3]", "6 elements");
  CHECK_ERROR_MENTIONS(ng::zeros({0}).item(), "item", "0 elements");
}

TEST_CASE("data<T> with the wrong type throws an error naming both dtypes") {
  ng::Tensor t = ng::zeros({2});
  CHECK_ERROR_MENTIONS(t.data<double>(), "float32", "float64");
}

TEST_CASE("an undefined tensor throws an error when used, instead of crashing") {
  ng::Tensor undefined;
  CHECK_FALSE(undefined.defined());
  CHECK_ERROR_MENTIONS(undefined.shape(), "undefined");
  CHECK_ERROR_MENTIONS(undefined.zero_grad(), "undefined");
  CHECK_ERROR_MENTIONS(undefined.set_grad(ng::Tensor()), "undefined");
  CHECK(printed(undefined) == "tensor(undefined)");
}

// ---- dtype, copies, detach ---------------------------------------------------------------------------

TEST_CASE("to(dtype) converts the values and a round trip through float32 keeps representable values") {
  ng::Tensor x = ng::tensor({0.5, -2.25, 1e6}, ng::float64);
  ng::Tensor f = x.to(ng::float32);
  CHECK(f.dtype() == ng::float32);
  CHECK(f.to(ng::float64).to_vector() == Values{0.5, -2.25, 1e6});
  // 0.1 is not a float: the round trip gives the nearest float, 0.100000001490116...
  CHECK(ng::tensor({0.1}, ng::float64).to(ng::float32).to(ng::float64).item() == static_cast<double>(0.1f));
  // to int64 truncates toward zero, as a C++ cast
  CHECK(ng::tensor({2.7, -2.7}).to(ng::int64).to_vector() == Values{2, -2});
  CHECK(ng::arange(3, ng::int64).to(ng::float32).to_vector() == Values{0, 1, 2});
}

TEST_CASE("clone and to copy the numbers: changing the copy leaves the original alone") {
  ng::Tensor x = ng::tensor({1, 2});
  ng::Tensor c = x.clone();
  ng::Tensor d = x.to(ng::float32);
  c.set({0}, 10);
  d.set({1}, 20);
  CHECK(x.to_vector() == Values{1, 2});
}

TEST_CASE("detach shares the numbers but has no grad_fn and does not require grad") {
  ng::Tensor x = ng::tensor({1, 2}, ng::float64).requires_grad_();
  ng::Tensor y = x * 2.0;
  ng::Tensor d = y.detach();
  CHECK(d.grad_fn() == nullptr);
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  d.set({0}, 100);
  CHECK(y.at({0}) == 100);  // same buffer
  // No gradient flows through a detached tensor: d(x * detach(x))/dx = detach(x)
  (x * x.detach()).sum().backward();
  CHECK(x.grad().to_vector() == Values{1, 2});
}

TEST_CASE("requires_grad_ works on leaves and throws on a result of an op, naming the op") {
  ng::Tensor x = ng::ones({2});
  CHECK_FALSE(x.requires_grad());
  CHECK(x.is_leaf());
  x.requires_grad_();
  CHECK(x.requires_grad());
  ng::Tensor y = x.exp();
  CHECK_FALSE(y.is_leaf());
  CHECK_ERROR_MENTIONS(y.requires_grad_(false), "requires_grad_", "leaf", "exp");
  x.requires_grad_(false);
  CHECK_FALSE((x * 2.0).requires_grad());
  CHECK_ERROR_MENTIONS(ng::arange(2, ng::int64).requires_grad_(), "requires_grad_", "int64");
}

TEST_CASE("set_grad refuses a gradient of another shape or dtype") {
  ng::Tensor x = ng::zeros({2, 3});
  x.set_grad(ng::ones({2, 3}));
  CHECK(x.grad().to_vector() == Values(6, 1.0));
  CHECK_ERROR_MENTIONS(x.set_grad(ng::ones({3, 2})), "set_grad", "[3, 2]", "[2, 3]");
  CHECK_ERROR_MENTIONS(x.set_grad(ng::ones({2, 3}, ng::float64)), "set_grad", "float64", "float32");
}

// ---- random numbers ----------------------------------------------------------------------------------

TEST_CASE("manual_seed makes rand and randn reproducible, and different seeds give different numbers") {
  ng::manual_seed(42);
  const Values first = ng::rand({100}).to_vector();
  const Values first_normal = ng::randn({10}, ng::float64).to_vector();
  ng::manual_seed(42);
  CHECK(ng::rand({100}).to_vector() == first);
  CHECK(ng::randn({10}, ng::float64).to_vector() == first_normal);
  ng::manual_seed(43);
  CHECK(ng::rand({100}).to_vector() != first);
}

TEST_CASE("rand stays in [0, 1) and covers it evenly") {
  ng::manual_seed(3);
  const Values u = ng::rand({100'000}, ng::float64).to_vector();
  double total = 0;
  int64_t low_half = 0, outside = 0;
  for (double v : u) {
    outside += v < 0 || v >= 1;
    total += v;
    low_half += v < 0.5;
  }
  CHECK(outside == 0);
  // mean of U(0,1) is 1/2 with standard error sqrt(1/12 / 1e5) = 0.0009: 0.005 is over 5 standard errors
  CHECK(total / 1e5 == Approx(0.5).epsilon(0.01));
  CHECK(std::abs(static_cast<double>(low_half) - 50'000) < 1'000);
}

TEST_CASE("float32 rand never rounds up to 1.0") {
  // With this seed the first 53-bit double is 0.9999999755, which rounds to 1.0f as a float.
  ng::manual_seed(39061301);
  CHECK(ng::rand({1}).item() < 1.0);
}

TEST_CASE("randn of 100k samples has mean near 0 and standard deviation near 1") {
  ng::manual_seed(5);
  const Values z = ng::randn({100'000}, ng::float64).to_vector();
  double sum = 0, sum_sq = 0;
  for (double v : z) {
    sum += v;
    sum_sq += v * v;
  }
  const double mean = sum / 1e5;
  const double std = std::sqrt(sum_sq / 1e5 - mean * mean);
  // standard errors: mean 1/sqrt(1e5) = 0.0032, std about 0.0022
  CHECK(std::abs(mean) < 0.015);
  CHECK(std::abs(std - 1) < 0.015);
}

// ---- printing ----------------------------------------------------------------------------------------

TEST_CASE("printing shows the values, the shape and the dtype") {
  const std::string s = printed(ng::tensor({1, 2.5, -3, 4}, {2, 2}));
  CHECK_MESSAGE(s.find("1.0000") != std::string::npos, s);
  CHECK_MESSAGE(s.find("2.5000") != std::string::npos, s);
  CHECK_MESSAGE(s.find("-3.0000") != std::string::npos, s);
  CHECK_MESSAGE(s.find("shape=[2, 2]") != std::string::npos, s);
  CHECK_MESSAGE(s.find("dtype=float32") != std::string::npos, s);
  CHECK_MESSAGE(s.find("[[") != std::string::npos, s);
  CHECK_MESSAGE(s.find("requires_grad") == std::string::npos, s);
}

TEST_CASE("printing a float32 value shows it rounded to 4 decimals, not its binary expansion") {
  // 0.1f is 0.100000001490116...; 2/3 as float is 0.666666686534881...
  const std::string s = printed(ng::tensor({0.1, 2.0 / 3.0}));
  CHECK_MESSAGE(s.find("0.1000") != std::string::npos, s);
  CHECK_MESSAGE(s.find("0.6667") != std::string::npos, s);
  CHECK_MESSAGE(s.find("0.10000") == std::string::npos, s);
}

TEST_CASE("printing shows requires_grad=true on a leaf and grad_fn=<op> on an op's result") {
  ng::Tensor x = ng::tensor({1, 2}, ng::float64).requires_grad_();
  const std::string leaf = printed(x);
  CHECK_MESSAGE(leaf.find("requires_grad=true") != std::string::npos, leaf);
  CHECK_MESSAGE(leaf.find("dtype=float64") != std::string::npos, leaf);
  const std::string product = printed(x * x);
  CHECK_MESSAGE(product.find("grad_fn=<mul>") != std::string::npos, product);
  const std::string mm = printed(ng::matmul(x, x));
  CHECK_MESSAGE(mm.find("grad_fn=<") != std::string::npos, mm);
  CHECK_MESSAGE(mm.find("shape=[]") != std::string::npos, mm);
  const std::string copy = printed(x.clone());
  CHECK_MESSAGE(copy.find("grad_fn=<clone>") != std::string::npos, copy);
}

TEST_CASE("printing int64 shows whole numbers, and a large tensor is summarized") {
  const std::string ints = printed(ng::arange(3, ng::int64));
  CHECK_MESSAGE(ints.find("[0, 1, 2]") != std::string::npos, ints);
  CHECK_MESSAGE(ints.find("dtype=int64") != std::string::npos, ints);
  const std::string big = printed(ng::arange(2000, ng::int64));
  CHECK_MESSAGE(big.find("...") != std::string::npos, big);
  CHECK_MESSAGE(big.find("1999") != std::string::npos, big);
  CHECK_MESSAGE(big.find("1000") == std::string::npos, big);
  CHECK(big.size() < 200);
}

TEST_CASE("a summarized tensor pads every shown value to the widest one shown, so that columns line up") {
  // The widest values shown are the last ones, 1999.0000: 9 characters, so 0.0000 gets 3 spaces.
  const std::string row = printed(ng::arange(2000));
  CHECK_MESSAGE(row.find("[   0.0000,    1.0000,") != std::string::npos, row);
  CHECK_MESSAGE(row.find(", 1999.0000]") != std::string::npos, row);
  const std::string matrix = printed(ng::arange(2000).reshape({20, 100}));
  CHECK_MESSAGE(matrix.find("[[   0.0000,") != std::string::npos, matrix);
  CHECK_MESSAGE(matrix.find(" 1999.0000]]") != std::string::npos, matrix);
}

// ---- memory ------------------------------------------------------------------------------------------

TEST_CASE("live_storages counts buffers: views share one, and all are freed when the tensors go") {
  const int64_t before = ng::live_storages();
  {
    ng::Tensor x = ng::zeros({2, 3});
    CHECK(ng::live_storages() == before + 1);
    ng::Tensor view = x.reshape({6});
    ng::Tensor detached = x.detach();
    CHECK(ng::live_storages() == before + 1);
    ng::Tensor copy = x.clone();
    CHECK(ng::live_storages() == before + 2);
  }
  CHECK(ng::live_storages() == before);
}

// Reported as skipped under AddressSanitizer, whose build keeps no buffer (so that it sees every free).
TEST_CASE("a freed large buffer is kept and handed to the next tensor of its size; small ones are not kept there" *
          doctest::skip(!ng::buffer_cache::keeps_buffers())) {
  namespace cache = ng::buffer_cache;
  cache::clear();
  const void* first_data = nullptr;
  {
    ng::Tensor big = ng::full({1000, 100}, 2.0f);  // 400,000 bytes
    first_data = big.data<float>();
  }
  CHECK(cache::cached_bytes() == (400000 + 4095) / 4096 * 4096);  // whole 4 KB pages
  const int64_t reused_before = cache::reused();
  ng::Tensor again = ng::zeros({100000});  // the same bytes, another shape
  CHECK(again.data<float>() == first_data);
  CHECK(cache::reused() == reused_before + 1);
  CHECK(cache::cached_bytes() == 0);
  for (double v : again.to_vector()) REQUIRE(v == 0.0);  // zeros() still writes every element
  {
    ng::Tensor small = ng::zeros({100});  // 400 bytes: the thread's small lists' business (next test)
  }
  CHECK(cache::cached_bytes() == 0);
}

TEST_CASE("a freed small buffer goes to its thread's list of its size class and comes back from there" *
          doctest::skip(!ng::buffer_cache::keeps_buffers())) {
  namespace cache = ng::buffer_cache;
  cache::clear();
  REQUIRE(cache::small_cached_bytes() == 0);
  const void* first_data = nullptr;
  {
    ng::Tensor small = ng::full({100}, 3.0f);  // 400 bytes: the class of 512
    first_data = small.data<float>();
    CHECK(reinterpret_cast<std::uintptr_t>(first_data) % 64 == 0);
  }
  CHECK(cache::small_cached_bytes() == 512);
  const int64_t reused_before = cache::small_reused();
  {
    ng::Tensor other_class = ng::zeros({200});  // 800 bytes: the class of 1024, which is empty
    CHECK(other_class.data<float>() != first_data);
    CHECK(cache::small_reused() == reused_before);
  }
  CHECK(cache::small_cached_bytes() == 512 + 1024);
  ng::Tensor again = ng::zeros({3, 40});  // 480 bytes: the class of 512 again, so the first buffer
  CHECK(again.data<float>() == first_data);
  CHECK(cache::small_reused() == reused_before + 1);
  CHECK(cache::small_cached_bytes() == 1024);
  for (double v : again.to_vector()) REQUIRE(v == 0.0);  // zeros() still writes every element over the 3s

  // At most kSmallPerClass of a class are kept; the rest go back to the system.
  cache::clear();
  {
    std::vector<ng::Tensor> many;
    for (int i = 0; i < cache::kSmallPerClass + 5; ++i) many.push_back(ng::empty({16}));  // 64 bytes each
  }
  CHECK(cache::small_cached_bytes() == 64 * cache::kSmallPerClass);

  // A buffer freed on another thread goes to that thread's lists, which are freed when it ends; this
  // thread's lists do not change.
  cache::clear();
  ng::Tensor made_here = ng::ones({10});
  std::size_t other_thread_bytes = 0;
  std::thread([&] {
    made_here = ng::Tensor();  // freed on this thread
    other_thread_bytes = cache::small_cached_bytes();
  }).join();
  CHECK(other_thread_bytes == 64);
  CHECK(cache::small_cached_bytes() == 0);
  cache::clear();
}

TEST_CASE("a small tensor freed at its thread's exit, after the thread's small lists are gone, is freed all the same") {
  const int64_t before = ng::live_storages();
  std::thread([] {
    // Made before the thread's small lists (its first small tensor makes them), so destroyed after them:
    // the tensor in it is freed when its thread has no lists left.
    thread_local std::vector<ng::Tensor> held;
    held.reserve(1);
    held.push_back(ng::ones({10}));
  }).join();
  CHECK(ng::live_storages() == before);
}

TEST_CASE("the buffer cache keeps at most kMaxBytes, then makes room for the sizes in use; clear() empties it" *
          doctest::skip(!ng::buffer_cache::keeps_buffers())) {
  namespace cache = ng::buffer_cache;
  cache::clear();
  const std::size_t each_bytes = std::size_t{4} << 20;  // tensors of 4 MB of float32
  const std::size_t fit = cache::kMaxBytes / each_bytes;
  {
    std::vector<ng::Tensor> many;
    for (std::size_t i = 0; i < fit + 4; ++i) many.push_back(ng::empty({static_cast<int64_t>(each_bytes / 4)}));
  }
  // The first `fit` filled the cache; the next one found it full, emptied it and was kept, and so were the
  // three after it.
  CHECK(cache::cached_bytes() == 4 * each_bytes);
  {
    std::vector<ng::Tensor> again;  // four of that size come from the cache, a fifth from the system
    const int64_t reused_before = cache::reused();
    for (int i = 0; i < 5; ++i) again.push_back(ng::empty({static_cast<int64_t>(each_bytes / 4)}));
    CHECK(cache::reused() == reused_before + 4);
    CHECK(cache::cached_bytes() == 0);
  }
  CHECK(cache::cached_bytes() == 5 * each_bytes);
  cache::clear();
  CHECK(cache::cached_bytes() == 0);
}
