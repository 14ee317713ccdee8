// scheduler.h: learning-rate schedules (PyTorch's torch.optim.lr_scheduler.StepLR,
// CosineAnnealingLR and LambdaLR). A scheduler remembers each param group's learning rate when it is
// made (its base_lr) and, at each step(), usually once per epoch (or once per batch), sets each group's
// lr to the formula at the next epoch, from that group's base_lr. As in PyTorch, construction counts as
// epoch 0 and sets the formula's lr at epoch 0 (base_lr for StepLR and CosineAnnealingLR).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "optim/optimizer.h"

namespace ng::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler();
  // Moves to the next epoch and sets every group's learning rate for it.
  void step();
  // The learning rate the last step() (or construction) set: for the first group, and for each group
  // (PyTorch's get_last_lr()).
  double last_lr() const { return last_lrs_[0]; }
  const std::vector<double>& last_lrs() const { return last_lrs_; }
  int64_t last_epoch() const { return last_epoch_; }

 protected:
  explicit LRScheduler(Optimizer& optimizer);
  // The learning rate at `epoch` (0, 1, 2, ...) of a group that started at base_lr.
  virtual double lr_at(int64_t epoch, double base_lr) const = 0;

  Optimizer& optimizer_;

 private:
  std::vector<double> base_lrs_;  // per param group
  int64_t last_epoch_ = -1;
  std::vector<double> last_lrs_;
};

// lr = base_lr * gamma^floor(epoch / step_size): divided by 1/gamma every step_size epochs.
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);

 private:
  double lr_at(int64_t epoch, double base_lr) const override;
  int64_t step_size_;
  double gamma_;
};

// lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / t_max)) / 2: half a cosine from base_lr
// down to eta_min over t_max epochs (and back up over the next t_max, as PyTorch's closed form).
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min = 0);

 private:
  double lr_at(int64_t epoch, double base_lr) const override;
  int64_t t_max_;
  double eta_min_;
};

// lr = base_lr * factor(epoch), for each group: any schedule written as a function, such as a linear
// warmup followed by a cosine decay. factor must give a finite number >= 0 (an Error from step()
// otherwise, the learning rates unchanged).
//   optim::LambdaLR schedule(opt, [](int64_t step) { return step < 100 ? (step + 1) / 100.0 : 1.0; });
class LambdaLR : public LRScheduler {
 public:
  LambdaLR(Optimizer& optimizer, std::function<double(int64_t)> factor);

 private:
  double lr_at(int64_t epoch, double base_lr) const override;
  std::function<double(int64_t)> factor_;
};

}  // namespace ng::optim
