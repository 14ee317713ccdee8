// torch_interop.cpp: normgrad's half of the PyTorch interop test; torch_interop.py is PyTorch's half.
//
// normgrad names a model's tensors as PyTorch's state_dict does (named_parameters() then named_buffers():
// "0.weight", "1.running_mean", "1.num_batches_tracked", ...) and saves them as safetensors, so a
// checkpoint moves between the two unchanged. Three small models cover every layer that has parameters
// or buffers; torch_interop.py builds the same three in PyTorch:
//   mlp    Linear, BatchNorm1d, ReLU, Linear                         x: [8, 6]            -> [8, 3]
//   cnn    Conv2d, BatchNorm2d, ReLU, Flatten, Linear                x: [4, 2, 5, 5]      -> [4, 3]
//   text   Embedding, Flatten, LayerNorm, Linear, BatchNorm1d, Tanh, Linear
//                                                                    ids: [8, 3] (int64)  -> [8, 10]
//
//   torch_interop export DIR   trains each model three SGD steps (MSE to random targets) and writes
//                              DIR/<model>.safetensors, its state_dict, and DIR/<model>_io.safetensors: the
//                              input, the output in eval mode, then the output in train mode (batch
//                              statistics), and the buffers after that train-mode forward ("after.<name>":
//                              the running averages have taken one step, num_batches_tracked one more).
//   torch_interop import DIR   reads the same two files, written by PyTorch, loads the first into freshly
//                              built models and checks that normgrad computes the same outputs and buffers.
//                              Exits 1 if any differs by more than float32 tolerance.
//
// The tiny GPT of examples/char_gpt.cpp (examples/common/gpt.h: nanoGPT's model and parameter names, wte,
// wpe, h.<i>.ln_1, h.<i>.attn.c_attn, ..., lm_head) with LayerNorm, small: vocab 11, block 8, 2 layers of 2
// heads, 16 features; ids [3, 8] (int64) -> logits [3, 8, 11]. torch_interop.py writes nanoGPT's GPT.
//   torch_interop gpt_export DIR   trains it three AdamW steps (next-token cross entropy on random ids, so
//                                  that the norms' weights and biases are no longer 1 and 0) and writes
//                                  DIR/gpt.safetensors, its state_dict, and DIR/gpt_io.safetensors: the input
//                                  ids and the logits in eval mode.
//   torch_interop gpt_import DIR   reads the same two files, written by PyTorch, loads the first into a
//                                  freshly built GPT and checks the logits: exits 1 if any differs by 1e-5 or more.
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "examples/common/gpt.h"
#include "normgrad.h"

using namespace ng;

namespace {

std::shared_ptr<nn::Sequential> make_mlp() {
  return std::shared_ptr<nn::Sequential>(
      new nn::Sequential{std::make_shared<nn::Linear>(6, 16), std::make_shared<nn::BatchNorm1d>(16),
                         std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(16, 3)});
}

std::shared_ptr<nn::Sequential> make_cnn() {
  return std::shared_ptr<nn::Sequential>(new nn::Sequential{
      std::make_shared<nn::Conv2d>(2, 4, Pair{3, 3}, Pair{1, 1}, Pair{1, 1}), std::make_shared<nn::BatchNorm2d>(4),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(4 * 5 * 5, 3)});
}

std::shared_ptr<nn::Sequential> make_text() {
  return std::shared_ptr<nn::Sequential>(new nn::Sequential{
      std::make_shared<nn::Embedding>(10, 4), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::LayerNorm>(Shape{12}), std::make_shared<nn::Linear>(12, 16),
      std::make_shared<nn::BatchNorm1d>(16), std::make_shared<nn::Tanh>(), std::make_shared<nn::Linear>(16, 10)});
}

// ids: [8, 3], token ids in 0..9
Tensor random_ids() {
  std::vector<int64_t> ids(8 * 3);
  for (int64_t& id : ids) id = static_cast<int64_t>(random_u64() % 10);
  return from_vector(ids, {8, 3});
}

struct ModelCase {
  std::string name;
  std::function<std::shared_ptr<nn::Sequential>()> make;
  std::function<Tensor()> make_input;
};

const std::vector<ModelCase>& model_cases() {
  static const std::vector<ModelCase> cases = {
      {"mlp", make_mlp,
       [] {
         return randn({8, 6});
       }},
      {"cnn", make_cnn,
       [] {
         return randn({4, 2, 5, 5});
       }},
      {"text", make_text, random_ids},
  };
  return cases;
}

// The outputs and buffers that both frameworks must agree on, computed from the model's current state:
// the eval-mode output, then the train-mode output (which also moves the running averages), then the
// buffers as that train-mode forward left them.
data::NamedTensors outputs_of(nn::Module& model, const Tensor& input) {
  NoGradGuard no_grad;
  data::NamedTensors io;
  model.eval();
  io.emplace_back("output_eval", model(input));
  model.train();
  io.emplace_back("output_train", model(input));
  for (const auto& [name, buffer] : model.named_buffers()) io.emplace_back("after." + name, buffer.clone());
  return io;
}

void export_models(const std::string& dir) {
  manual_seed(0);
  for (const ModelCase& model_case : model_cases()) {
    auto model = model_case.make();
    Tensor input = model_case.make_input();
    Tensor target = randn((*model)(input).detach().shape());
    optim::SGD sgd(model->parameters(), {.lr = 0.1, .momentum = 0.9});
    for (int step = 0; step < 3; ++step) {
      Tensor loss = nn::mse_loss((*model)(input), target);
      sgd.zero_grad();
      loss.backward();
      sgd.step();
    }
    nn::save(*model, dir + "/" + model_case.name + ".safetensors");
    data::NamedTensors io = outputs_of(*model, input);
    io.insert(io.begin(), {"input", input});
    data::save_safetensors(dir + "/" + model_case.name + "_io.safetensors", io);
    std::printf("normgrad trained and saved %s\n", model_case.name.c_str());
  }
}

// Float32 tolerance: |got - want| <= 1e-5 + relative |want| for every element, relative 1e-4 unless given
// (int64 buffers compare exactly, since their values are small integers, exact in float64).
bool matches(const std::string& what, const Tensor& got, const Tensor& want, double relative = 1e-4) {
  if (got.shape() != want.shape() || got.dtype() != want.dtype()) {
    std::printf("  %-32s MISMATCH: normgrad gives %s %s, PyTorch %s %s\n", what.c_str(), shape_str(got.shape()).c_str(),
                dtype_name(got.dtype()), shape_str(want.shape()).c_str(), dtype_name(want.dtype()));
    return false;
  }
  Tensor got64 = got.to(float64), want64 = want.to(float64);
  const double* g = got64.data<double>();
  const double* w = want64.data<double>();
  double largest_diff = 0;
  bool within = true;
  for (int64_t i = 0; i < got64.numel(); ++i) {
    double diff = std::fabs(g[i] - w[i]);
    largest_diff = std::max(largest_diff, diff);
    within = within && diff <= 1e-5 + relative * std::fabs(w[i]);
  }
  std::printf("  %-32s max |normgrad - PyTorch| %.2e  %s\n", what.c_str(), largest_diff, within ? "ok" : "MISMATCH");
  return within;
}

bool import_models(const std::string& dir) {
  bool all_match = true;
  for (const ModelCase& model_case : model_cases()) {
    auto model = model_case.make();
    nn::load(*model, dir + "/" + model_case.name + ".safetensors");
    std::map<std::string, Tensor> want;
    for (auto& [name, tensor] : data::load_safetensors(dir + "/" + model_case.name + "_io.safetensors"))
      want[name] = tensor;
    std::printf("normgrad runs the model PyTorch trained: %s\n", model_case.name.c_str());
    for (const auto& [name, got] : outputs_of(*model, want.at("input"))) {
      auto found = want.find(name);
      if (found == want.end()) {
        std::printf("  %-32s MISMATCH: PyTorch's file does not have it\n", name.c_str());
        all_match = false;
      } else {
        all_match = matches(name, got, found->second) && all_match;
      }
    }
  }
  return all_match;
}

const examples::GptConfig gpt_config{.vocab = 11, .block = 8, .n_layer = 2, .n_head = 2, .n_embd = 16, .norm = "layer"};

// ids: [3, 8], token ids in 0..vocab-1
Tensor random_gpt_ids() {
  std::vector<int64_t> ids(3 * 8);
  for (int64_t& id : ids) id = static_cast<int64_t>(random_u64() % static_cast<uint64_t>(gpt_config.vocab));
  return from_vector(ids, {3, 8});
}

// logits: [3, 8, 11], in eval mode (the same in train mode: LayerNorm keeps no statistics, no dropout)
Tensor gpt_logits(examples::Gpt& model, const Tensor& ids) {
  NoGradGuard no_grad;
  model.eval();
  return model(ids);
}

void export_gpt(const std::string& dir) {
  manual_seed(0);
  examples::Gpt model(gpt_config);
  const Tensor ids = random_gpt_ids(), targets = random_gpt_ids();
  optim::AdamW adamw(model.parameters(), {.lr = 1e-2});
  for (int step = 0; step < 3; ++step) {
    const Tensor logits = model(ids);  // [B, T, V]
    const Tensor loss = nn::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}));
    adamw.zero_grad();
    loss.backward();
    adamw.step();
  }
  nn::save(model, dir + "/gpt.safetensors");
  data::save_safetensors(dir + "/gpt_io.safetensors", {{"input", ids}, {"logits_eval", gpt_logits(model, ids)}});
  std::printf("normgrad trained and saved gpt\n");
}

bool import_gpt(const std::string& dir) {
  examples::Gpt model(gpt_config);
  nn::load(model, dir + "/gpt.safetensors");
  std::map<std::string, Tensor> want;
  for (auto& [name, tensor] : data::load_safetensors(dir + "/gpt_io.safetensors")) want[name] = tensor;
  std::printf("normgrad runs the model PyTorch trained: gpt\n");
  return matches("logits_eval", gpt_logits(model, want.at("input")), want.at("logits_eval"), /*relative=*/0);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc == 3 ? argv[1] : "";
  if (mode != "export" && mode != "import" && mode != "gpt_export" && mode != "gpt_import") {
    std::fprintf(stderr, "usage: %s export|import|gpt_export|gpt_import DIR\n", argv[0]);
    return 2;
  }
  try {
    if (mode == "export") {
      export_models(argv[2]);
      return 0;
    }
    if (mode == "gpt_export") {
      export_gpt(argv[2]);
      return 0;
    }
    if (mode == "gpt_import") return import_gpt(argv[2]) ? 0 : 1;
    return import_models(argv[2]) ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "torch_interop %s: %s\n", mode.c_str(), e.what());
    return 1;
  }
}
