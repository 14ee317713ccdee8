// test_nn.cpp: nn::Module (names, parameters, zero_grad, train/eval), the layers (Linear, Flatten, the
// activations, Dropout, Sequential) and the losses. (The initializers: test_init.cpp.)
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include "normgrad.h"

namespace {

using ng::Shape;
using ng::Tensor;
namespace nn = ng::nn;

// The BN paper's layer pattern: Linear without bias (BN's beta replaces it), BatchNorm1d, a nonlinearity.
std::shared_ptr<nn::Sequential> small_mlp() {
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(4, 3, false), std::make_shared<nn::BatchNorm1d>(3), std::make_shared<nn::Sigmoid>(),
      std::make_shared<nn::Dropout>(0.5), std::make_shared<nn::Linear>(3, 2)});
}

// A module with a child registered under a name, to see names nest two levels deep.
class Net : public nn::Module {
 public:
  Net() : layers(register_module("layers", small_mlp())) {}
  Tensor forward(const Tensor& x) override { return layers->forward(x); }
  std::shared_ptr<nn::Sequential> layers;
};

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<std::string> names;
  for (const auto& entry : named) names.push_back(entry.first);
  return names;
}

}  // namespace

TEST_CASE("Module names parameters and buffers hierarchically, in registration order") {
  Net net;
  CHECK(names_of(net.named_parameters()) == std::vector<std::string>{"layers.0.weight", "layers.1.weight",
                                                                     "layers.1.bias", "layers.4.weight",
                                                                     "layers.4.bias"});
  CHECK(names_of(net.named_buffers()) ==
        std::vector<std::string>{"layers.1.running_mean", "layers.1.running_var", "layers.1.num_batches_tracked"});
  CHECK(net.parameters().size() == 5);
  CHECK(net.buffers().size() == 3);
  int64_t count = 0;
  for (const Tensor& p : net.parameters()) count += p.numel();
  CHECK(count == 4 * 3 + 3 + 3 + 3 * 2 + 2);
  // The tensors carry their full names (to_dot shows them) and parameters require grad, buffers not.
  for (const auto& [name, p] : net.named_parameters()) {
    CHECK(p.name() == name);
    CHECK(p.requires_grad());
  }
  for (const auto& [name, b] : net.named_buffers()) {
    CHECK(b.name() == name);
    CHECK(!b.requires_grad());
  }
}

TEST_CASE("parameters() returns handles to the module's own tensors") {
  nn::Linear linear(2, 2);
  Tensor w = linear.parameters()[0];
  w.mutable_data<float>()[0] = 42;
  CHECK(linear.weight.at({0, 0}) == 42);
}

TEST_CASE("Module refuses duplicate and dotted names") {
  struct Bad : nn::Module {
    explicit Bad(int which) {
      register_parameter("w", ng::ones({1}));
      if (which == 0) register_parameter("w", ng::ones({1}));
      if (which == 1) register_buffer("a.b", ng::ones({1}));
      if (which == 2) register_module("", std::make_shared<nn::ReLU>());
    }
    Tensor forward(const Tensor& x) override { return x; }
  };
  CHECK_THROWS_WITH_AS(Bad(0), doctest::Contains("'w' is already registered"), ng::Error);
  CHECK_THROWS_WITH_AS(Bad(1), doctest::Contains("'a.b' is not allowed"), ng::Error);
  CHECK_THROWS_WITH_AS(Bad(2), doctest::Contains("'' is not allowed"), ng::Error);
}

TEST_CASE("zero_grad drops the gradients of every parameter in the tree") {
  Net net;
  Tensor x = ng::randn({5, 4});
  net(x).sum().backward();
  for (const Tensor& p : net.parameters()) CHECK(p.grad().defined());
  net.zero_grad();
  for (const Tensor& p : net.parameters()) CHECK(!p.grad().defined());
}

TEST_CASE("train() and eval() reach every child") {
  Net net;
  CHECK(net.is_training());
  CHECK(net.layers->operator[](1).is_training());
  net.eval();
  CHECK(!net.is_training());
  for (int64_t i = 0; i < net.layers->size(); ++i) CHECK(!(*net.layers)[i].is_training());
  net.train();
  CHECK((*net.layers)[3].is_training());
}

TEST_CASE("switching to eval changes BatchNorm's behaviour: running statistics instead of batch statistics") {
  nn::BatchNorm1d bn(2);
  Tensor x = ng::tensor({0, 10, 2, 30}, {2, 2});
  Tensor y_train = bn(x);  // batch statistics: each column becomes -1, +1 (up to eps)
  CHECK(y_train.at({0, 0}) == doctest::Approx(-1).epsilon(1e-4));
  CHECK(y_train.at({1, 1}) == doctest::Approx(1).epsilon(1e-4));
  bn.eval();
  // running_mean = 0.1 * [1, 20] = [0.1, 2], running_var = 0.9 + 0.1 * [2, 200] = [1.1, 20.9]
  Tensor y_eval = bn(x);
  CHECK(y_eval.at({0, 0}) == doctest::Approx((0 - 0.1) / std::sqrt(1.1 + 1e-5)).epsilon(1e-5));
  CHECK(y_eval.at({1, 1}) == doctest::Approx((30 - 2) / std::sqrt(20.9 + 1e-5)).epsilon(1e-5));
  bn.train();
  CHECK(bn(x).at({0, 0}) == doctest::Approx(-1).epsilon(1e-4));
}

TEST_CASE("Dropout zeroes about p of the elements and scales the rest by 1/(1-p) in training; eval is the identity") {
  ng::manual_seed(8);
  nn::Dropout dropout(0.25);
  Tensor x = ng::ones({100, 100}).requires_grad_();
  Tensor y = dropout(x);
  int64_t zeros = 0, wrongly_scaled = 0;
  for (double v : y.to_vector()) {
    if (v == 0)
      ++zeros;
    else if (std::abs(v - 1 / 0.75) > 1e-6)
      ++wrongly_scaled;
  }
  CHECK(wrongly_scaled == 0);
  CHECK(std::abs(zeros / 10000.0 - 0.25) < 0.02);  // 4.6 standard deviations of the binomial
  // The gradient passes exactly where the input did, with the same scale.
  y.sum().backward();
  CHECK(x.grad().to_vector() == y.detach().to_vector());

  dropout.eval();
  Tensor x2 = ng::randn({3, 4});
  CHECK(dropout(x2).to_vector() == x2.to_vector());
  CHECK_THROWS_AS(nn::Dropout(1.5), ng::Error);
  nn::Dropout all(1.0);
  CHECK(all(ng::ones({2, 2})).sum().item() == 0);
}

TEST_CASE("Linear computes x W^T + b, starts uniform in +-1/sqrt(in), and checks its input") {
  ng::manual_seed(1);
  nn::Linear linear(16, 8, true, ng::float64);
  CHECK(linear.weight.shape() == Shape{8, 16});
  CHECK(linear.bias.shape() == Shape{8});
  const double bound = 1 / std::sqrt(16.0);  // 0.25
  double largest = 0;
  for (double w : linear.weight.to_vector()) largest = std::max(largest, std::abs(w));
  for (double b : linear.bias.to_vector()) largest = std::max(largest, std::abs(b));
  CHECK(largest <= bound);
  CHECK(largest > 0.9 * bound);  // 136 draws: the largest is close to the bound

  Tensor x = ng::randn({3, 16}, ng::float64);
  Tensor y = linear(x);
  double expected = linear.bias.at({2});
  for (int64_t k = 0; k < 16; ++k) expected += x.at({1, k}) * linear.weight.at({2, k});
  CHECK(y.at({1, 2}) == doctest::Approx(expected).epsilon(1e-14));
  CHECK_THROWS_WITH_AS(linear(ng::ones({3, 5}, ng::float64)),
                       doctest::Contains("Linear: input of shape [3, 5]; expected [N, 16]"), ng::Error);

  nn::Linear no_bias(4, 2, false);
  CHECK(!no_bias.bias.defined());
  CHECK(no_bias.parameters().size() == 1);
}

TEST_CASE("Linear maps the last dimension of any input [*, in] -> [*, out], as PyTorch's") {
  ng::manual_seed(4);
  nn::Linear linear(5, 3, true, ng::float64);
  Tensor x = ng::randn({2, 4, 5}, ng::float64).requires_grad_();
  Tensor y = linear(x);
  CHECK(y.shape() == Shape{2, 4, 3});
  const Tensor rows = linear(x.detach().reshape({8, 5}));  // the same 8 rows as one [N, in] batch
  CHECK(y.reshape({8, 3}).to_vector() == rows.to_vector());
  CHECK(linear(ng::randn({5}, ng::float64)).shape() == Shape{3});
  CHECK(linear(ng::randn({0, 5}, ng::float64)).shape() == Shape{0, 3});
  auto result = ng::gradcheck([&](const std::vector<Tensor>& in) { return linear(in[0]); }, {x});
  CHECK_MESSAGE(result.ok, result.message);
  CHECK_THROWS_WITH_AS(linear(ng::ones({2, 4, 6}, ng::float64)),
                       doctest::Contains("Linear: input of shape [2, 4, 6]; expected [N, 5]"), ng::Error);
  CHECK_THROWS_WITH_AS(linear(ng::scalar(1, ng::float64)), doctest::Contains("Linear: input of shape []"), ng::Error);
}

TEST_CASE("Flatten merges dims start_dim..end_dim (default 1..-1) and keeps the row-major order") {
  Tensor x = ng::arange(120).reshape({2, 3, 4, 5});
  CHECK(nn::Flatten()(x).shape() == Shape{2, 60});
  CHECK(nn::Flatten(1, 2)(x).shape() == Shape{2, 12, 5});
  CHECK(nn::Flatten(-3, -2)(x).shape() == Shape{2, 12, 5});
  CHECK(nn::Flatten(0)(x).shape() == Shape{120});
  CHECK(nn::Flatten(2, 2)(x).shape() == x.shape());
  CHECK(nn::Flatten()(ng::zeros({0, 3, 4})).shape() == Shape{0, 12});  // an empty batch too
  CHECK(nn::Flatten()(x).to_vector() == x.to_vector());
}

TEST_CASE("Flatten passes the gradient back in the input's shape") {
  Tensor x = ng::randn({3, 2, 2}, ng::float64).requires_grad_();
  const Tensor weights = ng::randn({3, 4}, ng::float64);  // a different weight for every flattened element
  auto result =
      ng::gradcheck([&](const std::vector<Tensor>& in) { return (nn::Flatten()(in[0]) * weights).sum(); }, {x});
  CHECK_MESSAGE(result.ok, result.message);
  (nn::Flatten()(x) * weights).sum().backward();
  CHECK(x.grad().shape() == x.shape());
  CHECK(x.grad().to_vector() == weights.to_vector());
}

TEST_CASE("Flatten refuses dims outside the input and start_dim after end_dim, naming the shape") {
  CHECK_THROWS_WITH_AS(
      nn::Flatten()(ng::ones({5})),
      doctest::Contains("Flatten: start_dim = 1 is out of range for input of shape [5]; expected -1 to 0"), ng::Error);
  CHECK_THROWS_WITH_AS(nn::Flatten(0, 3)(ng::ones({2, 3})), doctest::Contains("end_dim = 3 is out of range"),
                       ng::Error);
  CHECK_THROWS_WITH_AS(nn::Flatten(2, 1)(ng::ones({2, 3, 4})),
                       doctest::Contains("Flatten: start_dim = 2 comes after end_dim = 1 for input of shape [2, 3, 4]"),
                       ng::Error);
}

TEST_CASE("gradcheck passes through Linear and the activations") {
  ng::manual_seed(2);
  nn::Linear linear(3, 2, true, ng::float64);
  Tensor x = ng::randn({4, 3}, ng::float64).requires_grad_();
  auto result = ng::gradcheck(
      [&](const std::vector<Tensor>& in) { return nn::Tanh()(nn::Sigmoid()(nn::ReLU()(linear(in[0])) + 0.1)); }, {x});
  CHECK_MESSAGE(result.ok, result.message);
}

TEST_CASE("Sequential applies its layers in order and names them 0, 1, ...") {
  nn::Sequential seq;
  seq.push_back(std::make_shared<nn::Linear>(2, 2, false, ng::float64));
  seq.push_back(std::make_shared<nn::ReLU>());
  seq.push_back(std::make_shared<nn::Identity>());
  CHECK(seq.size() == 3);
  auto& linear = dynamic_cast<nn::Linear&>(seq[0]);
  Tensor x = ng::tensor({1, -2}, {1, 2}, ng::float64);
  CHECK(seq(x).to_vector() == relu(linear(x)).to_vector());
  CHECK(linear.weight.name() == "0.weight");
  CHECK_THROWS_WITH_AS(seq[3], doctest::Contains("index 3 is out of range for 3 layers"), ng::Error);
  CHECK_THROWS_AS(seq.push_back(nullptr), ng::Error);
}

// logits [[1, 2, 3], [1, 1, 1]], targets [2, 0]:
//   row 0: log_softmax[2] = 3 - log(e^1 + e^2 + e^3) = -0.40760596...
//   row 1: log_softmax[0] = 1 - log(3 e^1)           = -log 3 = -1.09861228...
//   loss = (0.40760596 + 1.09861229) / 2 = 0.75310912...
TEST_CASE("cross_entropy is the mean of -log_softmax at the target class") {
  Tensor logits = ng::tensor({1, 2, 3, 1, 1, 1}, {2, 3}, ng::float64).requires_grad_();
  Tensor targets = ng::from_vector<int64_t>({2, 0}, {2});
  Tensor loss = nn::cross_entropy(logits, targets);
  const double row0 = 3 - std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  const double row1 = -std::log(3.0);
  CHECK(loss.dim() == 0);
  CHECK(loss.item() == doctest::Approx(-(row0 + row1) / 2).epsilon(1e-14));
  // d loss / d logits = (softmax - onehot(target)) / N
  loss.backward();
  CHECK(logits.grad().at({1, 0}) == doctest::Approx((1.0 / 3 - 1) / 2).epsilon(1e-14));
  CHECK(logits.grad().at({1, 2}) == doctest::Approx((1.0 / 3) / 2).epsilon(1e-14));

  auto result = ng::gradcheck([&](const std::vector<Tensor>& in) { return nn::cross_entropy(in[0], targets); },
                              {ng::randn({2, 3}, ng::float64).requires_grad_()});
  CHECK_MESSAGE(result.ok, result.message);
}

TEST_CASE("cross_entropy validates its targets: int64, one per row, within the classes") {
  Tensor logits = ng::randn({2, 3});
  CHECK_THROWS_WITH_AS(nn::cross_entropy(logits, ng::tensor({0, 1})), doctest::Contains("expected int64 class indices"),
                       ng::Error);
  CHECK_THROWS_WITH_AS(nn::cross_entropy(logits, ng::from_vector<int64_t>({0, 1, 2}, {3})),
                       doctest::Contains("targets of shape [3] for logits [2, 3]; expected [2]"), ng::Error);
  CHECK_THROWS_WITH_AS(nn::cross_entropy(logits, ng::from_vector<int64_t>({0, 3}, {2})),
                       doctest::Contains("target 3 at position 1 is not a class index for 3 classes"), ng::Error);
  CHECK_THROWS_WITH_AS(nn::cross_entropy(logits, ng::from_vector<int64_t>({-1, 0}, {2})),
                       doctest::Contains("target -1 at position 0"), ng::Error);
  CHECK_THROWS_WITH_AS(nn::cross_entropy(ng::randn({6}), ng::from_vector<int64_t>({0}, {1})),
                       doctest::Contains("logits of shape [6]; expected [N, C]"), ng::Error);
}

TEST_CASE("mse_loss is the mean squared difference and requires equal shapes") {
  Tensor prediction = ng::tensor({1, 2, 3, 4}, {2, 2}, ng::float64).requires_grad_();
  Tensor target = ng::tensor({1, 0, 3, 0}, {2, 2}, ng::float64);
  Tensor loss = nn::mse_loss(prediction, target);
  CHECK(loss.item() == doctest::Approx((0 + 4 + 0 + 16) / 4.0));
  loss.backward();  // d/dp = 2 (p - t) / 4
  CHECK(prediction.grad().to_vector() == std::vector<double>{0, 1, 0, 2});
  CHECK_THROWS_WITH_AS(nn::mse_loss(prediction, ng::zeros({4}, ng::float64)),
                       doctest::Contains("prediction of shape [2, 2] and target of shape [4]"), ng::Error);
}

TEST_CASE("a training step leaves no graph nodes behind") {
  Net net;
  net(ng::randn({6, 4})).sum().backward();
  CHECK(ng::live_nodes() == 0);
}

// ---- tied modules (one Linear used twice) -------------------------------------------------------

namespace {

// A float64 Linear(2, 2) with fixed weights, so that a tied model and its untied twin agree.
std::shared_ptr<nn::Linear> fixed_linear() {
  auto lin = std::make_shared<nn::Linear>(2, 2, true, ng::float64);
  ng::NoGradGuard no_grad;
  lin->weight.copy_(ng::tensor({0.5, -0.3, 0.2, 0.4}, {2, 2}, ng::float64));
  lin->bias.copy_(ng::tensor({0.1, -0.2}, ng::float64));
  return lin;
}

Tensor tied_input() { return ng::tensor({1, 2, -1, 0.5}, {2, 2}, ng::float64); }

// sum(lin(tanh(lin(x)))) with the same Linear twice; returns its (sum over both uses) gradients
// [dW, db], computed on an untied twin (two separate Linears with the same values): dW = dW_1 + dW_2.
std::vector<std::vector<double>> untied_gradients() {
  auto first = fixed_linear(), second = fixed_linear();
  nn::Sequential twin{first, std::make_shared<nn::Tanh>(), second};
  ng::sum(twin(tied_input())).backward();
  std::vector<std::vector<double>> grads;
  for (auto get : {+[](nn::Linear& l) { return l.weight; }, +[](nn::Linear& l) { return l.bias; }}) {
    std::vector<double> a = get(*first).grad().to_vector(), b = get(*second).grad().to_vector();
    for (std::size_t i = 0; i < a.size(); ++i) a[i] += b[i];
    grads.push_back(a);
  }
  return grads;
}

}  // namespace

TEST_CASE("a module used twice lists its parameters once, under the first name (PyTorch's named_parameters)") {
  auto lin = fixed_linear();
  nn::Sequential model{lin, std::make_shared<nn::Tanh>(), lin};
  CHECK(model.parameters().size() == 2);
  CHECK(names_of(model.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias"});
  CHECK(lin->weight.name() == "0.weight");  // the second registration does not rename it "2.weight"
  // One level up the first name still wins, and a tied BatchNorm's buffers are listed once too.
  auto bn = std::make_shared<nn::BatchNorm1d>(2);
  nn::Sequential outer{std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{lin, bn}),
                       bn, lin};
  CHECK(names_of(outer.named_parameters()) ==
        std::vector<std::string>{"0.0.weight", "0.0.bias", "0.1.weight", "0.1.bias"});
  CHECK(names_of(outer.named_buffers()) ==
        std::vector<std::string>{"0.1.running_mean", "0.1.running_var", "0.1.num_batches_tracked"});
}

TEST_CASE("clip_grad_norm_ of a tied model measures each parameter's gradient once") {
  const std::vector<std::vector<double>> expected = untied_gradients();
  double squares = 0;
  for (const auto& g : expected)
    for (double v : g) squares += v * v;
  const double hand_norm = std::sqrt(squares);  // ||[dW_1 + dW_2, db_1 + db_2]||_2

  auto lin = fixed_linear();
  nn::Sequential model{lin, std::make_shared<nn::Tanh>(), lin};
  ng::sum(model(tied_input())).backward();
  const std::vector<double> dW = lin->weight.grad().to_vector(), db = lin->bias.grad().to_vector();
  for (std::size_t i = 0; i < dW.size(); ++i) CHECK(dW[i] == doctest::Approx(expected[0][i]).epsilon(1e-12));
  for (std::size_t i = 0; i < db.size(); ++i) CHECK(db[i] == doctest::Approx(expected[1][i]).epsilon(1e-12));

  // Clipping to half the norm halves every gradient (a listed-twice weight would count twice in the
  // norm, sqrt(2) too large here, and scale by too little).
  const double total = nn::clip_grad_norm_(model.parameters(), hand_norm / 2).item();
  CHECK(total == doctest::Approx(hand_norm).epsilon(1e-12));
  const std::vector<double> clipped = lin->weight.grad().to_vector();
  for (std::size_t i = 0; i < dW.size(); ++i) CHECK(clipped[i] == doctest::Approx(dW[i] / 2).epsilon(1e-6));
}

TEST_CASE("a tied model's checkpoint holds the shared tensor once, under its first name, and loads back") {
  // PyTorch's state_dict would hold both "0.weight" and "2.weight"; normgrad's checkpoint is built from
  // named_parameters(), so it stores what the optimizer sees: one tensor per parameter.
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("normgrad_tied_" + std::to_string(std::random_device{}()) + ".safetensors"))
                               .string();
  auto lin = fixed_linear();
  nn::Sequential model{lin, std::make_shared<nn::Tanh>(), lin};
  nn::save(model, path);
  std::vector<std::string> saved;
  for (const auto& [name, tensor] : ng::data::load_safetensors(path)) saved.push_back(name);
  CHECK(saved == std::vector<std::string>{"0.weight", "0.bias"});

  auto other = std::make_shared<nn::Linear>(2, 2, true, ng::float64);
  nn::Sequential copy{other, std::make_shared<nn::Tanh>(), other};
  nn::load(copy, path);
  std::filesystem::remove(path);
  CHECK(other->weight.to_vector() == lin->weight.to_vector());
  CHECK(other->bias.to_vector() == lin->bias.to_vector());
}
