// scheduler.cpp: StepLR and CosineAnnealingLR, each a closed-form function of the epoch.
#include "optim/scheduler.h"

#include <cmath>
#include <numbers>

namespace ng::optim {

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer), base_lr_(optimizer.lr()) {}
LRScheduler::~LRScheduler() = default;

void LRScheduler::step() {
  ++last_epoch_;
  last_lr_ = lr_at(last_epoch_);
  optimizer_.set_lr(last_lr_);
}

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  if (step_size <= 0) throw Error("StepLR: step_size " + std::to_string(step_size) + " must be >= 1");
  // A negative gamma would make every other period's learning rate negative.
  if (!(gamma >= 0)) throw Error("StepLR: gamma " + std::to_string(gamma) + " must be >= 0");
  step();  // epoch 0
}

// lr = base_lr * gamma^floor(epoch / step_size)
double StepLR::lr_at(int64_t epoch) const {
  return base_lr_ * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min)
    : LRScheduler(optimizer), t_max_(t_max), eta_min_(eta_min) {
  if (t_max <= 0) throw Error("CosineAnnealingLR: t_max " + std::to_string(t_max) + " must be >= 1");
  if (!(eta_min >= 0)) throw Error("CosineAnnealingLR: eta_min " + std::to_string(eta_min) + " must be >= 0 (a learning rate)");
  step();  // epoch 0
}

// lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / t_max)) / 2
double CosineAnnealingLR::lr_at(int64_t epoch) const {
  double angle = std::numbers::pi * static_cast<double>(epoch) / static_cast<double>(t_max_);
  return eta_min_ + (base_lr_ - eta_min_) * (1 + std::cos(angle)) / 2;
}

}  // namespace ng::optim
