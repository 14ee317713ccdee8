// char_model: a character-level language model in the style of makemore (the MLP of Bengio et al.
// 2003), trained on any text, which then writes new words; and why BatchNorm must be in eval mode to
// sample from it.
//
// The idea. Predict the next character from the `block` characters before it. Each character id is
// looked up in a learned table of 10-dimensional vectors (nn::Embedding: Bengio's matrix C), the block
// vectors are concatenated, and an MLP turns them into scores for the next character:
//   context [B, block] -> Embedding(vocab, 10) -> [B, block, 10] -> flatten [B, 10 block]
//     -> Linear(10 block, 200, no bias) -> BatchNorm1d(200) -> tanh -> Linear(200, vocab) -> cross entropy
// (no bias before BN: BN subtracts the batch mean, which would cancel it). Trained with SGD on random
// mini-batches of 32, learning rate 0.1, then 0.01 for the last quarter of the steps.
//
// The data. As makemore learns from a list of names, this learns from a list of words: the distinct
// words of --text (runs of ASCII letters, lower-cased; everything else separates words), default the
// GPL-3 every Debian system ships in /usr/share/common-licenses (1000 distinct words, about 8000
// characters). The words are shuffled (--seed) and split 90/10 into training and validation words, so
// the validation loss measures how well the model predicts the letters of words it never saw. Each word
// w gives len(w) + 1 examples: '.' marks both "before the start" (the context is padded with it) and
// "the end", so "gnu" with block 3 gives ... -> g, ..g -> n, .gn -> u, gnu -> '.'.
//
// Sampling. Start from the context "...", draw the next character from softmax(logits) with
// multinomial, shift it into the context, stop at '.'. This feeds the model ONE context at a time,
// and that is where BN's two modes matter: in training mode BN normalizes with the statistics of the
// batch it is given, and a batch of one has none (each feature's variance is 0; normgrad refuses, as
// PyTorch does). Sampling several words side by side in training mode runs, but all of them start from
// the same context "...", so at the first step every feature equals its batch mean, BN outputs beta for
// all of them, and the first letter is drawn without looking at the context at all. In eval mode BN
// uses the running averages it kept during training, and each sample is normalized on its own.
//
// Output: losses printed during training, --out/losses.svg (training and validation loss against the
// step), then words sampled in eval mode and the train-mode demonstration.
//
// What to look for (default run, about 20 s on 2 busy cores): from ln(27) = 3.30 the training loss falls
// to about 1.29 nats per character and the validation loss to about 2.02; the gap is overfitting, since
// 900 words are few for 12097 parameters. Eval-mode samples look like English words ("protectly",
// "alread", "imports"); in training mode a batch of one is refused, and words grown side by side start
// with letters drawn from the model's "average" prediction (many are empty or begin with 'e'): the
// first letter's distance from the data's first letters rises from about 0.07 to 0.5.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/graph.h"
#include "autograd/ops.h"
#include "data/random_permutation.h"
#include "examples/common/args.h"
#include "examples/common/progress.h"
#include "examples/common/svg_plot.h"
#include "nn/activation.h"
#include "nn/batchnorm.h"
#include "nn/embedding.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "optim/sgd.h"

using namespace examples;
using ng::Tensor;

namespace {

constexpr int64_t kEmbeddingDim = 10, kHidden = 200, kBatch = 32;
constexpr char kBoundary = '.';  // before the first and after the last character of a word

// The distinct words of a text in order of first appearance: runs of ASCII letters, lower-cased.
std::vector<std::string> read_words(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("--text: cannot open " + path);
  std::ostringstream text;
  text << in.rdbuf();
  std::vector<std::string> words;
  std::set<std::string> seen;
  std::string word;
  for (char raw : text.str() + ' ') {
    const auto c = static_cast<unsigned char>(raw);
    if (std::isalpha(c) && c < 128) {
      word += static_cast<char>(std::tolower(c));
    } else if (!word.empty()) {
      if (seen.insert(word).second) words.push_back(word);
      word.clear();
    }
  }
  return words;
}

// Characters <-> ids: '.' is 0, the letters that occur follow in alphabetical order (makemore's stoi/itos).
struct Vocabulary {
  std::string chars;  // chars[id]
  std::map<char, int64_t> ids;
  explicit Vocabulary(const std::vector<std::string>& words) {
    std::set<char> letters;
    for (const std::string& w : words) letters.insert(w.begin(), w.end());
    chars = std::string(1, kBoundary) + std::string(letters.begin(), letters.end());
    for (std::size_t i = 0; i < chars.size(); ++i) ids[chars[i]] = static_cast<int64_t>(i);
  }
  int64_t size() const { return static_cast<int64_t>(chars.size()); }
};

// Every (context, next character) pair of the words: X int64 [n, block], Y int64 [n].
struct Examples {
  Tensor X, Y;
  int64_t size() const { return Y.numel(); }
};
Examples make_examples(const std::vector<std::string>& words, const Vocabulary& vocab, int64_t block) {
  std::vector<int64_t> contexts, targets;
  for (const std::string& w : words) {
    std::vector<int64_t> context(static_cast<std::size_t>(block), 0);  // "..."
    for (char c : w + kBoundary) {
      const int64_t id = vocab.ids.at(c);
      contexts.insert(contexts.end(), context.begin(), context.end());
      targets.push_back(id);
      context.erase(context.begin());
      context.push_back(id);
    }
  }
  const auto n = static_cast<int64_t>(targets.size());
  return {ng::from_vector(contexts, {n, block}), ng::from_vector(targets, {n})};
}

// The model of the opening comment.
class CharMLP : public ng::nn::Module {
 public:
  CharMLP(int64_t vocab, int64_t block)
      : embedding(register_module("embedding", std::make_shared<ng::nn::Embedding>(vocab, kEmbeddingDim))),
        hidden(register_module("hidden", std::make_shared<ng::nn::Linear>(kEmbeddingDim * block, kHidden, false))),
        bn(register_module("bn", std::make_shared<ng::nn::BatchNorm1d>(kHidden))),
        output(register_module("output", std::make_shared<ng::nn::Linear>(kHidden, vocab))) {
    // makemore's "fix the initial loss": small output weights make the first predictions nearly
    // uniform (loss about ln(vocab)) instead of confidently wrong.
    ng::NoGradGuard no_grad;
    output->weight.mul_(0.1);
    output->bias.zero_();
  }

  // contexts: int64 [B, block] -> logits [B, vocab]
  Tensor forward(const Tensor& contexts) override {
    Tensor e = (*embedding)(contexts);                 // [B, block, 10]
    Tensor h = (*hidden)(e.reshape({e.size(0), -1}));  // [B, 200]
    return (*output)(ng::tanh((*bn)(h)));              // [B, vocab]
  }

  std::shared_ptr<ng::nn::Embedding> embedding;
  std::shared_ptr<ng::nn::Linear> hidden;
  std::shared_ptr<ng::nn::BatchNorm1d> bn;
  std::shared_ptr<ng::nn::Linear> output;
};

// The mean cross entropy over a whole split, in eval mode (BN's running averages), without a graph.
double split_loss(CharMLP& model, const Examples& data) {
  ng::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const double loss = ng::nn::cross_entropy(model(data.X), data.Y).item();
  model.train(was_training);
  return loss;
}

// Grows `count` words side by side from the context "...", one multinomial draw per word and step,
// in whatever mode the model is in; a word ends at '.' or after 30 characters.
std::vector<std::string> sample_words(CharMLP& model, const Vocabulary& vocab, int64_t block, int64_t count) {
  ng::NoGradGuard no_grad;
  std::vector<std::string> words(static_cast<std::size_t>(count));
  std::vector<bool> finished(static_cast<std::size_t>(count), false);
  Tensor context = ng::zeros({count, block}, ng::int64);
  for (int step = 0; step < 30; ++step) {
    Tensor probs = model(context).softmax(1);       // [count, vocab]
    Tensor next = ng::multinomial(probs, 1, true);  // [count, 1]
    std::vector<int64_t> shifted(static_cast<std::size_t>(count * block));
    const int64_t* old = context.data<int64_t>();
    const int64_t* drawn = next.data<int64_t>();
    bool all_finished = true;
    for (int64_t i = 0; i < count; ++i) {
      for (int64_t k = 0; k + 1 < block; ++k) shifted[i * block + k] = old[i * block + k + 1];
      shifted[i * block + block - 1] = drawn[i];
      if (finished[i]) continue;
      if (drawn[i] == 0)
        finished[i] = true;
      else
        words[i] += vocab.chars[drawn[i]];
      all_finished = all_finished && finished[i];
    }
    if (all_finished) break;
    context = ng::from_vector(shifted, {count, block});
  }
  return words;
}

std::string joined(const std::vector<std::string>& words) {
  std::string s;
  for (const std::string& w : words) s += (s.empty() ? "" : " ") + (w.empty() ? std::string("(empty)") : w);
  return s;
}

// The data of the opening comment: the distinct words of the text, shuffled, split 90/10, and their examples.
struct Data {
  std::vector<std::string> words, train_words, val_words;
  Vocabulary vocab;
  Examples train, val;
};

Data load_data(const std::string& text_path, int64_t block, uint64_t seed) {
  std::vector<std::string> words = read_words(text_path);
  if (words.size() < 10) throw UsageError("--text: " + text_path + " has fewer than 10 distinct words");
  std::vector<std::string> shuffled;
  for (int64_t i : ng::data::random_permutation(static_cast<int64_t>(words.size()), seed)) shuffled.push_back(words[i]);
  const auto n_train = static_cast<std::ptrdiff_t>(shuffled.size() * 9 / 10);
  std::vector<std::string> train_words(shuffled.begin(), shuffled.begin() + n_train);
  std::vector<std::string> val_words(shuffled.begin() + n_train, shuffled.end());
  Vocabulary vocab(words);
  Examples train = make_examples(train_words, vocab, block), val = make_examples(val_words, vocab, block);
  std::printf("char_model: %zu distinct words in %s, vocabulary of %lld characters \"%s\"\n", words.size(),
              text_path.c_str(), static_cast<long long>(vocab.size()), vocab.chars.c_str());
  std::printf("training: %zu words, %lld examples; validation: %zu words, %lld examples; block %lld\n",
              train_words.size(), static_cast<long long>(train.size()), val_words.size(),
              static_cast<long long>(val.size()), static_cast<long long>(block));
  return {std::move(words), std::move(train_words), std::move(val_words),
          std::move(vocab), std::move(train),       std::move(val)};
}

// The loss curves training leaves behind: mean mini-batch loss, and both splits' losses in eval mode.
struct Curves {
  std::vector<double> eval_steps, train_losses, val_losses, batch_steps, batch_losses;
};

// SGD on random mini-batches of kBatch, lr 0.1 then 0.01 for the last quarter; both splits evaluated 20 times.
Curves train_model(CharMLP& model, const Data& data, int64_t steps) {
  ng::optim::SGD optimizer(model.parameters(), {.lr = 0.1});
  const int64_t eval_every = std::max<int64_t>(1, steps / 20);
  Curves c;
  double batch_loss_sum = 0;
  int64_t batch_loss_count = 0;
  const auto start = std::chrono::steady_clock::now();
  ProgressLine progress;
  auto evaluate = [&](int64_t step) {
    c.eval_steps.push_back(static_cast<double>(step));
    c.train_losses.push_back(split_loss(model, data.train));
    c.val_losses.push_back(split_loss(model, data.val));
    char line[128];
    std::snprintf(line, sizeof line, "step %7lld  train loss %.4f  validation loss %.4f", static_cast<long long>(step),
                  c.train_losses.back(), c.val_losses.back());
    progress.message(line);
  };
  evaluate(0);
  for (int64_t step = 1; step <= steps; ++step) {
    if (step == steps - steps / 4) optimizer.set_lr(0.01);  // the last quarter: smaller steps
    std::vector<int64_t> picked(kBatch);
    {
      ng::RandomDraws draws;
      for (int64_t& i : picked) i = static_cast<int64_t>(draws.uniform() * static_cast<double>(data.train.size()));
    }
    const Tensor index = ng::from_vector(picked, {kBatch});
    const Tensor loss = ng::nn::cross_entropy(model(ng::index_select(data.train.X, 0, index)),
                                              ng::index_select(data.train.Y, 0, index));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    batch_loss_sum += loss.item();
    ++batch_loss_count;
    if (step % eval_every == 0 || step == steps) {
      c.batch_steps.push_back(static_cast<double>(step));
      c.batch_losses.push_back(batch_loss_sum / static_cast<double>(batch_loss_count));
      batch_loss_sum = 0;
      batch_loss_count = 0;
      evaluate(step);
    } else {
      char line[96];
      std::snprintf(line, sizeof line, "step %lld / %lld, mini-batch loss %.3f", static_cast<long long>(step),
                    static_cast<long long>(steps), loss.item());
      progress.update(line, static_cast<double>(step) / static_cast<double>(steps));
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  progress.done("trained " + std::to_string(steps) + " steps in " + format_duration(seconds));
  return c;
}

// --out/losses.svg, and the final losses against the uniform guess.
void plot_losses(const Curves& c, const std::string& text_path, int64_t vocab_size, const std::string& out_dir) {
  Plot plot;
  plot.title = "Character MLP on the words of " + std::filesystem::path(text_path).filename().string();
  plot.x_label = "training step";
  plot.y_label = "cross entropy (nats per character)";
  plot.lines.push_back({"mini-batches (mean since last point)", "#bbbbbb", c.batch_steps, c.batch_losses});
  plot.lines.push_back({"training words (eval mode)", palette_color(0), c.eval_steps, c.train_losses});
  plot.lines.push_back({"validation words (eval mode)", palette_color(1), c.eval_steps, c.val_losses});
  const std::string figure = write_svg(out_dir, "losses.svg", plot);
  std::printf("final: train loss %.4f, validation loss %.4f (uniform guess %.3f); figure in %s\n\n",
              c.train_losses.back(), c.val_losses.back(), std::log(static_cast<double>(vocab_size)), figure.c_str());
}

// How far the model's first letter (its prediction for the context "...", row 0 of the model's softmax on
// `count` such contexts) is from the training words' first letters: total variation distance (0: the same).
double first_letter_distance(CharMLP& model, const Data& data, int64_t block, int64_t count) {
  std::vector<double> data_first(static_cast<std::size_t>(data.vocab.size()), 0.0);
  for (const std::string& w : data.train_words)
    data_first[data.vocab.ids.at(w[0])] += 1.0 / static_cast<double>(data.train_words.size());
  ng::NoGradGuard no_grad;
  const Tensor probs = model(ng::zeros({count, block}, ng::int64)).softmax(1);
  double distance = 0;
  for (int64_t c = 0; c < data.vocab.size(); ++c) distance += std::abs(probs.at({0, c}) - data_first[c]) / 2;
  return distance;
}

// Sampling in eval mode: BN normalizes each context with its running averages. Returns the first-letter distance.
double sample_in_eval_mode(CharMLP& model, const Data& data, int64_t block) {
  model.eval();
  std::printf("Sampled in eval mode (BN normalizes with its running averages), one word at a time:\n");
  std::vector<std::string> samples;
  for (int i = 0; i < 12; ++i) samples.push_back(sample_words(model, data.vocab, block, 1)[0]);
  std::printf("  %s\n", joined(samples).c_str());
  int64_t known = 0;
  for (const std::string& s : samples) known += std::find(data.words.begin(), data.words.end(), s) != data.words.end();
  std::printf("  (%lld of 12 are words of the text; the rest are new)\n", static_cast<long long>(known));
  const double distance = first_letter_distance(model, data, block, 1);
  std::printf("  first letter vs the training words' first letters: total variation distance %.3f\n\n", distance);
  return distance;
}

// Sampling in training mode, to show why not: a batch of one is refused, and words grown side by side all
// see the same first context. (BN in training mode also moves its running averages, so this comes last.)
void sample_in_training_mode(CharMLP& model, const Data& data, int64_t block, double eval_distance) {
  model.train();
  std::printf("The same model in training mode (BN normalizes with the statistics of the batch it is given):\n");
  try {
    sample_words(model, data.vocab, block, 1);
    std::printf("  a batch of one: sampled without error (unexpected)\n");
  } catch (const ng::Error& e) {
    std::printf("  a batch of one fails:\n    %s\n", e.what());
  }
  std::printf(
      "  12 words grown side by side as one batch. All start from \"...\", so at the first step BN sees 12\n"
      "  identical rows, outputs beta for each, and the first letter is drawn without seeing the context:\n");
  std::printf("  %s\n", joined(sample_words(model, data.vocab, block, 12)).c_str());
  std::printf("  first letter vs the training words' first letters: total variation distance %.3f (eval mode: %.3f)\n",
              first_letter_distance(model, data, block, 12), eval_distance);
}

int run(const ArgParser& args) {
  const std::string text_path = args.get("text"), out_dir = args.get("out");
  const int64_t steps = args.get_int("steps", 1, 10'000'000);
  const int64_t block = args.get_int("block", 1, 32);
  const auto seed = static_cast<uint64_t>(args.get_int("seed", 0, 1'000'000'000));
  if (!std::filesystem::exists(text_path))
    throw UsageError("--text: " + text_path +
                     " does not exist (the default is the GPL-3 that Debian ships in "
                     "/usr/share/common-licenses; pass any English text with --text FILE)");
  const Data data = load_data(text_path, block, seed);

  ng::manual_seed(seed);
  CharMLP model(data.vocab.size(), block);
  int64_t parameter_count = 0;
  for (const Tensor& p : model.parameters()) parameter_count += p.numel();
  const auto vocab = static_cast<long long>(data.vocab.size());
  std::printf(
      "model: Embedding(%lld, 10) -> Linear(%lld, 200, no bias) -> BatchNorm1d(200) -> tanh -> Linear(200, %lld); "
      "%lld parameters\n",
      vocab, static_cast<long long>(kEmbeddingDim * block), vocab, static_cast<long long>(parameter_count));
  std::printf("uniform guess: loss ln(%lld) = %.3f\n\n", vocab, std::log(static_cast<double>(vocab)));

  const Curves curves = train_model(model, data, steps);
  plot_losses(curves, text_path, data.vocab.size(), out_dir);
  const double eval_distance = sample_in_eval_mode(model, data, block);
  sample_in_training_mode(model, data, block, eval_distance);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("char_model", [&] {
    ArgParser args(
        "char_model",
        "Trains a makemore-style character MLP (Embedding -> Linear -> BatchNorm1d -> tanh -> Linear) on the\n"
        "distinct words of a text, then samples new words, in eval mode and (to show why not) training mode.");
    args.option("text", "FILE", "text to learn from (its distinct words)", "/usr/share/common-licenses/GPL-3");
    args.option("steps", "N", "SGD steps on mini-batches of 32", "20000");
    args.option("block", "K", "characters of context", "3");
    args.option("seed", "S", "seed for the split, the initialization, the batches and the samples", "1");
    args.option("out", "DIR", "output folder", "char_model_out");
    if (!args.parse(argc, argv)) return 0;
    return run(args);
  });
}
