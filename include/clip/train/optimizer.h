#pragma once
/// AdamW with open_clip's parameter groups, and the learning-rate schedule.
///
///   clip::AdamW opt(*model, clip::default_adamw_options(model->config()).lr(5e-4));
///   opt.set_lr(clip::cosine_lr(step, base_lr, warmup, total));
///   loss.backward(); opt.step(); opt.zero_grad();
///
/// Decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW. Parameters with fewer than 2 dimensions
/// and names containing `bn`, `ln`, `bias` or `logit_scale` get no weight decay (open_clip's rule). State is kept
/// per parameter name, so it can be saved and restored with the model's state dict.
///
/// Sharded (ZeRO stage 1, `clip_train --shard-optimizer`): given a Communicator, the trainable parameters are
/// laid end to end (registration order, flattened) and each of the N ranks keeps Adam's moments only for its
/// contiguous 1/N of the elements. step() updates that share from the gradients (already averaged over ranks by
/// the GradientSynchronizer) and all-gathers the parameters, so every rank ends with the same weights as an
/// unsharded AdamW would give, element for element. state_dict() is then a collective that returns the whole
/// state in the unsharded layout, so checkpoints depend neither on sharding nor on the number of ranks.
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <string>
#include <vector>

#include "clip/io/tensor_map.h"
#include "clip/model/config.h"

namespace torch::nn {
class Module;
}

namespace clip {

class Communicator;

/// Options of AdamW.
struct AdamWOptions {
  TORCH_ARG(double, lr) = 5e-4;
  TORCH_ARG(double, beta1) = 0.9;
  TORCH_ARG(double, beta2) = 0.98;
  TORCH_ARG(double, eps) = 1e-6;
  TORCH_ARG(double, weight_decay) = 0.2;
};

/// open_clip's defaults: lr 5e-4, weight decay 0.2; betas 0.9/0.98 and eps 1e-6 for ViTs, 0.9/0.999 and 1e-8
/// for ResNets.
AdamWOptions default_adamw_options(const ModelConfig& config);

/// open_clip's exclusion rule: no weight decay for this parameter.
bool excluded_from_weight_decay(const std::string& name, const at::Tensor& parameter);

/// AdamW over a module's trainable parameters (requires_grad at construction).
class AdamW {
 public:
  /// `shard`: a Communicator of several ranks to shard the state over (ZeRO-1); nullptr keeps it all here.
  /// `gather_elements`: sharded, the parameters are all-gathered after each update this many elements at a time
  /// (all ranks' slices together; 2^24 = 64 MB of fp32), which bounds the memory in flight.
  AdamW(torch::nn::Module& module, const AdamWOptions& options, Communicator* shard = nullptr,
        int64_t gather_elements = int64_t{1} << 24);

  /// One update from the current gradients; parameters without a gradient are skipped.
  void step();
  /// Sets every gradient to None.
  void zero_grad();
  void set_lr(double lr) { options_.lr(lr); }
  double lr() const { return options_.lr(); }
  int64_t steps_taken() const { return step_; }

  /// The state as named tensors: `<param>.exp_avg`, `<param>.exp_avg_sq`, and `step` (int64 scalar). Sharded:
  /// a collective every rank must call at the same point; each gets the whole state.
  TensorMap state_dict() const;
  /// Restores state_dict()'s output (sharded: each rank keeps its share of it); every key and shape checked
  /// (clip::Error naming `source`).
  void load_state_dict(const TensorMap& state, const std::string& source);

  /// Bytes of optimizer state this rank holds (Adam's two moments).
  int64_t state_bytes() const;
  bool sharded() const { return shard_ != nullptr; }

 private:
  // One parameter, or (sharded) the part of it that falls in this rank's share: elements [begin, begin + length)
  // of the flattened parameter, which starts at `offset` in the ranks' common flat layout.
  struct Param {
    std::string name;
    at::Tensor tensor;
    bool decay;
    at::Tensor exp_avg, exp_avg_sq;  // [length] when sharded, else the parameter's shape
    int64_t offset = 0, begin = 0, length = 0;
  };
  void gather_parameters();
  template <typename F>
  static void for_each_overlap(const std::vector<Param>& list, int64_t begin, int64_t count, F&& f);
  std::vector<Param> params_;   // sharded: only the parameters that overlap this rank's share
  std::vector<Param> all_;      // sharded: every trainable parameter with its offset (for the all-gathers)
  AdamWOptions options_;
  int64_t step_ = 0;
  Communicator* shard_ = nullptr;
  int64_t shard_size_ = 0;      // elements per rank (the last rank's share is padded)
  int64_t gather_elements_;
};

/// open_clip's cosine schedule: linear warmup to base_lr over `warmup` steps ((step + 1) / warmup), then
/// 0.5 (1 + cos(pi (step - warmup) / (total - warmup))) base_lr.
double cosine_lr(int64_t step, double base_lr, int64_t warmup, int64_t total);

/// Constant after the same linear warmup.
double constant_lr(int64_t step, double base_lr, int64_t warmup);

}  // namespace clip
