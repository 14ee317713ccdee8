// scheduler.cpp: StepLR, CosineAnnealingLR and LambdaLR, each a closed-form function of the epoch and
// a group's base_lr.
#include "optim/scheduler.h"

#include <cmath>
#include <numbers>

namespace ng::optim {

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer) {
  for (const Optimizer::Group& group : optimizer.param_groups()) base_lrs_.push_back(group.lr);
}
LRScheduler::~LRScheduler() = default;

void LRScheduler::step() {
  // Every group's new lr first, so that an Error from lr_at changes nothing.
  std::vector<double> lrs;
  for (double base_lr : base_lrs_) lrs.push_back(lr_at(last_epoch_ + 1, base_lr));
  for (std::size_t g = 0; g < lrs.size(); ++g) optimizer_.set_lr(g, lrs[g]);
  ++last_epoch_;
  last_lrs_ = std::move(lrs);
}

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  if (step_size <= 0) throw Error("StepLR: step_size " + std::to_string(step_size) + " must be >= 1");
  // A negative gamma would make every other period's learning rate negative.
  if (!(gamma >= 0)) throw Error("StepLR: gamma " + std::to_string(gamma) + " must be >= 0");
  step();  // epoch 0
}

// lr = base_lr * gamma^floor(epoch / step_size)
double StepLR::lr_at(int64_t epoch, double base_lr) const {
  return base_lr * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min)
    : LRScheduler(optimizer), t_max_(t_max), eta_min_(eta_min) {
  if (t_max <= 0) throw Error("CosineAnnealingLR: t_max " + std::to_string(t_max) + " must be >= 1");
  if (!(eta_min >= 0))
    throw Error("CosineAnnealingLR: eta_min " + std::to_string(eta_min) + " must be >= 0 (a learning rate)");
  step();  // epoch 0
}

// lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / t_max)) / 2
double CosineAnnealingLR::lr_at(int64_t epoch, double base_lr) const {
  double angle = std::numbers::pi * static_cast<double>(epoch) / static_cast<double>(t_max_);
  return eta_min_ + (base_lr - eta_min_) * (1 + std::cos(angle)) / 2;
}

LambdaLR::LambdaLR(Optimizer& optimizer, std::function<double(int64_t)> factor)
    : LRScheduler(optimizer), factor_(std::move(factor)) {
  if (!factor_) throw Error("LambdaLR: factor is an empty function; expected a function of the epoch");
  step();  // epoch 0
}

// lr = base_lr * factor(epoch)
double LambdaLR::lr_at(int64_t epoch, double base_lr) const {
  const double f = factor_(epoch);
  if (!(std::isfinite(f) && f >= 0))
    throw Error("LambdaLR: factor(" + std::to_string(epoch) + ") = " + std::to_string(f) +
                "; expected a finite factor >= 0");
  return base_lr * f;
}

}  // namespace ng::optim
