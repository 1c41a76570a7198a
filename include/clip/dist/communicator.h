#pragma once
/// Collectives between the processes of a training job, on PyTorch's c10d (TCPStore rendezvous; Gloo on CPU,
/// NCCL on CUDA).
///
///   auto comm = clip::Communicator::create(clip::detect_dist_env(), {});   // nullptr for a single process
///   comm->allreduce_sum(tensors);
///
/// A rank that dies or stops progressing makes the others fail within the timeout; the error names it (every
/// rank records a heartbeat and its step in the store).
#include <ATen/core/Tensor.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "clip/dist/launch.h"

namespace clip {

/// Options of Communicator::create.
struct CommunicatorOptions {
  std::string backend = "auto";  ///< auto (NCCL for CUDA tensors, else Gloo) | gloo | nccl
  at::Device device = at::kCPU;  ///< where the tensors live
  std::chrono::seconds timeout{1800};
};

/// An asynchronous collective in flight.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  /// Blocks until done; throws clip::Error naming the missing rank on failure or timeout.
  virtual void wait() = 0;
};

/// Collectives of one rank of a job.
class Communicator {
 public:
  /// Connects to the job's other ranks; returns nullptr when the job has one process.
  static std::shared_ptr<Communicator> create(const DistEnv& env, const CommunicatorOptions& options);
  /// The c10d backends this build of libclip can start ("gloo", "nccl"): those LibTorch was built with whose
  /// headers were found when libclip was compiled.
  static std::vector<std::string> backends();
  virtual ~Communicator() = default;

  int rank() const { return rank_; }
  int size() const { return size_; }

  /// Starts an in-place sum over ranks of one tensor.
  virtual std::unique_ptr<PendingCollective> allreduce_sum_async(at::Tensor& tensor) = 0;
  /// In-place sum over ranks, waited for.
  void allreduce_sum(at::Tensor& tensor) { allreduce_sum_async(tensor)->wait(); }
  /// Copies `root`'s tensor into every rank's, in place.
  virtual void broadcast(at::Tensor& tensor, int root = 0) = 0;
  /// Every rank's [n, ...] tensor concatenated along dim 0, in rank order (same shape on every rank).
  virtual at::Tensor all_gather(const at::Tensor& local) = 0;
  /// Point-to-point exchange around the ring of ranks: tensors[i] goes to rank (rank + offsets[i]) mod size, and
  /// the i-th tensor returned comes from rank (rank - offsets[i]) mod size (every rank passes the same offsets and
  /// tensors of the same shapes). The transfers run at once and are waited for.
  virtual std::vector<at::Tensor> ring_shift(const std::vector<at::Tensor>& tensors, const std::vector<int>& offsets) = 0;
  virtual void barrier() = 0;
  /// Records this rank's progress (the step it is at), so a failure can name the rank that fell behind.
  virtual void record_step(int64_t step) = 0;
  /// Every rank's string, in rank order.
  std::vector<std::string> all_gather_strings(const std::string& mine);
  /// The device collectives run on (CPU for Gloo, the rank's GPU for NCCL).
  const at::Device& device() const { return device_; }

 protected:
  Communicator(int rank, int size, at::Device device) : rank_(rank), size_(size), device_(device) {}

 private:
  int rank_, size_;
  at::Device device_;
};

/// all_gather whose backward gives each rank the sum over ranks of the gradients of its own rows (open_clip's
/// gather_with_grad): with the loss computed on every rank, gradients then average to the global batch's.
at::Tensor all_gather_with_grad(Communicator& comm, const at::Tensor& local);

/// ring_shift whose backward sends each gradient back the way its tensor came (open_clip's
/// neighbour_exchange_with_grad): text features can travel around the ring and their gradients reach their rank.
std::vector<at::Tensor> ring_shift_with_grad(Communicator& comm, const std::vector<at::Tensor>& tensors,
                                             const std::vector<int>& offsets);

/// Copies every parameter and buffer of rank 0 to the other ranks (flattened per dtype).
void broadcast_module_state(Communicator& comm, std::vector<at::Tensor> tensors);

}  // namespace clip
