// scheduler.h: learning-rate schedules (PyTorch's torch.optim.lr_scheduler.StepLR and
// CosineAnnealingLR). A scheduler remembers the optimizer's learning rate when it is made (base_lr)
// and, at each step(), usually once per epoch, sets the optimizer's lr to its formula at the next
// epoch. As in PyTorch, construction counts as epoch 0 and leaves lr = base_lr.
#pragma once

#include <cstdint>

#include "optim/optimizer.h"

namespace ng::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler();
  // Moves to the next epoch and sets the optimizer's learning rate for it.
  void step();
  // The learning rate the last step() (or construction) set.
  double last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }

 protected:
  explicit LRScheduler(Optimizer& optimizer);
  // The learning rate at `epoch` (0, 1, 2, ...).
  virtual double lr_at(int64_t epoch) const = 0;

  Optimizer& optimizer_;
  double base_lr_;

 private:
  int64_t last_epoch_ = -1;
  double last_lr_ = 0;
};

// lr = base_lr * gamma^floor(epoch / step_size): divided by 1/gamma every step_size epochs.
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);

 private:
  double lr_at(int64_t epoch) const override;
  int64_t step_size_;
  double gamma_;
};

// lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / t_max)) / 2: half a cosine from base_lr
// down to eta_min over t_max epochs (and back up over the next t_max, as PyTorch's closed form).
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min = 0);

 private:
  double lr_at(int64_t epoch) const override;
  int64_t t_max_;
  double eta_min_;
};

}  // namespace ng::optim
