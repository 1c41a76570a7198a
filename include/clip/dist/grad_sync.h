#pragma once
/// Gradient averaging across ranks in buckets that are all-reduced while the backward pass is still running.
///
///   clip::GradientSynchronizer sync(*comm, *model);   // hooks on every trainable parameter
///   sync.arm();             // before the step's last backward pass
///   loss.backward();        // full buckets are all-reduced as soon as their gradients exist
///   sync.finish();          // the rest, then every .grad holds the average over ranks
///
/// Parameters are grouped into buckets of about `bucket_bytes` in reverse registration order (the order their
/// gradients appear in the backward pass), as PyTorch's DDP does; buckets are launched strictly in order so that
/// every rank issues the same collectives in the same sequence.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "clip/dist/communicator.h"

namespace torch::nn {
class Module;
}

namespace clip {

/// Bucketed, overlapped gradient all-reduce over a module's trainable parameters.
class GradientSynchronizer {
 public:
  GradientSynchronizer(Communicator& comm, torch::nn::Module& module, int64_t bucket_bytes = 25 << 20);
  ~GradientSynchronizer();
  GradientSynchronizer(const GradientSynchronizer&) = delete;
  GradientSynchronizer& operator=(const GradientSynchronizer&) = delete;

  /// The next backward pass fills the buckets (earlier passes of the step just accumulate locally).
  void arm();
  /// Launches the buckets not launched yet, waits for all, and sets each .grad to the average over ranks.
  void finish();

  size_t num_buckets() const { return buckets_.size(); }
  /// Buckets launched from inside the last backward pass (the overlap); the rest were launched by finish().
  size_t launched_during_backward() const { return launched_in_backward_; }

 private:
  struct Bucket {
    at::Tensor flat;
    std::vector<size_t> params;  // indices into params_
    size_t ready = 0;
    std::unique_ptr<PendingCollective> pending;
  };
  struct Param {
    at::Tensor tensor;
    size_t bucket;
    int64_t offset;
    unsigned hook = 0;
    bool ready = false;
  };
  void on_gradient(size_t param, const at::Tensor& grad);
  void launch_ready_buckets();

  Communicator& comm_;
  std::vector<Param> params_;
  std::vector<Bucket> buckets_;
  size_t next_to_launch_ = 0;
  size_t launched_in_backward_ = 0;
  bool armed_ = false;
};

}  // namespace clip
