// quickstart: the API on one screen (the README shows this file). A two-layer net with
// BatchNorm learns y = x^3 - x from noisy samples; the loss printed every 200 steps falls.
#include <cstdio>
#include <string>

#include "normgrad.h"

int main(int argc, char** argv) {
  if (argc > 1) {  // no options: --help prints the usage, anything else is refused
    const bool help = std::string(argv[1]) == "--help";
    std::fputs("usage: quickstart   (no options: trains the net below and prints its loss)\n", help ? stdout : stderr);
    return help ? 0 : 2;
  }
  using namespace ng;
  manual_seed(0);
  Tensor x = rand({256, 1}) * 2.0 - 1.0;             // inputs in [-1, 1), shape [256, 1]
  Tensor y = x.pow(3) - x + 0.05 * randn({256, 1});  // targets: x^3 - x plus noise
  nn::Sequential net{std::make_shared<nn::Linear>(1, 32, nn::LinearOptions{.bias = false}),  // BN has its own shift
                     std::make_shared<nn::BatchNorm1d>(32), std::make_shared<nn::Tanh>(),
                     std::make_shared<nn::Linear>(32, 1)};
  optim::SGD sgd(net.parameters(), {.lr = 0.1, .momentum = 0.9});
  for (int step = 0; step <= 1000; ++step) {
    Tensor loss = nn::mse_loss(net(x), y);  // forward: builds the graph
    sgd.zero_grad();
    loss.backward();  // reverse mode through it
    sgd.step();
    if (step % 200 == 0) std::printf("step %4d  loss %.4f\n", step, loss.item());
  }
}
