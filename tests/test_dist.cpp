// Distributed training on CPU over Gloo: two ranks with batch b equal one process with batch 2b (loss, gradients
// and the parameters after one step, with and without the local loss, ViT and ResNet); the bucketed all-reduce
// equals a plain average and overlaps the backward pass; the launcher variables; a killed rank is named; the
// spawner end to end.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "clip/dist/communicator.h"
#include "clip/dist/grad_sync.h"
#include "clip/dist/launch.h"
#include "clip/model/checkpoint.h"
#include "clip/io/safetensors.h"
#include "clip/train/loss.h"
#include "clip/train/train_state.h"
#include "clip/train/optimizer.h"
#include "clip/train/step.h"
#include "clip/util/error.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

// Runs fn(rank, comm) on `world` threads joined into one Gloo job.
void run_ranks(int world, const std::function<void(int, clip::Communicator&)>& fn) {
  const int port = clip::free_tcp_port();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(static_cast<size_t>(world));
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        clip::DistEnv env;
        env.rank = rank;
        env.world_size = world;
        env.master_port = port;
        clip::CommunicatorOptions o;
        o.backend = "gloo";
        o.timeout = std::chrono::seconds(60);
        auto comm = clip::Communicator::create(env, o);
        fn(rank, *comm);
      } catch (const std::exception& e) {
        errors[size_t(rank)] = clip::error_message(e);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int rank = 0; rank < world; ++rank) EXPECT_EQ(errors[size_t(rank)], "") << "rank " << rank;
}

struct StepResult {
  double loss = 0;
  clip::TensorMap grads, params;
  size_t buckets = 0, launched_during_backward = 0;
};

clip::CLIP fixture_model(const std::string& name) {
  clip::CLIP model = clip::load_model(clip::test::data(name + ".safetensors"),
                                      clip::LoadOptions().config_path(clip::test::data(name + ".json")));
  // ViT: train mode (no BatchNorm). ResNet: eval mode, since per-rank BatchNorm statistics of b samples differ
  // from one process's statistics of 2b by design (DDP without SyncBatchNorm does the same).
  model->train(name == "vit_tiny");
  return model;
}

// AdamW with eps 1e-3: Adam's first step moves an element by lr * g / (|g| + eps), so with eps 1e-6 a gradient at
// float-noise level (1e-8, whose sign the summation order decides) moves by up to lr either way, and two correct
// runs differ by ~3e-5 (measured). A larger eps keeps that amplification out of a test of the distribution itself;
// the gradients are compared directly as well.
StepResult one_step(clip::CLIPImpl& model, const at::Tensor& images, const at::Tensor& texts, int64_t accum,
                    const clip::DistributedStep& dist, bool local_loss = false, bool siglip = false) {
  clip::AdamW optimizer(model, clip::AdamWOptions().lr(1e-3).beta2(0.98).eps(1e-3).weight_decay(0.2));
  StepResult r;
  clip::StepOptions options;
  options.accum_freq = accum;
  const clip::InfoNCELoss infonce(local_loss);
  const clip::SigLipLoss sigmoid;
  const clip::Loss& loss = siglip ? static_cast<const clip::Loss&>(sigmoid) : infonce;
  r.loss = clip::contrastive_backward(model, loss, images, texts, options, dist).item<double>();
  for (const auto& item : model.named_parameters()) r.grads[item.key()] = item.value().grad().clone();
  optimizer.step();
  for (const auto& item : model.named_parameters()) r.params[item.key()] = item.value().detach().clone();
  if (dist.sync) {
    r.buckets = dist.sync->num_buckets();
    r.launched_during_backward = dist.sync->launched_during_backward();
  }
  return r;
}

struct Case {
  std::string model;
  bool local_loss;
  int64_t accum;
  bool siglip = false;  // SigLipLoss (each rank returns its share, like the local loss)
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.model << (c.siglip ? " siglip" : c.local_loss ? " local loss" : " global loss") << " accum " << c.accum;
}

class TwoRanks : public testing::TestWithParam<Case> {};

TEST_P(TwoRanks, EqualOneProcessWithTheGlobalBatch) {
  const Case c = GetParam();
  const clip::TensorMap batch = clip::read_safetensors(clip::test::data(c.model + ".train_grad.safetensors")).tensors;
  const at::Tensor images = batch.at("image"), texts = batch.at("text");  // 4 samples: 2 per rank
  clip::CLIP single = fixture_model(c.model);
  const StepResult expected = one_step(*single, images, texts, c.accum, {}, false, c.siglip);

  std::vector<StepResult> results(2);
  run_ranks(2, [&](int rank, clip::Communicator& comm) {
    clip::CLIP model = fixture_model(c.model);
    clip::GradientSynchronizer sync(comm, *model, /*bucket_bytes=*/64 << 10);  // several buckets
    clip::DistributedStep dist;
    dist.comm = &comm;
    dist.sync = &sync;
    results[size_t(rank)] =
        one_step(*model, images.narrow(0, 2 * rank, 2), texts.narrow(0, 2 * rank, 2), c.accum, dist, c.local_loss,
                 c.siglip);
  });
  const double loss = c.local_loss || c.siglip ? (results[0].loss + results[1].loss) / 2 : results[0].loss;
  EXPECT_NEAR(loss, expected.loss, 1e-5 * std::abs(expected.loss));
  double worst_grad = 0, worst_param = 0;
  for (const auto& [name, g] : expected.grads) {
    for (const auto& r : results) {
      worst_grad = std::max(worst_grad, clip::test::gradient_difference(r.grads.at(name), g));
      worst_param = std::max(worst_param, (r.params.at(name) - expected.params.at(name)).abs().max().item<double>());
    }
  }
  std::printf("[ measured ] %s, %s, accum %lld: loss %.6f vs %.6f, worst gradient difference %.3g "
              "(relative), worst parameter difference after one step %.3g; %zu buckets, %zu launched during backward\n",
              c.model.c_str(), c.siglip ? "siglip" : c.local_loss ? "infonce local loss" : "infonce",
              static_cast<long long>(c.accum), loss, expected.loss, worst_grad,
              worst_param, results[0].buckets, results[0].launched_during_backward);
  // fp32 sums in another order (two half-batch gradients averaged, and with the local loss each rank's own
  // logits): 6e-7 to 1.7e-6 for the global loss, 1.0e-5 for rn_tiny's local loss on some CPUs. A wrong gradient
  // (a rank's rows dropped, a missing average) is off by more than 10%.
  EXPECT_LT(worst_grad, 5e-5);
  EXPECT_LT(worst_param, 1e-5);
  EXPECT_GT(results[0].buckets, 1u);
  EXPECT_GT(results[0].launched_during_backward, 0u) << "buckets are launched before backward ends";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TwoRanks,
                         testing::Values(Case{"vit_tiny", false, 1}, Case{"vit_tiny", true, 1},
                                         Case{"rn_tiny", false, 1}, Case{"rn_tiny", true, 1},
                                         Case{"vit_tiny", false, 2}, Case{"vit_tiny", false, 1, true},
                                         Case{"rn_tiny", false, 1, true}, Case{"vit_tiny", false, 2, true}));

// SigLIP's loss against open_clip's SigLipLoss (tests/data/make_siglip_loss.py: 12 random feature pairs, logit
// scale 2, bias -3): one process over the batch, and W = 2, 3, 4 ranks exchanging text blocks around the ring.
// Each rank's loss must equal what open_clip's rank r returns (its SigLipLoss._loss terms); the ranks' gradients,
// combined as the trainer combines them (features: each rank's rows; scale and bias: averaged over ranks, as the
// gradient all-reduce does; a rank's feature gradient is W times the global loss's, since each rank's loss is
// divided by its own batch), must equal open_clip's. Tolerance 1e-5 relative (fp32 sums in another order).
const clip::TensorMap& siglip_reference() {
  static const clip::TensorMap ref = clip::read_safetensors(clip::test::data("siglip_loss.safetensors")).tensors;
  return ref;
}

struct SigLipGrads {
  at::Tensor loss, image, text, scale, bias;
};

SigLipGrads siglip_on(const at::Tensor& image, const at::Tensor& text, clip::Communicator* comm) {
  const clip::TensorMap& ref = siglip_reference();
  SigLipGrads g;
  at::Tensor img = image.clone().requires_grad_(), txt = text.clone().requires_grad_();
  at::Tensor scale = ref.at("logit_scale").clone().requires_grad_(), bias = ref.at("logit_bias").clone().requires_grad_();
  g.loss = clip::SigLipLoss()({img, txt, scale, bias}, comm);
  g.loss.backward();
  g.loss = g.loss.detach();
  g.image = img.grad();
  g.text = txt.grad();
  g.scale = scale.grad();
  g.bias = bias.grad();
  return g;
}

double relative(const at::Tensor& ours, const at::Tensor& ref) {
  return (ours - ref).abs().max().item<double>() / std::max(ref.abs().max().item<double>(), 1e-12);
}

TEST(SigLip, OneProcessMatchesOpenClip) {
  const clip::TensorMap& ref = siglip_reference();
  const SigLipGrads g = siglip_on(ref.at("image"), ref.at("text"), nullptr);
  const double worst = std::max({relative(g.loss, ref.at("loss")), relative(g.image, ref.at("grad.image")),
                                 relative(g.text, ref.at("grad.text")), relative(g.scale, ref.at("grad.logit_scale")),
                                 relative(g.bias, ref.at("grad.logit_bias"))});
  std::printf("[ measured ] 1 process: loss %.7f vs open_clip %.7f; worst relative difference of the loss and the "
              "gradients (features, scale, bias) %.2g\n",
              g.loss.item<double>(), ref.at("loss").item<double>(), worst);
  EXPECT_LT(worst, 1e-5);
}

class SigLipRanks : public testing::TestWithParam<int> {};

TEST_P(SigLipRanks, EqualOneProcessAndOpenClip) {
  const int world = GetParam();
  const clip::TensorMap& ref = siglip_reference();
  const int64_t b = ref.at("image").size(0) / world;
  std::vector<SigLipGrads> results(static_cast<size_t>(world));
  run_ranks(world, [&](int rank, clip::Communicator& comm) {
    results[size_t(rank)] =
        siglip_on(ref.at("image").narrow(0, rank * b, b), ref.at("text").narrow(0, rank * b, b), &comm);
  });
  const at::Tensor rank_loss = ref.at("rank_loss." + std::to_string(world));
  double worst_rank_loss = 0;
  std::vector<at::Tensor> images, texts;
  at::Tensor scale = at::zeros({}), bias = at::zeros({}), loss = at::zeros({});
  for (int r = 0; r < world; ++r) {
    const SigLipGrads& g = results[size_t(r)];
    ASSERT_TRUE(g.image.defined() && g.text.defined() && g.scale.defined() && g.bias.defined()) << "rank " << r;
    worst_rank_loss = std::max(worst_rank_loss, relative(g.loss, rank_loss[r]));
    images.push_back(g.image / world);
    texts.push_back(g.text / world);
    scale = scale + g.scale / world;
    bias = bias + g.bias / world;
    loss = loss + g.loss / world;
  }
  const double worst_grad = std::max({relative(at::cat(images), ref.at("grad.image")),
                                      relative(at::cat(texts), ref.at("grad.text")),
                                      relative(scale, ref.at("grad.logit_scale")),
                                      relative(bias, ref.at("grad.logit_bias"))});
  std::printf("[ measured ] %d ranks: mean loss %.7f vs open_clip %.7f; worst relative difference of a rank's loss "
              "from open_clip's rank %.2g, of the gradients %.2g\n",
              world, loss.item<double>(), ref.at("loss").item<double>(), worst_rank_loss, worst_grad);
  EXPECT_LT(relative(loss, ref.at("loss")), 1e-5);
  EXPECT_LT(worst_rank_loss, 1e-5);
  EXPECT_LT(worst_grad, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(World, SigLipRanks, testing::Values(2, 3, 4));

// ZeRO-1 (AdamW sharded over the ranks): W ranks with sharding equal W ranks without over five train_step calls
// (parameters within 1e-6; Adam's update is elementwise, so the shards compute the same numbers), each rank holds
// 1/W of the optimizer state, and the gathered state_dict equals the unsharded optimizer's.
class ShardedOptimizer : public testing::TestWithParam<int> {};

TEST_P(ShardedOptimizer, EqualsUnshardedOverFiveSteps) {
  const int world = GetParam();
  const clip::TensorMap batch = clip::read_safetensors(clip::test::data("vit_tiny.train_grad.safetensors")).tensors;
  // 6 samples (2 per rank at W = 3): the fixture's 4 and 2 again.
  const at::Tensor images = at::cat({batch.at("image"), batch.at("image").narrow(0, 0, 2)});
  const at::Tensor texts = at::cat({batch.at("text"), batch.at("text").narrow(0, 0, 2)});
  const int64_t b = 6 / world;
  struct Run {
    clip::TensorMap params, state;
    int64_t state_bytes = 0;
    std::vector<double> losses;
  };
  auto run = [&](bool shard) {
    std::vector<Run> runs(static_cast<size_t>(world));
    run_ranks(world, [&](int rank, clip::Communicator& comm) {
      clip::CLIP model = fixture_model("vit_tiny");
      clip::GradientSynchronizer sync(comm, *model);
      // Sharded: the parameters are gathered 2^18 elements at a time, 4 or 5 slices per step (vit_tiny: 1.05M).
      clip::AdamW optimizer(*model, clip::AdamWOptions().lr(1e-3).eps(1e-3), shard ? &comm : nullptr, 1 << 18);
      clip::DistributedStep dist;
      dist.comm = &comm;
      dist.sync = &sync;
      Run& r = runs[size_t(rank)];
      for (int step = 0; step < 5; ++step) {
        r.losses.push_back(clip::train_step(*model, optimizer, clip::InfoNCELoss(), images.narrow(0, rank * b, b),
                                            texts.narrow(0, rank * b, b), {}, dist).loss);
      }
      for (const auto& item : model->named_parameters()) r.params[item.key()] = item.value().detach().clone();
      r.state = optimizer.state_dict();
      r.state_bytes = optimizer.state_bytes();
    });
    return runs;
  };
  const std::vector<Run> plain = run(false), sharded = run(true);
  double worst_param = 0, worst_state = 0, worst_loss = 0;
  int64_t largest_share = 0;
  for (int r = 0; r < world; ++r) {
    for (const auto& [name, t] : plain[0].params) {
      worst_param = std::max(worst_param, (sharded[size_t(r)].params.at(name) - t).abs().max().item<double>());
    }
    for (const auto& [name, t] : plain[0].state) {
      worst_state = std::max(worst_state, (sharded[size_t(r)].state.at(name).to(at::kDouble) - t.to(at::kDouble))
                                              .abs().max().item<double>());
    }
    for (size_t i = 0; i < plain[0].losses.size(); ++i) {
      worst_loss = std::max(worst_loss, std::abs(sharded[size_t(r)].losses[i] - plain[0].losses[i]));
    }
    largest_share = std::max(largest_share, sharded[size_t(r)].state_bytes);
  }
  const double ratio = double(largest_share) / double(plain[0].state_bytes);
  std::printf("[ measured ] %d ranks, 5 steps: sharded vs unsharded worst parameter difference %.3g, optimizer state "
              "%.3g, loss %.3g; optimizer state per rank %lld of %lld bytes (%.4f = 1/%.3f)\n",
              world, worst_param, worst_state, worst_loss, static_cast<long long>(largest_share),
              static_cast<long long>(plain[0].state_bytes), ratio, 1 / ratio);
  EXPECT_LE(worst_param, 1e-6);
  EXPECT_LE(worst_state, 1e-6);
  EXPECT_LE(worst_loss, 1e-6);
  // 1/W of the state, up to the padding of the last share (fewer than W elements per moment).
  EXPECT_LE(largest_share, plain[0].state_bytes / world + 2 * 4 * world);
}

INSTANTIATE_TEST_SUITE_P(World, ShardedOptimizer, testing::Values(2, 3));

TEST(GradientSynchronizer, EqualsAPlainPerParameterAverage) {
  run_ranks(3, [](int rank, clip::Communicator& comm) {
    clip::CLIP model(clip::load_model_config(clip::test::data("vit_tiny.json")));
    clip::GradientSynchronizer sync(comm, *model, 32 << 10);
    // Each rank's gradient: a deterministic function of (rank, parameter), through a real backward pass.
    at::Tensor total = at::zeros({});
    int64_t i = 0;
    for (const auto& p : model->parameters()) total = total + (p * (rank + 1) * (1 + (i++ % 7))).sum();
    sync.arm();
    total.backward();
    sync.finish();
    i = 0;
    for (const auto& p : model->parameters()) {
      // d/dp of sum_r (r + 1) (1 + i mod 7) p, averaged over 3 ranks: (1 + 2 + 3) / 3 (1 + i mod 7).
      const double expected = 2.0 * double(1 + (i++ % 7));
      EXPECT_NEAR((p.grad() - expected).abs().max().item<double>(), 0, 1e-6);
    }
    if (rank == 0) {
      std::printf("[ measured ] 3 ranks, %zu buckets: every gradient equals the per-parameter average\n",
                  sync.num_buckets());
    }
  });
}

TEST(Launch, ReadsTorchrunAndSlurmVariables) {
  auto clear = [] {
    for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                          "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE", "SLURM_JOB_NODELIST",
                          "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_RESTART_COUNT"}) {
      ::unsetenv(v);
    }
  };
  clear();
  EXPECT_EQ(clip::detect_dist_env().world_size, 1);
  ::setenv("RANK", "3", 1);
  ::setenv("WORLD_SIZE", "8", 1);
  ::setenv("LOCAL_RANK", "1", 1);
  ::setenv("LOCAL_WORLD_SIZE", "2", 1);
  ::setenv("MASTER_ADDR", "node7", 1);
  ::setenv("MASTER_PORT", "29511", 1);
  clip::DistEnv e = clip::detect_dist_env();
  EXPECT_EQ(e.launcher, "torchrun");
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "node7");
  EXPECT_EQ(e.master_port, 29511);
  EXPECT_FALSE(e.agent_store);  // rank 0 serves the store
  ::setenv("TORCHELASTIC_USE_AGENT_STORE", "True", 1);
  ::setenv("TORCHELASTIC_RESTART_COUNT", "2", 1);
  e = clip::detect_dist_env();
  EXPECT_TRUE(e.agent_store);
  EXPECT_EQ(e.store_prefix, "/worker/attempt_2");
  ::setenv("RANK", "8", 1);
  EXPECT_THROW(clip::detect_dist_env(), clip::Error);
  clear();
  ::setenv("SLURM_PROCID", "5", 1);
  ::setenv("SLURM_NTASKS", "16", 1);
  ::setenv("SLURM_LOCALID", "1", 1);
  ::setenv("SLURM_NTASKS_PER_NODE", "4(x4)", 1);
  ::setenv("SLURM_JOB_NODELIST", "gpu[003-006],cpu01", 1);
  e = clip::detect_dist_env();
  EXPECT_EQ(e.launcher, "slurm");
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world_size, 16);
  EXPECT_EQ(e.local_world_size, 4);
  EXPECT_EQ(e.master_addr, "gpu003");
  clear();
  EXPECT_EQ(clip::first_slurm_host("a01"), "a01");
  EXPECT_EQ(clip::first_slurm_host("rack[07,09-12]-n"), "rack07-n");
}

std::string clip_train() { return std::string(CLIP_BIN_DIR) + "/clip_train"; }

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(ClipTrain, NprocPerNodeEndToEnd) {
  const fs::path dir = fs::temp_directory_path() / ("clip_dist_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::string log = (dir / "log.txt").string();
  fs::create_directories(dir);
  const int status = std::system((clip_train() + " --nproc-per-node 2 --model-config " + clip::test::data("vit_tiny.json") +
                                  " --train-data synthetic --synthetic-samples 64 --batch-size 8 --epochs 2 --log-every 1"
                                  " --threads 1 --report false --output-dir " + (dir / "run").string() + " > " + log +
                                  " 2>&1")
                                     .c_str());
  const std::string output = read_file(log);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_NE(output.find("2 ranks (torchrun)"), std::string::npos) << output;
  EXPECT_NE(output.find("global batch 16"), std::string::npos) << output;
  EXPECT_TRUE(fs::exists(dir / "run/model.safetensors"));
  // 64 samples / global batch 16 = 4 steps an epoch.
  const std::string metrics = read_file((dir / "run/metrics.jsonl").string());
  EXPECT_NE(metrics.find("\"step\":8"), std::string::npos);
  // The command recorded (the report's) is the one typed, not the workers' /proc/self/exe.
  EXPECT_NE(metrics.find("\"command\":\"" + clip_train() + " --nproc-per-node 2 "), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\"world_size\":2"), std::string::npos) << metrics;
  fs::remove_all(dir);
}

// Under torchrun itself (Debian's python3-torch when installed): its agent already serves the store on
// MASTER_PORT and says so (TORCHELASTIC_USE_AGENT_STORE=True), so rank 0 must join as a client.
TEST(ClipTrain, RunsUnderTorchrun) {
  const std::string python = CLIP_TORCH_PYTHON;  // the python whose torch is the LibTorch we built against
  if (clip::test::run_command(python + " -c 'import torch.distributed.run' 2>/dev/null").exit_code != 0) {
    GTEST_SKIP() << "no torchrun here (" << python << " cannot import torch.distributed.run)";
  }
  clip::test::TempDir dir;
  // 1.13's flag spellings (newer torchrun takes them too); --redirects/--tee: 1.13's defaults of "0" break under
  // Python 3.11's enum.
  // A bounded run: a rank that cannot reach the store must fail the test, not hang it.
  const std::string command = "timeout 300 " + python + " -m torch.distributed.run --redirects 2 --tee 2 --nnodes 1 "
                              "--nproc_per_node 2 --master_port " + std::to_string(clip::free_tcp_port()) +
                              " --no_python " + clip_train() + " --model-config " + clip::test::data("vit_tiny.json") +
                              " --train-data synthetic --synthetic-samples 32 --batch-size 4 --epochs 1 --threads 1"
                              " --report false --output-dir " + (dir / "run") + " 2>&1";
  const clip::test::CommandResult r = clip::test::run_command(command);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("2 ranks (torchrun)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("trained 4 steps"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(dir / "run/model.safetensors"));
}

// The processes whose parent is `parent` (from /proc/<pid>/stat).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t close = stat.rfind(')');  // "pid (comm) state ppid ..."
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent) out.push_back(std::stoi(name));
  }
  return out;
}

// Elastic: under torchrun --max-restarts 1 a worker is killed (SIGKILL) mid-run; torchrun stops the group and
// starts it again, the new workers find the latest checkpoint themselves (--resume auto), and the run ends with
// the weights of an uninterrupted one.
TEST(ClipTrain, TorchrunRestartResumesByItself) {
  const std::string python = CLIP_TORCH_PYTHON;
  if (clip::test::run_command(python + " -c 'import torch.distributed.run' 2>/dev/null").exit_code != 0) {
    GTEST_SKIP() << "no torchrun here (" << python << " cannot import torch.distributed.run)";
  }
  clip::test::TempDir dir;
  const std::string train = clip_train() + " --model-config " + clip::test::data("vit_tiny.json") +
                            " --train-data synthetic --synthetic-samples 96 --batch-size 4 --epochs 1 --threads 1"
                            " --log-every 1 --save-every 2 --report false --resume auto --output-dir ";
  ASSERT_EQ(std::system((clip_train() + " --nproc-per-node 2 " + train.substr(clip_train().size()) + (dir / "straight") +
                         " > " + (dir / "straight.txt") + " 2>&1").c_str()), 0) << read_file(dir / "straight.txt");
  const std::string log = dir / "elastic.txt";
  const pid_t agent = clip::test::start_command(
      "timeout 300 " + python + " -m torch.distributed.run --redirects 2 --tee 2 --nnodes 1 --nproc_per_node 2 "
      "--max_restarts 1 --monitor_interval 1 --master_port " + std::to_string(clip::free_tcp_port()) + " --no_python " +
      train + (dir / "run") + " > " + log + " 2>&1");
  ASSERT_GT(agent, 0);
  // timeout's child is torchrun; its children are the workers.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  std::vector<pid_t> workers;
  while (std::chrono::steady_clock::now() < give_up) {
    if (clip::test::logged_train_steps(dir / "run/metrics.jsonl") >= 5) {
      for (pid_t torchrun : children_of(agent)) workers = children_of(torchrun);
      if (workers.size() == 2) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(workers.size(), 2u) << read_file(log);
  ::kill(workers.back(), SIGKILL);
  const int code = clip::test::wait_exit_code(agent);
  const std::string output = read_file(log);
  ASSERT_EQ(code, 0) << output;
  EXPECT_NE(output.find("resumed from"), std::string::npos) << output;
  const clip::TrainCheckpoint a = clip::load_train_checkpoint(clip::checkpoint_path(dir / "straight", 12));
  const clip::TrainCheckpoint b = clip::load_train_checkpoint(clip::checkpoint_path(dir / "run", 12));
  double worst = 0;
  for (const auto& [name, t] : a.model) worst = std::max(worst, (t - b.model.at(name)).abs().max().item<double>());
  std::printf("[ measured ] torchrun --max-restarts 1, a worker killed after step 5 of 12, the group restarted with "
              "--resume auto: worst weight difference to an uninterrupted run %.3g\n", worst);
  EXPECT_LE(worst, 1e-6);
}

// Two "hosts" on this machine: network namespaces joined by a veth pair, with addresses from 198.18.0.0/15 (the
// range reserved for benchmarking) that exist only inside them. Removed again in the destructor, whatever the
// test did. `skip` says why they could not be made (not root, no `ip`, no namespaces).
class TwoHosts {
 public:
  TwoHosts() : tag_(std::to_string(::getpid())) {
    if (::geteuid() != 0) {
      skip = "network namespaces need root";
      return;
    }
    for (const std::string& cmd : {"ip netns add " + host(0), "ip netns add " + host(1),
                                   "ip link add " + link(0) + " type veth peer name " + link(1),
                                   "ip link set " + link(0) + " netns " + host(0),
                                   "ip link set " + link(1) + " netns " + host(1),
                                   in(0, "ip addr add " + address(0) + "/24 dev " + link(0)),
                                   in(1, "ip addr add " + address(1) + "/24 dev " + link(1)),
                                   in(0, "ip link set lo up"), in(1, "ip link set lo up"), in(0, "ip link set " + link(0) + " up"),
                                   in(1, "ip link set " + link(1) + " up")}) {
      const clip::test::CommandResult r = clip::test::run_command(cmd + " 2>&1");
      if (r.exit_code != 0) {
        skip = "'" + cmd + "' failed: " + r.output;
        return;
      }
    }
  }
  ~TwoHosts() {
    // The processes inside first (deleting a namespace does not end them), then the namespaces and the veth pair
    // (gone with its namespace, or still in the root one when the setup stopped half-way).
    clip::test::run_command("for h in " + host(0) + " " + host(1) + "; do ip netns pids $h 2>/dev/null | xargs -r kill -9; "
                            "ip netns del $h 2>/dev/null; done; ip link del " + link(0) + " 2>/dev/null");
  }
  std::string host(int i) const { return "clip" + tag_ + (i == 0 ? "a" : "b"); }
  std::string link(int i) const { return "cv" + tag_ + (i == 0 ? "a" : "b"); }
  std::string address(int i) const { return i == 0 ? "198.18.0.1" : "198.18.0.2"; }
  // `command` run inside host i.
  std::string in(int i, const std::string& command) const { return "ip netns exec " + host(i) + " " + command; }
  std::string skip;

 private:
  std::string tag_;
};

// Rank r of a 2-rank job on host r of `hosts` (rendezvous at host 0's address, Gloo over the veth).
std::string rank_on_host(const TwoHosts& hosts, int rank, int port, const std::string& args) {
  return hosts.in(rank, "timeout 300 env RANK=" + std::to_string(rank) + " WORLD_SIZE=2 LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 MASTER_ADDR=" +
                            hosts.address(0) + " MASTER_PORT=" + std::to_string(port) + " GLOO_SOCKET_IFNAME=" +
                            hosts.link(rank) + " " + clip_train() + " " + args);
}

// Two hosts (network namespaces) with one rank each: the run equals one process; then the link is cut mid-run,
// both ranks name the lost peer within --dist-timeout and exit non-zero, and with the link back a restart resumes
// from the last checkpoint and finishes.
TEST(TwoHosts, RunEqualsOneProcessAndSurvivesACutLink) {
  const TwoHosts hosts;
  if (!hosts.skip.empty()) GTEST_SKIP() << hosts.skip;
  clip::test::TempDir dir;
  const std::string common = "--model-config " + clip::test::data("vit_tiny.json") +
                             " --train-data synthetic --epochs 1 --threads 1 --log-every 1"
                             " --report false --dist-timeout 10 --resume auto --output-dir ";
  ASSERT_EQ(std::system((clip_train() + " " + common + (dir / "one") + " --synthetic-samples 24 --batch-size 4 > " + (dir / "one.txt") +
                         " 2>&1").c_str()), 0) << read_file(dir / "one.txt");
  auto two_hosts = [&](const std::string& out, const std::string& extra) {
    const int port = 29400 + static_cast<int>(::getpid() % 500);
    std::vector<pid_t> ranks;
    for (int r = 0; r < 2; ++r) {
      ranks.push_back(clip::test::start_command(rank_on_host(hosts, r, port, common + (dir / out) + " --batch-size 2 " +
                                                              extra + " > " + (dir / (out + std::to_string(r) + ".txt")) + " 2>&1")));
    }
    return ranks;
  };
  std::vector<pid_t> ranks = two_hosts("two", "--synthetic-samples 24");
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(clip::test::wait_exit_code(ranks[size_t(r)]), 0) << read_file(dir / ("two" + std::to_string(r) + ".txt"));
  }
  const clip::TrainCheckpoint a = clip::load_train_checkpoint(clip::checkpoint_path(dir / "one", 6));
  const clip::TrainCheckpoint b = clip::load_train_checkpoint(clip::checkpoint_path(dir / "two", 6));
  double worst = 0;
  for (const auto& [name, t] : a.model) worst = std::max(worst, (t - b.model.at(name)).abs().max().item<double>());
  std::printf("[ measured ] 2 hosts x 1 rank (Gloo over a veth pair) vs 1 process, 6 steps: worst weight difference %.3g\n",
              worst);
  EXPECT_LE(worst, 1e-5);

  // Cut the link after 3 logged steps of a longer run (checkpoints every 2 steps).
  const std::string cut_args = "--synthetic-samples 4000 --save-every 2";
  ranks = two_hosts("cut", cut_args);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (clip::test::logged_train_steps(dir / "cut/metrics.jsonl") < 3 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(clip::test::run_command(hosts.in(0, "ip link set " + hosts.link(0) + " down")).exit_code, 0);
  const auto cut = std::chrono::steady_clock::now();
  std::vector<int> codes;
  for (pid_t pid : ranks) codes.push_back(clip::test::wait_exit_code(pid));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - cut).count();
  const std::string log0 = read_file(dir / "cut0.txt"), log1 = read_file(dir / "cut1.txt");
  std::printf("[ measured ] link cut: both ranks exited (%d, %d) %.1f s later (--dist-timeout 10)\n", codes[0], codes[1],
              seconds);
  for (const std::string* log : {&log0, &log1}) {
    const size_t error = log->find("error:");
    std::printf("[ message  ] %s\n", error == std::string::npos ? "(none)" : log->substr(error, log->find('\n', error) - error).c_str());
  }
  EXPECT_NE(codes[0], 0) << log0;
  EXPECT_NE(codes[1], 0) << log1;
  EXPECT_LT(seconds, 60);
  EXPECT_CONTAINS(log0, "rank 1 stopped responding");
  EXPECT_CONTAINS(log1, "rank 0, which hosts the rendezvous store, is gone");
  const std::string latest = clip::latest_checkpoint(dir / "cut");
  ASSERT_FALSE(latest.empty()) << log0;
  const int64_t saved = clip::load_train_checkpoint(latest).progress.step;

  // The link back; the same command lines resume from the last checkpoint. A short run to the end: --max-steps.
  ASSERT_EQ(clip::test::run_command(hosts.in(0, "ip link set " + hosts.link(0) + " up")).exit_code, 0);
  ranks = two_hosts("cut", cut_args + " --max-steps " + std::to_string(saved + 2));
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(clip::test::wait_exit_code(ranks[size_t(r)]), 0) << read_file(dir / ("cut" + std::to_string(r) + ".txt"));
  }
  EXPECT_CONTAINS(read_file(dir / "cut0.txt"), "resumed from");
  EXPECT_EQ(clip::load_train_checkpoint(clip::latest_checkpoint(dir / "cut")).progress.step, saved + 2);
}

// Two ranks started as torchrun would (RANK, WORLD_SIZE, MASTER_*); rank 1 is killed: rank 0 must stop non-zero
// within the short timeout and name rank 1.
TEST(ClipTrain, AKilledRankIsNamed) {
  const fs::path dir = fs::temp_directory_path() / ("clip_dist_kill_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const int port = clip::free_tcp_port();
  std::vector<pid_t> pids;
  for (int rank = 0; rank < 2; ++rank) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("WORLD_SIZE", "2", 1);
      ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      const std::string log = (dir / ("rank" + std::to_string(rank) + ".txt")).string();
      ::freopen(log.c_str(), "w", stderr);
      ::freopen(log.c_str(), "a", stdout);
      ::execl(clip_train().c_str(), "clip_train", "--model-config", clip::test::data("vit_tiny.json").c_str(),
              "--train-data", "synthetic", "--synthetic-samples", "64", "--batch-size", "8", "--epochs", "100000",
              "--threads", "1", "--dist-timeout", "20", "--report", "false", "--log-every", "1", "--output-dir",
              (dir / "run").c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    pids.push_back(pid);
  }
  // Wait until training runs (rank 0 has logged a step), then kill rank 1.
  for (int i = 0; i < 200 && read_file((dir / "run/metrics.jsonl").string()).find("\"step\":3") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(pids[1], SIGKILL);
  const auto start = std::chrono::steady_clock::now();
  int status = 0;
  ::waitpid(pids[0], &status, 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::waitpid(pids[1], nullptr, 0);
  const std::string output = read_file((dir / "rank0.txt").string());
  const std::string last = output.substr(output.rfind("clip_train: error:") == std::string::npos ? 0 : output.rfind("clip_train: error:"));
  std::printf("[ measured ] rank 0 stopped %.1f s after rank 1 was killed: %s", seconds, last.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << output;
  EXPECT_NE(last.find("rank 1"), std::string::npos) << last;
  EXPECT_LT(seconds, 60);
  fs::remove_all(dir);
}

}  // namespace
