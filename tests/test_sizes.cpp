// test_sizes.cpp: sizes computed from an op's arguments. Every argument here is one a user
// can pass: paddings, dilations, kernels and groups near 2^63, empty batches of huge images, a batch
// size of INT64_MAX. Each must give PyTorch's result or an Error naming the op and the argument, never
// a wrapped size (heap overflow, division by zero), a hang or std::bad_alloc.
#include <doctest/doctest.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "normgrad.h"
#include "test_helpers.h"

using namespace ng;

// Under AddressSanitizer an allocation too large for it aborts the program unless it may return null;
// normgrad allocates with nothrow new, so null is what it turns into an Error.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }

namespace {

constexpr int64_t two_to(int n) { return int64_t{1} << n; }

// Whether `message` shows a negative number ("-4", not the "k - 1" of a formula).
bool has_negative_number(const std::string& message) {
  for (std::size_t i = 0; i + 1 < message.size(); ++i)
    if (message[i] == '-' && message[i + 1] >= '0' && message[i + 1] <= '9') return true;
  return false;
}

// Seconds taken by f().
double seconds_of(auto&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_SUITE("sizes from arguments") {
  TEST_CASE("pad: paddings whose sum with the size overflows are an Error naming pad and the padding") {
    CHECK_THROWS_WITH_AS(pad(ones({2, 3}), {INT64_MAX, INT64_MAX}),
                         doctest::Contains("pad: padding {9223372036854775807, 9223372036854775807} for input [2, 3]"),
                         Error);
    CHECK_THROWS_WITH_AS(pad(ones({2, 3}), {INT64_MAX, INT64_MAX}), doctest::Contains("overflows"), Error);
    // Under 2^63 but over the per-tensor limit, also for an empty input.
    CHECK_THROWS_WITH_AS(pad(ones({2, 3}), {two_to(61), two_to(61)}), doctest::Contains("pad: padding"), Error);
    CHECK_THROWS_WITH_AS(pad(zeros({0, 3}), {two_to(61), two_to(61)}), doctest::Contains("pad: padding"), Error);
    CHECK(pad(ones({2, 3}), {1, 2}).shape() == Shape{2, 6});  // the ordinary case still works
  }

  TEST_CASE("conv2d of an empty batch: PyTorch's empty result, or an Error for an output size past the limit") {
    // (2 + 2*(2^31 - 1) - 1)/1 + 1 = 2^32 positions a side: 2^64 per image, which wrapped to 0 and was divided by.
    CHECK_THROWS_WITH_AS(conv2d(zeros({0, 1, 2, 2}), ones({1, 1, 1, 1}), {}, {1, 1}, {2147483647, 2147483647}),
                         doctest::Contains("conv2d: input [0, 1, 2, 2], weight [1, 1, 1, 1]"), Error);
    CHECK_THROWS_WITH_AS(conv2d(zeros({0, 1, 2, 2}), ones({1, 1, 1, 1}), {}, {1, 1}, {2147483647, 2147483647}),
                         doctest::Contains("padding {2147483647, 2147483647}"), Error);
    // A legal empty output: no column buffer for one image of 65536 x 65536 (9 * 2^32 floats).
    Tensor x = zeros({0, 1, two_to(16), two_to(16)}).requires_grad_();
    Tensor w = ones({2, 1, 3, 3}).requires_grad_();
    Tensor out = conv2d(x, w, ones({2}), {1, 1}, {0, 0});
    CHECK(out.shape() == Shape{0, 2, two_to(16) - 2, two_to(16) - 2});
    out.sum().backward();
    CHECK(x.grad().shape() == x.shape());
    CHECK(w.grad().shape() == w.shape());
    CHECK(w.grad().abs().sum().item() == 0.0);
    CHECK(conv2d(zeros({0, 1, 2, 2}), ones({1, 1, 1, 1}), {}, {1, 1}, {1000, 1000}).shape() == Shape{0, 1, 2002, 2002});
  }

  TEST_CASE("conv2d: a dilation or padding near 2^62 is an Error naming it, with no negative size in the message") {
    const std::string dilated = error_message([] {
      conv2d(ones({1, 1, 4, 4}), ones({1, 1, 3, 3}), {}, {1, 1}, {0, 0}, {two_to(62), 1});
    });
    CHECK(dilated.find("dilation {4611686018427387904, 1}") != std::string::npos);
    CHECK(dilated.find("overflows") != std::string::npos);
    CHECK_FALSE(has_negative_number(dilated));
    const std::string padded = error_message([] {
      conv2d(ones({1, 1, 4, 4}), ones({1, 1, 3, 3}), {}, {1, 1}, {two_to(62), 0});
    });
    CHECK(padded.find("padding {4611686018427387904, 0}") != std::string::npos);
    CHECK_FALSE(has_negative_number(padded));
  }

  TEST_CASE("conv2d and max_pool2d: a padding and stride whose sum passes 2^63 are an Error (UBSan found the sum)") {
    CHECK_THROWS_WITH_AS(conv2d(ones({1, 1, 1, 1}), ones({1, 1, 1, 1}), {}, {1, INT64_MAX}, {0, two_to(61)}),
                         doctest::Contains("padded size + stride"), Error);
    CHECK_THROWS_WITH_AS(max_pool2d(ones({1, 1, 1, 1}), {1, two_to(62)}, {1, INT64_MAX}, {0, two_to(61)}),
                         doctest::Contains("padded size + stride"), Error);
  }

  TEST_CASE("conv2d: groups beyond the output channels is an Error, not 2^40 empty loops") {
    CHECK_THROWS_WITH_AS(conv2d(zeros({1, 0, 1, 1}), zeros({0, 0, 1, 1}), {}, {1, 1}, {0, 0}, {1, 1}, two_to(40)),
                         doctest::Contains("expected at least groups output channels"), Error);
    CHECK_THROWS_WITH_AS(conv2d(zeros({1, 0, 1, 1}), zeros({2, 0, 1, 1}), {}, {1, 1}, {0, 0}, {1, 1}, two_to(40)),
                         doctest::Contains("groups 1099511627776"), Error);
    // With channels to spare, 0 input channels is a convolution whose output is the bias.
    CHECK(conv2d(zeros({1, 0, 1, 1}), zeros({2, 0, 1, 1}), tensor({3.0, 4.0}), {1, 1}, {0, 0}, {1, 1}, 2).to_vector() ==
          std::vector<double>{3.0, 4.0});
  }

  TEST_CASE("avg_pool2d: a divisor kH*kW that overflows is an Error, not a mean of 1 with gradient 4") {
    Tensor x = ones({1, 1, 1, 1}).requires_grad_();
    CHECK_THROWS_WITH_AS(avg_pool2d(x, {two_to(32), two_to(32)}, {1, 1}, {two_to(31), two_to(31)}),
                         doctest::Contains("avg_pool2d: input [1, 1, 1, 1], kernel {4294967296, 4294967296}"), Error);
    CHECK_THROWS_WITH_AS(avg_pool2d(x, {two_to(32), two_to(32)}, {1, 1}, {two_to(31), two_to(31)}),
                         doctest::Contains("divisor kH * kW"), Error);
  }

  TEST_CASE("max_pool2d visits only the kernel rows that reach the image: a 2^34-row kernel takes no time") {
    Tensor x = ones({1, 1, 1, 1}).requires_grad_();
    Tensor out;
    const double taken = seconds_of([&] { out = max_pool2d(x, {two_to(34), 1}, {1, 1}, {two_to(33), 0}); });
    CHECK(taken < 5.0);
    // (1 + 2*2^33 - 2^34)/1 + 1 = 2 windows down, both holding the one element.
    CHECK(out.shape() == Shape{1, 1, 2, 1});
    CHECK(out.sum().item() == 2.0);
    out.sum().backward();
    CHECK(x.grad().item() == 2.0);
    CHECK_THROWS_WITH_AS(max_pool2d(x, {two_to(34) + 4, 1}, {1, 1}, {two_to(33), 0}),
                         doctest::Contains("the kernel is larger than the padded input"), Error);
  }

  TEST_CASE("pooling an empty batch lists no windows; an output past the per-tensor limit is an Error") {
    // 2^30 rows: each window table would be 8 GiB.
    Tensor tall = zeros({0, 1, two_to(30), 1});
    CHECK(avg_pool2d(tall, {1, 1}).shape() == Shape{0, 1, two_to(30), 1});
    CHECK(max_pool2d(tall, {1, 1}).shape() == Shape{0, 1, two_to(30), 1});
    CHECK(adaptive_avg_pool2d(zeros({0, 1, 4, 4}), {two_to(40), 1}).shape() == Shape{0, 1, two_to(40), 1});
    CHECK_THROWS_WITH_AS(adaptive_avg_pool2d(ones({1, 1, 1, 1}), {two_to(40), two_to(40)}),
                         doctest::Contains("adaptive_avg_pool2d: input [1, 1, 1, 1], output size"), Error);
    CHECK_THROWS_WITH_AS(adaptive_avg_pool2d(zeros({0, 1, 1, 1}), {two_to(24), two_to(24)}),
                         doctest::Contains("exceeds the limit of 2^48 bytes"), Error);
    // Gradients flow through the empty results too.
    Tensor x = zeros({0, 2, 8, 8}).requires_grad_();
    (avg_pool2d(x, {2, 2}).sum() + adaptive_avg_pool2d(x, {3, 3}).sum()).backward();
    CHECK(x.grad().shape() == x.shape());
  }

  TEST_CASE("a shape with no element is still checked dimension by dimension") {
    CHECK_THROWS_WITH_AS(zeros({0, two_to(62), two_to(62)}), doctest::Contains("too many elements"), Error);
    CHECK_THROWS_WITH_AS(zeros({0, two_to(47)}), doctest::Contains("exceeds the limit of 2^48 bytes"), Error);
    CHECK_THROWS_WITH_AS(reshape(zeros({0}), {0, two_to(62), two_to(62)}), doctest::Contains("reshape"), Error);
    CHECK_THROWS_WITH_AS(reshape(zeros({0}), {0, two_to(47)}), doctest::Contains("reshape"), Error);
    // Under the limit, transpose and cat of empty tensors work.
    Tensor wide = zeros({0, two_to(20), two_to(20)});
    CHECK(transpose(wide, 0, 2).shape() == Shape{two_to(20), two_to(20), 0});
    CHECK(cat({wide, wide}, 0).shape() == wide.shape());
    // Sizes whose sum passes the limit, then 2^63: an Error naming cat.
    Tensor tall = zeros({two_to(45), 0});
    CHECK_THROWS_WITH_AS(cat({tall, tall, tall, tall}, 0), doctest::Contains("cat: 4 tensors along dim 0"), Error);
    CHECK_THROWS_WITH_AS(cat(std::vector<Tensor>(two_to(18), tall), 0), doctest::Contains("overflows"), Error);
  }
}

TEST_CASE("multinomial of zero rows returns an empty result without allocating a row of 2^39 weights") {
  ng::Tensor probs = ng::zeros({0, int64_t{1} << 39}, ng::float64);
  ng::Tensor drawn = ng::multinomial(probs, 3, true);
  CHECK(drawn.shape() == ng::Shape{0, 3});
}
