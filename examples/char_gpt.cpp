// char_gpt: a tiny GPT on the characters of a text, and why transformers normalize with LayerNorm, not
// BatchNorm.
//
// The model is nanoGPT's, small: each character is embedded (wte) and its position too (wpe); n_layer
// blocks each add causal self-attention and an MLP (Linear, GELU, Linear) to the running sum x, each
// behind a normalization: x = x + attn(norm_1(x)); x = x + mlp(norm_2(x)); then norm_f and a linear map to
// the next character's scores. Trained with AdamW (weight decay on matrices only), gradients clipped to
// norm 1, the learning rate warmed up for 10% of the steps and then decayed along a cosine.
//
// The idea. A normalization makes the statistics of what it normalizes fixed; the question is over what.
// LayerNorm (and RMSNorm, which skips the mean) takes them over the features of ONE token: the output at
// position t depends on token t alone. BatchNorm takes them over the batch, and in a sequence model the
// batch is every position of every sequence: the mean and variance that normalize position t include the
// tokens after t. A causal model must not see those (it is trained to predict them), yet through BN's
// statistics it does. Three things follow, and this program measures each (--norm all trains the same
// model with LayerNorm, RMSNorm, BatchNorm over batch and time, and none):
//   - the leak: change only the tokens after position t (in every sequence of a batch) and see whether
//     the loss at positions <= t changes. It cannot with LayerNorm, RMSNorm or none: exactly 0, bit for
//     bit. With BatchNorm in training mode it does.
//   - train mode against eval mode: BN normalizes with the batch's statistics in training and with running
//     averages at evaluation (and at generation, one token at a time, it has no batch to take them from):
//     the same validation text gets two different losses. For LayerNorm the two are equal.
//   - the fluctuation: how much BN's batch mean and variance move from one batch to the next, relative to
//     their size, against the same measurement in a small CNN on Fashion-MNIST, where BN works well. Text
//     batches fluctuate more (Shen et al. 2020, "PowerNorm", measured this for NLP).
// Output: the losses during training, a table with those numbers, samples (eval mode, temperature and
// top-k), and --out/losses.svg (training and validation loss of every model against the step).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "examples/common/args.h"
#include "examples/common/gpt.h"
#include "examples/common/progress.h"
#include "examples/common/svg_plot.h"
#include "normgrad.h"

using namespace examples;
using ng::Tensor;

namespace {

// ---- the data: characters of a text --------------------------------------------------------------------

struct Text {
  std::string chars;                       // the vocabulary, sorted
  std::vector<int64_t> train, validation;  // the text as character ids, split 90 / 10
};

Text read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("--text: cannot open " + path);
  std::ostringstream content;
  content << in.rdbuf();
  const std::string text = content.str();
  if (text.size() < 2000)
    throw UsageError("--text: " + path + " has " + std::to_string(text.size()) + " bytes; expected at least 2000");
  Text t;
  bool seen[256] = {};
  for (unsigned char c : text) seen[c] = true;
  int64_t id[256] = {};
  for (int c = 0; c < 256; ++c)
    if (seen[c]) {
      id[c] = static_cast<int64_t>(t.chars.size());
      t.chars.push_back(static_cast<char>(c));
    }
  const std::size_t split = text.size() * 9 / 10;
  for (std::size_t i = 0; i < text.size(); ++i)
    (i < split ? t.train : t.validation).push_back(id[static_cast<unsigned char>(text[i])]);
  return t;
}

// A batch of `batch` random windows of `block + 1` characters: inputs [B, T] and targets [B, T] (the
// inputs shifted by one).
struct TokenBatch {
  Tensor inputs, targets;
};
TokenBatch random_batch(const std::vector<int64_t>& ids, int64_t batch, int64_t block) {
  std::vector<int64_t> x, y;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t start = static_cast<int64_t>(ng::random_u64() % static_cast<uint64_t>(ids.size() - block - 1));
    for (int64_t t = 0; t < block; ++t) {
      x.push_back(ids[static_cast<std::size_t>(start + t)]);
      y.push_back(ids[static_cast<std::size_t>(start + t + 1)]);
    }
  }
  return {ng::from_vector(x, {batch, block}), ng::from_vector(y, {batch, block})};
}

// The loss at every position: -log softmax(logits)[target], [B, T].
Tensor position_losses(const Tensor& logits, const Tensor& targets) {
  return -ng::gather(ng::log_softmax(logits, -1), 2, targets.unsqueeze(-1)).squeeze(-1);
}

Tensor mean_loss(Gpt& model, const TokenBatch& batch) {
  const Tensor logits = model(batch.inputs);
  return ng::nn::cross_entropy(logits.reshape({-1, logits.size(-1)}), batch.targets.reshape({-1}));
}

// ---- measurements --------------------------------------------------------------------------------------

// The mean loss over the given batches, in the mode the model is in.
double mean_loss_over(Gpt& model, const std::vector<TokenBatch>& batches) {
  ng::NoGradGuard no_grad;
  double total = 0;
  for (const TokenBatch& batch : batches) total += mean_loss(model, batch).item();
  return total / static_cast<double>(batches.size());
}

std::vector<TokenBatch> random_batches(const std::vector<int64_t>& ids, int64_t batch, int64_t block, int64_t count) {
  std::vector<TokenBatch> batches;
  for (int64_t i = 0; i < count; ++i) batches.push_back(random_batch(ids, batch, block));
  return batches;
}

// The causal leak, in training mode: the largest change of the loss at positions 0..t when every token
// after t, in every sequence of the batch, is replaced by another. 0 means no position looks ahead.
double causal_leak(Gpt& model, const Text& text, int64_t batch) {
  ng::NoGradGuard no_grad;
  model.train();
  const int64_t T = model.config.block, t = T / 2;
  const TokenBatch original = random_batch(text.validation, batch, T);
  std::vector<int64_t> changed;
  for (double v : original.inputs.to_vector()) changed.push_back(static_cast<int64_t>(v));
  const int64_t vocab = model.config.vocab;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = t + 1; s < T; ++s) {
      int64_t& token = changed[static_cast<std::size_t>(b * T + s)];
      token = (token + 1 + static_cast<int64_t>(ng::random_u64() % static_cast<uint64_t>(vocab - 1))) % vocab;
    }
  const Tensor before = position_losses(model(original.inputs), original.targets);
  const Tensor after = position_losses(model(ng::from_vector(changed, {batch, T})), original.targets);
  const std::vector<double> a = before.to(ng::float64).to_vector(), c = after.to(ng::float64).to_vector();
  double worst = 0;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s <= t; ++s)
      worst =
          std::max(worst, std::abs(a[static_cast<std::size_t>(b * T + s)] - c[static_cast<std::size_t>(b * T + s)]));
  return worst;
}

// How much per-feature batch statistics move between batches: over `rounds` batches, for each feature f,
// the standard deviation of its batch mean divided by its typical standard deviation sqrt(mean of var_f),
// and the standard deviation of its batch variance divided by the mean of var_f; each averaged over the
// features and then over the layers. `observe` runs one batch and returns every layer's (mean, var).
struct Fluctuation {
  double mean = NAN, var = NAN;
};
template <class Observe> Fluctuation fluctuation(int64_t rounds, Observe&& observe) {
  std::vector<std::vector<std::vector<double>>> means, vars;  // [layer][round][feature]
  for (int64_t r = 0; r < rounds; ++r) {
    const auto stats = observe();
    means.resize(stats.size());
    vars.resize(stats.size());
    for (std::size_t l = 0; l < stats.size(); ++l) {
      means[l].push_back(stats[l].first.to(ng::float64).to_vector());
      vars[l].push_back(stats[l].second.to(ng::float64).to_vector());
    }
  }
  Fluctuation f{0, 0};
  for (std::size_t l = 0; l < means.size(); ++l) {
    const std::size_t features = means[l][0].size();
    double layer_mean = 0, layer_var = 0;
    for (std::size_t k = 0; k < features; ++k) {
      double mu = 0, mu2 = 0, v = 0, v2 = 0;
      for (int64_t r = 0; r < rounds; ++r) {
        const double m = means[l][static_cast<std::size_t>(r)][k], s = vars[l][static_cast<std::size_t>(r)][k];
        mu += m, mu2 += m * m, v += s, v2 += s * s;
      }
      const double n = static_cast<double>(rounds);
      mu /= n, mu2 /= n, v /= n, v2 /= n;
      layer_mean += std::sqrt(std::max(0.0, mu2 - mu * mu)) / std::sqrt(v + 1e-12);
      layer_var += std::sqrt(std::max(0.0, v2 - v * v)) / (v + 1e-12);
    }
    f.mean += layer_mean / static_cast<double>(features) / static_cast<double>(means.size());
    f.var += layer_var / static_cast<double>(features) / static_cast<double>(means.size());
  }
  return f;
}

// The same measurement in a small CNN trained briefly on Fashion-MNIST (conv 1->16, BN, ReLU, pool, conv
// 16->32, BN, ReLU, pool, linear), at its BatchNorm2d layers, statistics per channel over batch and pixels.
std::optional<Fluctuation> cnn_fluctuation(int64_t batch, int64_t steps, int64_t rounds) {
  if (!ng::data::MNIST::available()) return std::nullopt;
  const ng::data::MNIST train(ng::data::default_fashion_mnist_dir(), true);
  auto conv1 = std::make_shared<ng::nn::Conv2d>(1, 16, ng::Pair{3, 3}, ng::Pair{1, 1}, ng::Pair{1, 1});
  auto conv2 = std::make_shared<ng::nn::Conv2d>(16, 32, ng::Pair{3, 3}, ng::Pair{1, 1}, ng::Pair{1, 1});
  auto bn1 = std::make_shared<ng::nn::BatchNorm2d>(16), bn2 = std::make_shared<ng::nn::BatchNorm2d>(32);
  auto head = std::make_shared<ng::nn::Linear>(32 * 7 * 7, 10);
  std::vector<Tensor> params;
  for (ng::nn::Module* m :
       std::initializer_list<ng::nn::Module*>{conv1.get(), conv2.get(), bn1.get(), bn2.get(), head.get()})
    for (const Tensor& p : m->parameters()) params.push_back(p);
  ng::optim::SGD sgd(params, {.lr = 0.05, .momentum = 0.9});
  Tensor pre1, pre2;  // the inputs of the two BN layers, kept for the measurement
  auto forward = [&](const Tensor& x) {
    pre1 = (*conv1)(x);
    Tensor h = ng::max_pool2d(ng::relu((*bn1)(pre1)), {2, 2});
    pre2 = (*conv2)(h);
    h = ng::max_pool2d(ng::relu((*bn2)(pre2)), {2, 2});
    return (*head)(h.reshape({h.size(0), -1}));
  };
  ng::data::DataLoader loader(train, {.batch_size = batch, .shuffle = true, .seed = 3, .drop_last = true});
  auto it = loader.begin();
  for (int64_t step = 0; step < steps; ++step, ++it) {
    const Tensor loss = ng::nn::cross_entropy(forward(it->inputs), it->labels);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
  }
  auto channel_stats = [](const Tensor& x) {  // [N, C, H, W] -> per channel (mean, var)
    const Tensor mean = x.mean({0, 2, 3}, true);
    return std::pair{mean.reshape({-1}), ((x - mean) * (x - mean)).mean({0, 2, 3})};
  };
  ng::NoGradGuard no_grad;
  return fluctuation(rounds, [&] {
    ++it;
    forward(it->inputs);
    return std::vector{channel_stats(pre1), channel_stats(pre2)};
  });
}

// ---- training ------------------------------------------------------------------------------------------

struct Config {
  std::string text_path, out;
  std::vector<std::string> norms;
  int64_t steps, batch, block, n_layer, n_head, n_embd, seed, samples;
  double lr;
};

struct Result {
  std::string norm;
  std::vector<double> steps, train_curve, val_curve;
  double train_loss = NAN, val_eval = NAN, val_train_mode = NAN, leak = NAN;
  Fluctuation fluct;
  std::string sample;
};

// The learning rate's factor at step s (LambdaLR multiplies the peak rate by it): a linear warm-up over the
// first 10% of the steps, then a cosine from 1 down to 0.1.
double lr_factor(int64_t steps, int64_t step) {
  const double warmup = std::max<double>(1, 0.1 * static_cast<double>(steps));
  if (static_cast<double>(step) < warmup) return (static_cast<double>(step) + 1) / warmup;
  const double progress = (static_cast<double>(step) - warmup) / std::max(1.0, static_cast<double>(steps) - warmup);
  return 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * std::min(1.0, progress)));
}

// Sampling: one character at a time from softmax(logits / temperature), among the top_k most likely.
std::string sample_text(Gpt& model, const Text& text, int64_t length, double temperature, int64_t top_k) {
  ng::NoGradGuard no_grad;
  model.eval();
  std::vector<int64_t> context{
      static_cast<int64_t>(text.chars.find('\n') == std::string::npos ? 0 : text.chars.find('\n'))};
  std::string out;
  for (int64_t i = 0; i < length; ++i) {
    const int64_t T = std::min<int64_t>(static_cast<int64_t>(context.size()), model.config.block);
    const std::vector<int64_t> window(context.end() - T, context.end());
    const Tensor logits = model(ng::from_vector(window, {1, T}));
    std::vector<double> last = ng::select(logits, 1, -1).reshape({-1}).to(ng::float64).to_vector();
    std::vector<double> sorted = last;
    std::nth_element(sorted.begin(), sorted.begin() + (top_k - 1), sorted.end(), std::greater<>());
    const double kth = sorted[static_cast<std::size_t>(top_k - 1)];
    for (double& v : last) v = v < kth ? -INFINITY : v / temperature;
    const Tensor probs = ng::softmax(ng::from_vector(last, {static_cast<int64_t>(last.size())}), 0);
    const auto next = static_cast<int64_t>(ng::multinomial(probs, 1).item());
    context.push_back(next);
    out.push_back(text.chars[static_cast<std::size_t>(next)]);
  }
  return out;
}

Result train_one(const Config& c, const Text& text, const std::string& norm, ProgressLine& progress) {
  ng::manual_seed(static_cast<uint64_t>(c.seed));
  Gpt model({static_cast<int64_t>(text.chars.size()), c.block, c.n_layer, c.n_head, c.n_embd, norm});
  // Weight decay on the matrices (every parameter of 2 or more dimensions, embeddings included, as nanoGPT
  // does), not on biases or the norms' weights: two parameter groups of one AdamW.
  std::vector<Tensor> decayed, plain;
  for (const auto& [name, p] : model.named_parameters()) (p.dim() >= 2 ? decayed : plain).push_back(p);
  ng::optim::AdamW optimizer({{.params = decayed, .weight_decay = 0.1}, {.params = plain, .weight_decay = 0.0}},
                             {.lr = c.lr, .beta2 = 0.99});
  ng::optim::LambdaLR schedule(optimizer, [steps = c.steps](int64_t step) { return lr_factor(steps, step); });
  Result r;
  r.norm = norm;
  double window_loss = 0;
  int64_t window_count = 0;
  const int64_t every = std::max<int64_t>(1, c.steps / 20);
  for (int64_t step = 1; step <= c.steps; ++step) {
    model.train();
    const Tensor loss = mean_loss(model, random_batch(text.train, c.batch, c.block));
    optimizer.zero_grad();
    loss.backward();
    ng::nn::clip_grad_norm_(model.parameters(), 1.0);
    optimizer.step();
    schedule.step();
    window_loss += loss.item();
    ++window_count;
    if (step % every == 0 || step == c.steps) {
      model.eval();
      const double val = mean_loss_over(model, random_batches(text.validation, c.batch, c.block, 4));
      r.steps.push_back(static_cast<double>(step));
      r.train_curve.push_back(window_loss / static_cast<double>(window_count));
      r.val_curve.push_back(val);
      window_loss = 0, window_count = 0;
      char line[160];
      std::snprintf(line, sizeof line, "%-6s step %lld/%lld  train loss %.3f  validation loss %.3f", norm.c_str(),
                    static_cast<long long>(step), static_cast<long long>(c.steps), r.train_curve.back(), val);
      progress.update(line, static_cast<double>(step) / static_cast<double>(c.steps));
    }
  }
  progress.done(norm + ": trained " + std::to_string(c.steps) + " steps");

  // The numbers of the summary, each on fresh random batches.
  // Both modes on the same 40 validation batches, so that only the mode differs.
  r.train_loss = r.train_curve.back();
  const std::vector<TokenBatch> validation = random_batches(text.validation, c.batch, c.block, 40);
  model.eval();
  r.val_eval = mean_loss_over(model, validation);
  model.train();
  r.val_train_mode = mean_loss_over(model, validation);
  r.leak = causal_leak(model, text, c.batch);
  if (norm == "batch") {
    model.train();
    r.fluct = fluctuation(50, [&] {
      ng::NoGradGuard no_grad;
      model(random_batch(text.train, c.batch, c.block).inputs);
      std::vector<std::pair<Tensor, Tensor>> stats;
      for (BatchNormOverTokens* bn : model.batch_norms()) stats.emplace_back(bn->last_mean, bn->last_var);
      return stats;
    });
  }
  r.sample = sample_text(model, text, c.samples, 0.8, 10);
  return r;
}

void write_figure(const Config& c, const std::vector<Result>& results) {
  Plot plot;
  plot.title = "Tiny GPT on characters: training (solid) and validation (dashed) loss";
  plot.x_label = "step";
  plot.y_label = "cross entropy (nats per character)";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    plot.lines.push_back({r.norm + " train", palette_color(static_cast<int>(i)), r.steps, r.train_curve});
    plot.lines.push_back({r.norm + " validation", palette_color(static_cast<int>(i)), r.steps, r.val_curve, true});
  }
  std::printf("figure: %s\n", write_svg(c.out, "losses.svg", plot).c_str());
}

void print_summary(const Config& c, const std::vector<Result>& results, bool any_batch,
                   const std::optional<Fluctuation>& cnn) {
  std::printf("\nSummary: %lld steps, batch %lld, block %lld, %lld layers, %lld heads, %lld features, AdamW lr %g\n",
              static_cast<long long>(c.steps), static_cast<long long>(c.batch), static_cast<long long>(c.block),
              static_cast<long long>(c.n_layer), static_cast<long long>(c.n_head), static_cast<long long>(c.n_embd),
              c.lr);
  std::printf("  %-6s %10s %10s %10s %12s %12s %14s\n", "norm", "train", "val(eval)", "gap", "val(train)",
              "causal leak", "BN fluctuation");
  for (const Result& r : results) {
    char fluct[64] = "-";
    if (!std::isnan(r.fluct.mean)) std::snprintf(fluct, sizeof fluct, "%.3f / %.3f", r.fluct.mean, r.fluct.var);
    std::printf("  %-6s %10.4f %10.4f %10.4f %12.4f %12.3g %14s\n", r.norm.c_str(), r.train_loss, r.val_eval,
                r.val_eval - r.train_loss, r.val_train_mode, r.leak, fluct);
  }
  if (cnn)
    std::printf("  BN in a small CNN on Fashion-MNIST (batch 64, after 200 steps): fluctuation %.3f / %.3f\n",
                cnn->mean, cnn->var);
  else if (any_batch)
    std::printf("  (Fashion-MNIST not found: no CNN fluctuation to compare with; apt install dataset-fashion-mnist)\n");
  std::printf(
      "\n  train: training loss over the last steps; val(eval): validation loss in eval mode (BN with running\n"
      "  averages, as at generation); gap = val(eval) - train; val(train): the same validation text in training\n"
      "  mode (BN with the batch's statistics). causal leak: largest change of the loss at positions <= %lld when "
      "only\n"
      "  the tokens after position %lld are changed, in training mode: 0 means no position sees the future.\n"
      "  BN fluctuation: batch-to-batch standard deviation of BN's per-feature mean / of its variance, relative to\n"
      "  the feature's standard deviation / variance, averaged over features and layers (PowerNorm's measure).\n",
      static_cast<long long>(c.block / 2), static_cast<long long>(c.block / 2));
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("char_gpt", [&] {
    ArgParser args("char_gpt",
                   "Trains a tiny GPT on the characters of a text with LayerNorm, RMSNorm, BatchNorm (over batch and\n"
                   "time) or no normalization, and measures why transformers use LayerNorm: BN's causal leak, its\n"
                   "train/eval gap and its batch statistics' fluctuation. Writes losses.svg into the output folder.");
    args.option("text", "FILE", "the text to learn", "/usr/share/common-licenses/GPL-3");
    args.option("norm", "KIND", "layer, rms, batch, none, or all (the four, one after another)", "all");
    args.option("steps", "N", "training steps per model", "1500");
    args.option("batch", "N", "sequences per batch", "16");
    args.option("block", "N", "characters of context (the sequence length)", "32");
    args.option("layers", "N", "transformer blocks", "2");
    args.option("heads", "N", "attention heads", "4");
    args.option("embd", "N", "features per token (a multiple of --heads)", "64");
    args.option("lr", "A", "AdamW's peak learning rate", "0.003");
    args.option("seed", "S", "seed for the weights and the batches", "1");
    args.option("samples", "N", "characters sampled from each model at the end", "200");
    args.option("out", "DIR", "output folder", "char_gpt_out");
    if (!args.parse(argc, argv)) return 0;
    Config c;
    c.text_path = args.get("text");
    c.out = args.get("out");
    const std::string norm = args.get_choice("norm", {"layer", "rms", "batch", "none", "all"});
    c.norms =
        norm == "all" ? std::vector<std::string>{"layer", "rms", "batch", "none"} : std::vector<std::string>{norm};
    c.steps = args.get_int("steps", 1, 10'000'000);
    c.batch = args.get_int("batch", 2, 4096);
    c.block = args.get_int("block", 2, 4096);
    c.n_layer = args.get_int("layers", 1, 64);
    c.n_head = args.get_int("heads", 1, 64);
    c.n_embd = args.get_int("embd", 1, 4096);
    if (c.n_embd % c.n_head != 0)
      throw UsageError("--embd " + std::to_string(c.n_embd) + " is not a multiple of --heads " +
                       std::to_string(c.n_head));
    c.lr = args.get_positive_list("lr").at(0);
    c.seed = args.get_int("seed", 0, INT64_MAX);
    c.samples = args.get_int("samples", 0, 100000);

    const Text text = read_text(c.text_path);
    std::printf("char_gpt: %s, %zu characters (%zu distinct), 90%% to train\n", c.text_path.c_str(),
                text.train.size() + text.validation.size(), text.chars.size());
    ProgressLine progress;
    std::vector<Result> results;
    for (const std::string& n : c.norms) results.push_back(train_one(c, text, n, progress));
    const bool any_batch = std::find(c.norms.begin(), c.norms.end(), "batch") != c.norms.end();
    const std::optional<Fluctuation> cnn = any_batch ? cnn_fluctuation(64, 200, 50) : std::nullopt;
    for (const Result& r : results)
      std::printf("\n--- %s, sampled in eval mode (temperature 0.8, top 10):\n%s\n", r.norm.c_str(), r.sample.c_str());
    print_summary(c, results, any_batch, cnn);
    write_figure(c, results);
    return 0;
  });
}
