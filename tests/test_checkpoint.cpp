// test_checkpoint.cpp: safetensors files (read back by Python's standard library to prove the format,
// damaged files refused), module and optimizer checkpoints (bit-exact round trips, a checkpoint for
// another model refused with the first difference named, a failed save leaving the old file intact).
#include <doctest/doctest.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "normgrad.h"
#include "temp_dir.h"
#include "test_requirements.h"

using namespace ng;
using test_files::contains;
using test_files::TempDir;
namespace fs = std::filesystem;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// A safetensors file from a header written by hand: 8-byte little-endian length, JSON, data.
std::string safetensors_bytes(const std::string& json, const std::string& data) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(json.size() >> (8 * i));
  return bytes + json + data;
}

// Linear 4 -> 8, BatchNorm1d, ReLU, Linear 8 -> `out`.
std::shared_ptr<nn::Sequential> make_model(int64_t hidden = 8, int64_t out = 3, Dtype dtype = float32) {
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(4, hidden, true, dtype),
      std::make_shared<nn::BatchNorm1d>(hidden, nn::BatchNormOptions{.dtype = dtype}), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(hidden, out, true, dtype)});
}

// Every parameter and buffer, in order, as the raw bytes they hold.
std::vector<std::string> raw_state(const nn::Module& model) {
  std::vector<std::string> state;
  auto add = [&](const auto& named) {
    for (const auto& [name, t] : named)
      state.push_back(name + ":" +
                      std::string(static_cast<const char*>(t.raw_data()), t.numel() * dtype_size(t.dtype())));
  };
  add(model.named_parameters());
  add(model.named_buffers());
  return state;
}

// One training step of `model` on a fixed batch.
void train_step(nn::Module& model, optim::Optimizer& optimizer, uint64_t seed) {
  manual_seed(seed);
  Tensor x = randn({16, 4});
  Tensor y = randn({16, 3});
  optimizer.zero_grad();
  nn::mse_loss(model(x), y).backward();
  optimizer.step();
}

}  // namespace

// ---- the file format ------------------------------------------------------------------------------

TEST_CASE("save_safetensors then load_safetensors gives back the names, shapes, dtypes and bytes") {
  TempDir dir;
  data::NamedTensors saved{{"weights", tensor({1.5, -2, 3.25, 0, 1e-30, -7}, {2, 3})},
                           {"precise", tensor({0.1, 1.0 / 3}, float64)},
                           {"count", scalar(42, int64)},
                           {"empty", zeros({0, 5})},
                           {"name with \"quotes\", \\ and \u00e9", ones({1})}};
  data::save_safetensors(dir / "t.safetensors", saved, {{"note", "hello\n\"world\""}});
  data::SafetensorsFile loaded = data::read_safetensors(dir / "t.safetensors");
  REQUIRE(loaded.tensors.size() == saved.size());
  for (std::size_t i = 0; i < saved.size(); ++i) {
    const Tensor &a = saved[i].second, &b = loaded.tensors[i].second;
    CHECK(loaded.tensors[i].first == saved[i].first);
    CHECK(b.shape() == a.shape());
    CHECK(b.dtype() == a.dtype());
    CHECK(std::memcmp(a.raw_data(), b.raw_data(), a.numel() * dtype_size(a.dtype())) == 0);
  }
  CHECK(loaded.metadata == data::Metadata{{"note", "hello\n\"world\""}});
  CHECK(fs::directory_iterator(dir.path)->path().filename() == "t.safetensors");  // no temporary file left behind
}

TEST_CASE("Python's standard library reads a saved checkpoint: header length, JSON, offsets, values" *
          doctest::skip(python3_missing("json, struct"))) {
  TempDir dir;
  data::save_safetensors(dir / "t.safetensors",
                         {{"a.weight", tensor({1.5, -2, 3.25, 0.125, 8, -0.5}, {2, 3})},
                          {"b", tensor({0.1, -1e300}, float64)},
                          {"steps", tensor({7, -3}, {2, 1}, int64)}},
                         {{"kind", "test"}});
  write_text(dir / "check.py", R"(import json, struct, sys
data = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', data[:8])
assert n % 8 == 0, 'header not padded to 8 bytes'
header = json.loads(data[8:8 + n])
body = data[8 + n:]
assert header.pop('__metadata__') == {'kind': 'test'}, 'metadata'
assert list(header) == ['a.weight', 'b', 'steps'], list(header)
expected = {'a.weight': ('F32', [2, 3], '<6f', [1.5, -2, 3.25, 0.125, 8, -0.5]),
            'b': ('F64', [2], '<2d', [0.1, -1e300]),
            'steps': ('I64', [2, 1], '<2q', [7, -3])}
end = 0
for name, (dtype, shape, fmt, values) in expected.items():
    entry = header[name]
    assert entry['dtype'] == dtype and entry['shape'] == shape, (name, entry)
    begin, stop = entry['data_offsets']
    assert begin == end, (name, 'offsets are not contiguous')
    assert list(struct.unpack(fmt, body[begin:stop])) == values, (name, struct.unpack(fmt, body[begin:stop]))
    end = stop
assert end == len(body), 'data size'
print('python3 read the file correctly')
)");
  std::string command = "python3 '" + (dir / "check.py") + "' '" + (dir / "t.safetensors") + "'";
  CHECK(std::system(command.c_str()) == 0);
}

TEST_CASE("load_safetensors reads names that Python's json.dumps escaped as \\uXXXX") {
  TempDir dir;
  // {"caf\u00e9 \ud83d\ude00": F32 [1]} as json.dumps writes it (ASCII only), padded with spaces
  std::string json = R"({"caf\u00e9 \ud83d\ude00":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}   )";
  float one = 1;
  write_text(dir / "u.safetensors", safetensors_bytes(json, std::string(reinterpret_cast<char*>(&one), 4)));
  data::NamedTensors loaded = data::load_safetensors(dir / "u.safetensors");
  REQUIRE(loaded.size() == 1);
  CHECK(loaded[0].first == "caf\u00e9 \U0001F600");
  CHECK(loaded[0].second.item() == 1);
}

TEST_CASE("load_safetensors names the file and the defect of a damaged file") {
  TempDir dir;
  std::string path = dir / "bad.safetensors";
  const std::string entry = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  auto error_of = [&](const std::string& bytes) {
    write_text(path, bytes);
    try {
      data::load_safetensors(path);
    } catch (const Error& e) {
      std::string message = e.what();
      CHECK(message.find(path) != std::string::npos);
      return message;
    }
    FAIL("a damaged file was accepted");
    return std::string();
  };
  CHECK(error_of("abc").find("truncated: 3 bytes") != std::string::npos);
  CHECK(error_of(safetensors_bytes(entry, "1234")).find("truncated: tensor 'x' ends at data byte 8") !=
        std::string::npos);
  CHECK(error_of(safetensors_bytes(entry, std::string(12, 'a'))).find("4 bytes follow the last tensor") !=
        std::string::npos);
  CHECK(error_of(safetensors_bytes(entry, "").substr(0, 20)).find("exceeds") != std::string::npos);
  CHECK(error_of(safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2] "data_offsets":[0,8]}})", std::string(8, 'a')))
            .find("malformed JSON header at byte 32: expected '}', found '\"'") != std::string::npos);
  CHECK(error_of(safetensors_bytes(R"({"x":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", "abcd"))
            .find("dtype 'BF16'; normgrad reads F32, F64 and I64") != std::string::npos);
  CHECK(error_of(safetensors_bytes(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, 'a')))
            .find("needs 12 bytes, but its data_offsets [0, 8] hold 8") != std::string::npos);
  CHECK(error_of(safetensors_bytes(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, 'a')))
            .find("starts at data byte 4, but the tensor before it ends at 0") != std::string::npos);
  CHECK(error_of(safetensors_bytes(R"({"x":{"dtype":"F32","shape":[1]}})", ""))
            .find("needs dtype, shape and data_offsets") != std::string::npos);
  CHECK_THROWS_WITH_AS(data::load_safetensors(dir / "missing"), doctest::Contains("cannot open"), Error);
}

TEST_CASE("save_safetensors refuses an undefined tensor and duplicate or reserved names") {
  TempDir dir;
  CHECK_THROWS_WITH_AS(data::save_safetensors(dir / "a", {{"x", Tensor()}}), doctest::Contains("'x' is undefined"),
                       Error);
  CHECK_THROWS_WITH_AS(data::save_safetensors(dir / "a", {{"x", ones({1})}, {"x", ones({1})}}),
                       doctest::Contains("'x' appears twice"), Error);
  CHECK_THROWS_WITH_AS(data::save_safetensors(dir / "a", {{"__metadata__", ones({1})}}),
                       doctest::Contains("cannot be a tensor name"), Error);
  CHECK(fs::is_empty(dir.path));
}

// ---- module checkpoints ---------------------------------------------------------------------------

TEST_CASE("a module saved and loaded into a fresh model is bit-exact, buffers included") {
  for (Dtype dtype : {float32, float64}) {
    CAPTURE(dtype_name(dtype));
    TempDir dir;
    manual_seed(1);
    auto model = make_model(8, 3, dtype);
    model->train();
    (*model)(randn({16, 4}, dtype));  // moves BatchNorm's running statistics away from their start
    nn::save(*model, dir / "model.safetensors");

    manual_seed(2);
    auto fresh = make_model(8, 3, dtype);
    REQUIRE(raw_state(*fresh) != raw_state(*model));
    nn::load(*fresh, dir / "model.safetensors");
    CHECK(raw_state(*fresh) == raw_state(*model));

    model->eval();
    fresh->eval();
    Tensor x = randn({5, 4}, dtype);
    Tensor a = (*model)(x), b = (*fresh)(x);
    CHECK(std::memcmp(a.raw_data(), b.raw_data(), a.numel() * dtype_size(dtype)) == 0);
  }
}

TEST_CASE("loading a checkpoint of another model names the first difference and changes nothing") {
  TempDir dir;
  manual_seed(3);
  nn::save(*make_model(8, 3), dir / "model.safetensors");
  auto other_width = make_model(16, 3);
  std::vector<std::string> before = raw_state(*other_width);
  CHECK_THROWS_WITH_AS(nn::load(*other_width, dir / "model.safetensors"),
                       contains("nn::load: '" + (dir / "model.safetensors") +
                                "': tensor '0.weight' is [8, 4] float32 in the file but [16, 4] float32 in the model"),
                       Error);
  CHECK(raw_state(*other_width) == before);

  CHECK_THROWS_WITH_AS(nn::load(*make_model(8, 3, float64), dir / "model.safetensors"),
                       doctest::Contains("'0.weight' is [8, 4] float32 in the file but [8, 4] float64 in the model"),
                       Error);

  auto deeper = make_model(8, 3);
  deeper->push_back(std::make_shared<nn::Linear>(3, 2));
  CHECK_THROWS_WITH_AS(nn::load(*deeper, dir / "model.safetensors"),
                       doctest::Contains("the model's tensor '4.weight' ([2, 3] float32) is not in the file"), Error);

  nn::Sequential shallower{std::make_shared<nn::Linear>(4, 8)};
  CHECK_THROWS_WITH_AS(
      nn::load(shallower, dir / "model.safetensors"),
      doctest::Contains("the file holds a tensor '1.weight' ([8] float32) that the model does not have"), Error);
}

TEST_CASE("a save that fails leaves the previous checkpoint byte-identical") {
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  manual_seed(4);
  auto model = make_model(8, 3);
  nn::save(*model, path);
  const std::string before = read_text(path);

  SUBCASE("a tensor that cannot be serialized") {
    CHECK_THROWS_WITH_AS(data::save_safetensors(path, {{"ok", ones({100})}, {"broken", Tensor()}}),
                         doctest::Contains("'broken' is undefined"), Error);
  }
  SUBCASE("the disk fills up halfway through the write") {
    // A file-size limit makes write() fail with EFBIG after 256 bytes, as a full disk would.
    rlimit old_limit{};
    getrlimit(RLIMIT_FSIZE, &old_limit);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = old_limit;
    small.rlim_cur = 256;
    setrlimit(RLIMIT_FSIZE, &small);
    auto big = make_model(64, 10);
    CHECK_THROWS_WITH_AS(nn::save(*big, path), doctest::Contains("failed"), Error);
    setrlimit(RLIMIT_FSIZE, &old_limit);
    std::signal(SIGXFSZ, old_handler);
  }
  CHECK(read_text(path) == before);
  // No temporary file is left beside it: the folder holds the checkpoint alone.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
  auto reloaded = make_model(8, 3);
  nn::load(*reloaded, path);
  CHECK(raw_state(*reloaded) == raw_state(*model));
}

// ---- optimizer checkpoints ------------------------------------------------------------------------

TEST_CASE("training resumed from model and optimizer checkpoints matches uninterrupted training bit for bit") {
  TempDir dir;
  manual_seed(5);
  auto model = make_model();
  optim::Adam adam(model->parameters(), {.lr = 0.01});
  optim::StepLR schedule(adam, 1, 0.5);
  for (uint64_t step = 0; step < 3; ++step) train_step(*model, adam, step);
  schedule.step();  // lr 0.005, saved with the optimizer
  nn::save(*model, dir / "model.safetensors");
  optim::save(adam, dir / "adam.safetensors");
  for (uint64_t step = 3; step < 6; ++step) train_step(*model, adam, step);

  manual_seed(6);
  auto resumed = make_model();
  optim::Adam resumed_adam(resumed->parameters(), {.lr = 0.01});
  nn::load(*resumed, dir / "model.safetensors");
  optim::load(resumed_adam, dir / "adam.safetensors");
  CHECK(resumed_adam.lr() == 0.005);
  for (uint64_t step = 3; step < 6; ++step) train_step(*resumed, resumed_adam, step);
  CHECK(raw_state(*resumed) == raw_state(*model));
}

TEST_CASE("SGD momentum buffers survive a checkpoint") {
  TempDir dir;
  manual_seed(7);
  auto model = make_model();
  optim::SGD sgd(model->parameters(), {.lr = 0.1, .momentum = 0.9});
  train_step(*model, sgd, 0);
  optim::save(sgd, dir / "sgd.safetensors");
  optim::SGD restored(model->parameters(), {.lr = 0.1, .momentum = 0.9});
  optim::load(restored, dir / "sgd.safetensors");
  optim::NamedTensors a = sgd.state_dict(), b = restored.state_dict();
  REQUIRE(a.size() == model->parameters().size() + 3);  // + param_groups.0.lr, .weight_decay, .params
  REQUIRE(b.size() == a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(b[i].first == a[i].first);
    CHECK(b[i].second.to_vector() == a[i].second.to_vector());
  }
}

TEST_CASE("an optimizer checkpoint for another optimizer or other parameters is refused") {
  TempDir dir;
  manual_seed(8);
  auto model = make_model();
  optim::SGD sgd(model->parameters(), {.lr = 0.1, .momentum = 0.9});
  train_step(*model, sgd, 0);
  optim::save(sgd, dir / "sgd.safetensors");
  optim::Adam adam(model->parameters());
  train_step(*model, adam, 0);
  optim::save(adam, dir / "adam.safetensors");

  CHECK_THROWS_WITH_AS(optim::load(adam, dir / "sgd.safetensors"),
                       doctest::Contains("holds the state of SGD, but this optimizer is Adam"), Error);
  optim::Adam fewer({model->parameters()[0]});
  CHECK_THROWS_WITH_AS(optim::load(fewer, dir / "adam.safetensors"),
                       doctest::Contains("was saved for 6 parameters, but this optimizer has 1"), Error);
  auto wider = make_model(16, 3);
  optim::Adam wider_adam(wider->parameters());
  optim::NamedTensors before = wider_adam.state_dict();
  CHECK_THROWS_WITH_AS(
      optim::load(wider_adam, dir / "adam.safetensors"),
      doctest::Contains("Adam: state entry 'state.0.exp_avg' has shape [8, 4] float32; expected [16, 4] float32"),
      Error);
  CHECK(wider_adam.state_dict().size() == before.size());
  CHECK_THROWS_WITH_AS(optim::load(adam, dir / "model-that-does-not-exist"), doctest::Contains("cannot open"), Error);
  nn::save(*model, dir / "model.safetensors");
  CHECK_THROWS_WITH_AS(optim::load(adam, dir / "model.safetensors"),
                       doctest::Contains("no 'optimizer' in its __metadata__"), Error);
}
