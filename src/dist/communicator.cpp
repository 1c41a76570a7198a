#include "clip/dist/communicator.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
// A backend is compiled in when the configure found it (cmake/Features.cmake: LibTorch built with it, and its
// library's headers; pip wheels ship no gloo headers, Debian's libgloo-dev has them).
#include "clip_features.h"
#if CLIP_WITH_GLOO
#if !defined(USE_C10D_GLOO)
#error "CLIP_WITH_GLOO is on but LibTorch's USE_C10D_GLOO is not defined (cmake/Features.cmake and LibTorch disagree)"
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if CLIP_WITH_NCCL
#if !defined(USE_C10D_NCCL)
#error "CLIP_WITH_NCCL is on but LibTorch's USE_C10D_NCCL is not defined (cmake/Features.cmake and LibTorch disagree)"
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <condition_variable>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "clip/util/error.h"

namespace clip {
namespace {

using namespace std::chrono_literals;

// Heartbeat keys; under torchrun's agent store, below this attempt's prefix like every other key of the job.
std::string key(const DistEnv& env, const char* what, int rank) {
  return env.store_prefix + "/clip/" + what + "/" + std::to_string(rank);
}

std::vector<uint8_t> bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// Every rank publishes "<beats>:<step>" every second from its own store connection, so that a failed collective
// can tell which rank stopped (no new beats) or fell behind (the lowest step).
class Heartbeat {
 public:
  Heartbeat(const DistEnv& env, std::chrono::milliseconds timeout) : env_(env) {
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(env.master_port);
    o.isServer = false;
    o.waitWorkers = false;
    o.timeout = timeout;
    store_ = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
    thread_ = std::thread([this] { run(); });
  }
  ~Heartbeat() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  void set_step(int64_t step) { step_ = step; }

  // Names the rank(s) that stopped beating or lag behind; "" when it cannot tell.
  std::string diagnose() {
    try {
      c10d::TCPStoreOptions o;
      o.port = static_cast<uint16_t>(env_.master_port);
      o.isServer = false;
      o.waitWorkers = false;
      o.timeout = 10s;
      auto probe = c10::make_intrusive<c10d::TCPStore>(env_.master_addr, o);
      auto read = [&] {
        std::vector<std::pair<int64_t, int64_t>> state(size_t(env_.world_size), {-1, -1});
        for (int r = 0; r < env_.world_size; ++r) {
          if (!probe->check({key(env_, "alive", r)})) continue;
          const auto v = probe->get(key(env_, "alive", r));
          const std::string s(v.begin(), v.end());
          const auto colon = s.find(':');
          state[size_t(r)] = {std::stoll(s.substr(0, colon)), std::stoll(s.substr(colon + 1))};
        }
        return state;
      };
      const auto before = read();
      std::this_thread::sleep_for(3s);
      const auto after = read();
      std::string dead, behind;
      int64_t max_step = 0;
      for (const auto& s : after) max_step = std::max(max_step, s.second);
      for (int r = 0; r < env_.world_size; ++r) {
        if (r == env_.rank) continue;
        if (after[size_t(r)].first < 0 || after[size_t(r)].first == before[size_t(r)].first) {
          dead += (dead.empty() ? "" : ", ") + std::to_string(r);
        } else if (after[size_t(r)].second < max_step) {
          behind += str(behind.empty() ? "" : ", ", r, " (at step ", after[size_t(r)].second, ")");
        }
      }
      if (!dead.empty()) return "rank " + dead + " stopped responding (no heartbeat)";
      if (!behind.empty()) return str("rank ", behind, " fell behind the others (step ", max_step, ")");
      return "";
    } catch (const std::exception&) {
      return env_.rank == 0 ? "" : "rank 0, which hosts the rendezvous store, is gone";
    }
  }

 private:
  void run() {
    int64_t beats = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
      lock.unlock();
      try {
        store_->set(key(env_, "alive", env_.rank), bytes(std::to_string(++beats) + ":" + std::to_string(step_.load())));
      } catch (const std::exception&) {
        // The store is gone: the main thread's next collective reports it.
      }
      lock.lock();
      wake_.wait_for(lock, 1s, [this] { return stop_; });
    }
  }

  DistEnv env_;
  c10::intrusive_ptr<c10d::TCPStore> store_;
  std::atomic<int64_t> step_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

// A c10d backend (ProcessGroupGloo, ProcessGroupNCCL) behind our interface; the same calls exist on both in
// LibTorch 1.13 (where they derive from ProcessGroup) and 2.x (where they derive from Backend).
template <typename Backend>
class C10dCommunicator : public Communicator {
 public:
  C10dCommunicator(const DistEnv& env, c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<Backend> backend,
                   std::chrono::milliseconds timeout, at::Device device)
      : Communicator(env.rank, env.world_size, device),
        store_(std::move(store)),
        backend_(std::move(backend)),
        heartbeat_(std::make_unique<Heartbeat>(env, timeout)) {}

  class Pending : public PendingCollective {
   public:
    Pending(C10dCommunicator* owner, c10::intrusive_ptr<c10d::Work> work, const char* what)
        : owner_(owner), work_(std::move(work)), what_(what) {}
    void wait() override { owner_->wait(work_, what_); }

   private:
    C10dCommunicator* owner_;
    c10::intrusive_ptr<c10d::Work> work_;
    const char* what_;
  };

  std::unique_ptr<PendingCollective> allreduce_sum_async(at::Tensor& tensor) override {
    std::vector<at::Tensor> tensors{tensor};
    return std::make_unique<Pending>(this, guarded([&] { return backend_->allreduce(tensors); }, "all-reduce"),
                                     "all-reduce");
  }

  void broadcast(at::Tensor& tensor, int root) override {
    std::vector<at::Tensor> tensors{tensor};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    wait(guarded([&] { return backend_->broadcast(tensors, o); }, "broadcast"), "broadcast");
  }

  at::Tensor all_gather(const at::Tensor& local) override {
    std::vector<at::Tensor> input{local.contiguous()};
    std::vector<std::vector<at::Tensor>> output(1);
    for (int r = 0; r < size(); ++r) output[0].push_back(at::empty_like(input[0]));
    wait(guarded([&] { return backend_->allgather(output, input); }, "all-gather"), "all-gather");
    return at::cat(output[0], 0);
  }

  std::vector<at::Tensor> ring_shift(const std::vector<at::Tensor>& tensors, const std::vector<int>& offsets) override {
    TORCH_CHECK(tensors.size() == offsets.size(), "ring_shift: one offset per tensor");
    const int n = size();
    std::vector<std::vector<at::Tensor>> sends(tensors.size()), recvs(tensors.size());
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    // Per peer, the lower rank sends before it receives and the higher rank receives first: NCCL runs one peer
    // pair's transfers in order on one stream, so two ranks that both sent first would wait on each other.
    // Tags keep two transfers between the same pair apart (Gloo matches on them).
    const auto to = [&](size_t i) { return ((rank() + offsets[i]) % n + n) % n; };
    const auto from = [&](size_t i) { return ((rank() - offsets[i]) % n + n) % n; };
    auto send = [&](size_t i) {
      sends[i] = {tensors[i].contiguous()};
      works.push_back(guarded([&] { return backend_->send(sends[i], to(i), static_cast<int>(i)); }, "send"));
    };
    auto recv = [&](size_t i) {
      recvs[i] = {at::empty_like(tensors[i], at::MemoryFormat::Contiguous)};
      works.push_back(guarded([&] { return backend_->recv(recvs[i], from(i), static_cast<int>(i)); }, "receive"));
    };
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (rank() < to(i)) send(i);
      if (rank() > from(i)) recv(i);
    }
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (rank() >= to(i)) send(i);
      if (rank() <= from(i)) recv(i);
    }
    for (const auto& work : works) wait(work, "ring exchange");
    std::vector<at::Tensor> out;
    for (auto& r : recvs) out.push_back(r[0]);
    return out;
  }

  void barrier() override { wait(guarded([&] { return backend_->barrier(); }, "barrier"), "barrier"); }

  void record_step(int64_t step) override { heartbeat_->set_step(step); }

  [[noreturn]] void failed(const std::exception& e, const char* what) {
    const std::string reason = error_message(e);
    const std::string who = heartbeat_->diagnose();
    fail("rank ", rank(), ": ", what, " failed: ", who.empty() ? reason : who + " (" + reason + ")",
         "; the job cannot continue");
  }

  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
    try {
      work->wait();
    } catch (const std::exception& e) {
      failed(e, what);
    }
  }

  template <typename F>
  c10::intrusive_ptr<c10d::Work> guarded(F start, const char* what) {
    try {
      return start();
    } catch (const std::exception& e) {
      failed(e, what);
    }
  }

 private:
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<Backend> backend_;
  std::unique_ptr<Heartbeat> heartbeat_;
};

// Backward of all_gather_with_grad: sum every rank's gradient of the gathered matrix, keep this rank's rows.
class GatherWithGrad : public torch::autograd::Function<GatherWithGrad> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& local, Communicator* comm) {
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(comm);
    ctx->saved_data["rows"] = local.size(0);
    return comm->all_gather(local);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto* comm = reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt());
    const int64_t rows = ctx->saved_data["rows"].toInt();
    at::Tensor total = grads[0].contiguous().clone();
    comm->allreduce_sum(total);
    return {total.narrow(0, comm->rank() * rows, rows), at::Tensor()};
  }
};

// Backward of ring_shift_with_grad: each gradient goes back to the rank its tensor came from.
class RingShiftWithGrad : public torch::autograd::Function<RingShiftWithGrad> {
 public:
  static torch::autograd::tensor_list forward(torch::autograd::AutogradContext* ctx, Communicator* comm,
                                              const std::vector<int64_t>& offsets, at::TensorList tensors) {
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(comm);
    ctx->saved_data["offsets"] = offsets;
    return comm->ring_shift(tensors.vec(), std::vector<int>(offsets.begin(), offsets.end()));
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto* comm = reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt());
    std::vector<int> back;
    for (int64_t o : ctx->saved_data["offsets"].toIntVector()) back.push_back(static_cast<int>(-o));
    // An output the loss did not use arrives as zeros (materialized grads): its sender still waits for one.
    torch::autograd::tensor_list result = comm->ring_shift(grads, back);
    result.insert(result.begin(), {at::Tensor(), at::Tensor()});
    return result;
  }
};

}  // namespace

std::shared_ptr<Communicator> Communicator::create(const DistEnv& env, const CommunicatorOptions& options) {
  if (env.world_size <= 1) return nullptr;
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(options.timeout);
  c10::intrusive_ptr<c10d::Store> store;
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(env.master_port);
    o.isServer = env.rank == 0 && !env.agent_store;  // under torchrun's agent store, the agent is the server
    o.numWorkers = env.world_size;
    o.waitWorkers = true;
    o.timeout = timeout;
    store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
    if (env.agent_store) store = c10::make_intrusive<c10d::PrefixStore>(env.store_prefix, store);
  } catch (const std::exception& e) {
    fail("rank ", env.rank, ": rendezvous at ", env.master_addr, ":", env.master_port, " failed (", error_message(e),
         "); check MASTER_ADDR/MASTER_PORT and that all ", env.world_size, " ranks started");
  }
  const std::string backend = options.backend == "auto" ? (options.device.is_cuda() ? "nccl" : "gloo") : options.backend;
  try {
    if (backend == "gloo") {
#if CLIP_WITH_GLOO
      auto o = c10d::ProcessGroupGloo::Options::create(timeout);
      // GLOO_SOCKET_IFNAME (as PyTorch reads it; several comma-separated): the interfaces Gloo's traffic takes on
      // a host with several networks; else the address this host's name resolves to (loopback when it resolves
      // to none).
      if (const char* names = std::getenv("GLOO_SOCKET_IFNAME"); names != nullptr && *names != '\0') {
        std::stringstream list(names);
        for (std::string name; std::getline(list, name, ',');) {
          if (!name.empty()) o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
        }
      }
      if (o->devices.empty()) o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, o);
      return std::make_shared<C10dCommunicator<c10d::ProcessGroupGloo>>(env, store, pg, timeout, at::Device(at::kCPU));
#else
      fail("--dist-backend gloo: this libclip was built without Gloo (CLIP_WITH_GLOO: a LibTorch with it and gloo's "
           "headers); use nccl on GPUs");
#endif
    }
    if (backend == "nccl") {
#if CLIP_WITH_NCCL
      // A failed or timed-out collective must surface as an exception in this thread, where the heartbeat
      // diagnosis runs (Communicator's wait), not as the watchdog's abort of the process (LibTorch 2.x's default,
      // 3 = SkipCleanUp). 2 = CleanUpOnly: the watchdog aborts the communicators and the next wait or collective
      // throws. Read at construction; a value the user set is kept. Compiled; not yet run on a GPU.
      ::setenv("TORCH_NCCL_ASYNC_ERROR_HANDLING", "2", /*overwrite=*/0);
      ::setenv("NCCL_ASYNC_ERROR_HANDLING", "2", /*overwrite=*/0);  // LibTorch 1.13's name
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = timeout;
      auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, o);
      return std::make_shared<C10dCommunicator<c10d::ProcessGroupNCCL>>(env, store, pg, timeout, options.device);
#else
      fail("--dist-backend nccl: this libclip was built without NCCL (CLIP_WITH_NCCL: a CUDA LibTorch with it and "
           "nccl.h); use gloo on CPUs, or rebuild with NCCL's headers installed");
#endif
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("rank ", env.rank, ": cannot start the ", backend, " process group (", error_message(e), ")");
  }
  fail("--dist-backend '", options.backend, "': expected auto, gloo or nccl");
}

std::vector<std::string> Communicator::backends() {
  std::vector<std::string> names;
  if (CLIP_WITH_GLOO) names.emplace_back("gloo");
  if (CLIP_WITH_NCCL) names.emplace_back("nccl");
  return names;
}

std::vector<std::string> Communicator::all_gather_strings(const std::string& mine) {
  // Lengths first, then the bytes padded to the longest.
  const at::Tensor lengths =
      all_gather(at::full({1}, static_cast<int64_t>(mine.size()), at::TensorOptions().dtype(at::kLong).device(device_)))
          .to(at::kCPU);
  const int64_t longest = lengths.max().item<int64_t>();
  at::Tensor padded = at::zeros({longest + 1}, at::kByte);
  std::memcpy(padded.data_ptr(), mine.data(), mine.size());
  const at::Tensor all = all_gather(padded.to(device_)).to(at::kCPU).view({size(), longest + 1});
  std::vector<std::string> out;
  for (int r = 0; r < size(); ++r) {
    out.emplace_back(reinterpret_cast<const char*>(all[r].data_ptr<uint8_t>()), size_t(lengths[r].item<int64_t>()));
  }
  return out;
}

at::Tensor all_gather_with_grad(Communicator& comm, const at::Tensor& local) {
  return GatherWithGrad::apply(local, &comm);
}

std::vector<at::Tensor> ring_shift_with_grad(Communicator& comm, const std::vector<at::Tensor>& tensors,
                                             const std::vector<int>& offsets) {
  // A TensorList argument, so that autograd sees each tensor as an input.
  return RingShiftWithGrad::apply(&comm, std::vector<int64_t>(offsets.begin(), offsets.end()), at::TensorList(tensors));
}

void broadcast_module_state(Communicator& comm, std::vector<at::Tensor> tensors) {
  // One broadcast per (dtype, device) group of flattened tensors.
  std::map<std::pair<int, std::string>, std::vector<at::Tensor>> groups;
  for (auto& t : tensors) {
    if (t.defined() && t.numel() > 0) groups[{int(t.scalar_type()), t.device().str()}].push_back(t);
  }
  at::NoGradGuard no_grad;
  for (auto& [kind, group] : groups) {
    std::vector<at::Tensor> flat;
    for (const auto& t : group) flat.push_back(t.reshape(-1));
    at::Tensor buffer = at::cat(flat);
    comm.broadcast(buffer, 0);
    int64_t offset = 0;
    for (auto& t : group) {
      t.copy_(buffer.narrow(0, offset, t.numel()).view_as(t));
      offset += t.numel();
    }
  }
}

}  // namespace clip
