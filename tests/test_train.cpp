// The trainer: gradient accumulation equals the full batch, resumed runs equal straight runs, the non-finite
// guard, checkpoints that survive kill -9 and a full disk, the config and flags, an end-to-end run with
// evaluations and the report.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "clip/model/checkpoint.h"
#include "clip/io/safetensors.h"
#include "clip/train/step.h"
#include "clip/train/train_config.h"
#include "train_flags.h"
#include "clip/train/train_state.h"
#include "clip/train/trainer.h"
#include "clip/model/config.h"
#include "clip/train/batch_source.h"
#include "clip/train/callbacks.h"
#include "clip/data/synthetic.h"
#include "clip/util/error.h"
#include "clip/io/tensor_map.h"
#include "clip/data/caption_dataset.h"
#include "clip/util/log.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

using clip::test::TempDir;

clip::TrainConfig tiny_config(const std::string& output_dir) {
  clip::TrainConfig c;
  c.model.config = clip::test::data("vit_tiny.json");
  c.data.train_data = "synthetic";
  c.data.synthetic_samples = 64;
  c.data.batch_size = 8;
  c.optimizer.epochs = 3;
  c.optimizer.warmup = 2;
  c.optimizer.lr = 1e-3;
  c.checkpoint.log_every = 1;
  c.checkpoint.output_dir = output_dir;
  c.checkpoint.report = false;
  return c;
}

std::vector<nlohmann::json> metric_lines(const std::string& path, const std::string& type) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] == type) out.push_back(j);
  }
  return out;
}

// Gradients with accum_freq 2 and 4 equal the single-pass gradients of the whole batch (ViT: no BatchNorm).
TEST(Accumulation, GivesTheFullBatchGradients) {
  const clip::TensorMap ref = clip::read_safetensors(clip::test::data("vit_tiny.train_grad.safetensors")).tensors;
  auto gradients = [&](int64_t accum) {
    clip::CLIP model = clip::load_model(clip::test::data("vit_tiny.safetensors"),
                                        clip::LoadOptions().config_path(clip::test::data("vit_tiny.json")));
    model->train();
    clip::StepOptions options;
    options.accum_freq = accum;
    clip::contrastive_backward(*model, clip::InfoNCELoss(), ref.at("image"), ref.at("text"), options);
    clip::TensorMap grads;
    for (const auto& item : model->named_parameters()) grads[item.key()] = item.value().grad().clone();
    return grads;
  };
  const clip::TensorMap full = gradients(1);
  for (int64_t accum : {2, 4}) {
    const clip::TensorMap acc = gradients(accum);
    double worst = 0;
    for (const auto& [name, g] : full) {
      const double d = clip::test::relative_difference(acc.at(name), g);
      worst = std::max(worst, d);
      EXPECT_LT(d, 1e-5) << name << " with accum_freq " << accum;
      EXPECT_LT(clip::test::relative_difference(acc.at(name), ref.at("grad." + name)), 1e-4) << name;
    }
    std::printf("[ measured ] accum_freq %lld vs one pass: worst relative gradient difference %.3g\n",
                static_cast<long long>(accum), worst);
  }
}

// 10 steps, stop, resume, 10 more steps == 20 steps straight: same losses, same final weights. Data from a
// labeled image folder with augmentation, so shuffling, crops and captions must all resume exactly.
TEST(Resume, ContinuesExactly) {
  TempDir tmp;
  const fs::path images = tmp.path() / "images";
  int n = 0;
  for (const auto& entry : fs::directory_iterator(clip::test::data("preprocess/images"))) {
    const std::string ext = entry.path().extension().string();
    if (ext != ".png" && ext != ".jpg") continue;
    if (entry.path().filename().string().find("truncated") != std::string::npos) continue;
    const fs::path dir = images / (n % 2 ? "cats" : "dogs");
    fs::create_directories(dir);
    fs::copy_file(entry.path(), dir / entry.path().filename());
    ++n;
  }
  ASSERT_GE(n, 8);
  auto config = [&](const std::string& out) {
    clip::TrainConfig c = tiny_config(out);
    c.model.config = clip::test::data("vit_tiny_bpe.json");  // the CLIP BPE's 49408 ids
    c.data.train_data = images.string();
    c.data.batch_size = 4;
    c.optimizer.epochs = 100;
    c.optimizer.max_steps = 20;
    c.data.workers = 2;
    return c;
  };
  clip::TrainConfig straight = config(tmp / "straight");
  const clip::TrainResult a = clip::train(straight);
  clip::TrainConfig first = config(tmp / "resumed");
  first.checkpoint.stop_after = 10;
  EXPECT_EQ(clip::train(first).steps, 10);
  clip::TrainConfig second = config(tmp / "resumed");
  second.checkpoint.resume = "latest";
  const clip::TrainResult b = clip::train(second);
  EXPECT_EQ(a.steps, 20);
  EXPECT_EQ(b.steps, 20);
  const auto la = metric_lines(tmp / "straight/metrics.jsonl", "train");
  const auto lb = metric_lines(tmp / "resumed/metrics.jsonl", "train");
  ASSERT_EQ(la.size(), 20u);
  ASSERT_EQ(lb.size(), 20u);
  double worst = 0;
  for (size_t i = 0; i < la.size(); ++i) {
    EXPECT_EQ(la[i]["step"], lb[i]["step"]);
    const double d = std::abs(la[i]["loss"].get<double>() - lb[i]["loss"].get<double>());
    worst = std::max(worst, d);
    EXPECT_LE(d, 1e-6 * std::abs(la[i]["loss"].get<double>())) << "step " << la[i]["step"];
  }
  const clip::TrainCheckpoint ca = clip::load_train_checkpoint(a.last_checkpoint);
  const clip::TrainCheckpoint cb = clip::load_train_checkpoint(b.last_checkpoint);
  double worst_weight = 0;
  for (const auto& [name, t] : ca.model) worst_weight = std::max(worst_weight, (t - cb.model.at(name)).abs().max().item<double>());
  std::printf("[ measured ] 10 + resume + 10 vs 20 steps: worst loss difference %.3g, worst weight difference %.3g\n",
              worst, worst_weight);
  EXPECT_LE(worst_weight, 1e-6);
}

// --loss siglip end to end: a new model starts at logit scale ln 10 and bias -10 (the paper's and open_clip's),
// the bias is trained, logged, saved with the model and read back with its config; the loss falls; resuming
// continues; fine-tuning a checkpoint without a bias adds one at -10.
TEST(SigLip, TrainsSavesAndFineTunes) {
  TempDir tmp;
  clip::TrainConfig c = tiny_config(tmp / "run");
  c.optimizer.loss = "siglip";
  c.optimizer.epochs = 4;
  c.checkpoint.save_every = 8;
  const clip::TrainResult r = clip::train(c);
  const auto lines = metric_lines(tmp / "run/metrics.jsonl", "train");
  ASSERT_EQ(lines.size(), 32u);
  EXPECT_NEAR(lines[0]["logit_scale"].get<double>(), 10.0, 0.05);
  EXPECT_NEAR(lines[0]["logit_bias"].get<double>(), -10.0, 0.05);
  EXPECT_NE(lines.back()["logit_bias"].get<double>(), lines[0]["logit_bias"].get<double>()) << "the bias trains";
  EXPECT_LT(lines.back()["loss"].get<double>(), lines[0]["loss"].get<double>());
  clip::CLIP saved = clip::load_model(tmp / "run/model.safetensors");
  ASSERT_TRUE(saved->logit_bias.defined());
  ASSERT_TRUE(saved->config().init_logit_bias.has_value());
  EXPECT_EQ(saved->logit_bias.item<double>(), clip::load_train_checkpoint(r.last_checkpoint).model.at("logit_bias").item<double>());
  std::printf("[ measured ] siglip, 32 steps: loss %.4f -> %.4f, bias %.4f -> %.4f\n", lines[0]["loss"].get<double>(),
              lines.back()["loss"].get<double>(), lines[0]["logit_bias"].get<double>(),
              lines.back()["logit_bias"].get<double>());

  clip::TrainConfig more = c;
  more.optimizer.epochs = 5;
  more.checkpoint.resume = "latest";
  EXPECT_EQ(clip::train(more).steps, 40);

  clip::TrainConfig tune = tiny_config(tmp / "tune");
  tune.model.init = clip::test::data("vit_tiny.safetensors");
  tune.optimizer.loss = "siglip";
  tune.optimizer.epochs = 1;
  clip::train(tune);
  const auto tuned = metric_lines(tmp / "tune/metrics.jsonl", "train");
  ASSERT_FALSE(tuned.empty());
  EXPECT_NEAR(tuned[0]["logit_bias"].get<double>(), -10.0, 0.05);

  clip::TrainConfig bad = tiny_config(tmp / "bad");
  bad.optimizer.loss = "hinge";
  EXPECT_NE(clip::test::error_of([&] { clip::train(bad); }).find("infonce or siglip"), std::string::npos);
}

// Batches whose images turn NaN from the second on: every later step's loss is non-finite.
class NanAfterFirst : public clip::BatchSource {
 public:
  explicit NanAfterFirst(clip::ModelConfig config) : config_(std::move(config)), gen_(at::detail::createCPUGenerator(7)) {}
  int64_t batches_per_epoch() const override { return 8; }
  void start_epoch(int64_t, int64_t first) override { delivered_ = first; }
  std::optional<clip::TrainBatch> next() override {
    if (delivered_ == 8) return std::nullopt;
    clip::TrainBatch b;
    b.images = clip::synthetic_images(config_, 8, gen_);
    b.texts = clip::synthetic_texts(config_.text, 8, gen_);
    if (delivered_++ > 0) b.images.fill_(std::nan(""));
    return b;
  }

 private:
  clip::ModelConfig config_;
  at::Generator gen_;
  int64_t delivered_ = 0;
};

TEST(NonFinite, StopsAfterKInARowWithTheLastCheckpointIntact) {
  TempDir tmp;
  clip::TrainConfig c = tiny_config(tmp / "run");
  c.optimizer.max_nonfinite = 3;
  c.checkpoint.save_every = 1;
  clip::Trainer trainer(c);
  trainer.set_batch_source(std::make_unique<NanAfterFirst>(clip::load_model_config(c.model.config)));
  auto metrics = std::make_shared<clip::MetricsFile>(tmp / "run/metrics.jsonl");
  trainer.add_callback(metrics);
  try {
    trainer.run();
    ADD_FAILURE() << "a diverging run must stop";
  } catch (const clip::Error& e) {
    const std::string message = e.what();
    std::printf("[ message  ] %s\n", message.c_str());
    EXPECT_NE(message.find("3 non-finite steps in a row"), std::string::npos) << message;
    EXPECT_NE(message.find("step_"), std::string::npos) << "names the last good checkpoint";
  }
  const std::string latest = clip::latest_checkpoint(tmp / "run");
  ASSERT_FALSE(latest.empty());
  EXPECT_NO_THROW(clip::load_model(latest));
  const auto lines = metric_lines(tmp / "run/metrics.jsonl", "train");
  ASSERT_FALSE(lines.empty());
  EXPECT_GE(lines.back()["nonfinite_skipped"].get<int64_t>(), 2);
}

// Settings that are not finite or out of range are refused by name before any work; weights that went non-finite
// are never saved (the last good checkpoint stays the newest).
TEST(Validation, NonFiniteSettingsAndWeightsAreRefused) {
  TempDir tmp;
  for (const double bad : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    clip::TrainConfig c = tiny_config(tmp / "nan");
    c.optimizer.lr = bad;
    const std::string message = clip::test::error_of([&] { clip::validate(c); });
    EXPECT_CONTAINS(message, "--lr ");
    EXPECT_CONTAINS(message, "expected a finite number");
  }
  clip::TrainConfig beta = tiny_config(tmp / "beta");
  beta.optimizer.beta1 = 1.5;
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::validate(beta); }), "--beta1 1.5: expected a number in [0, 1)");
  clip::TrainConfig warm = tiny_config(tmp / "warm");
  warm.optimizer.warmup = -1;
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::validate(warm); }), "--warmup -1: expected an integer >= 0");
  try {
    clip::validate(warm);
  } catch (const clip::InvalidSetting& e) {  // the parts, for a tool that read the value from a file
    EXPECT_EQ(e.key(), "warmup");
    EXPECT_EQ(e.value(), "-1");
  }

  clip::TrainConfig huge = tiny_config(tmp / "huge");
  huge.optimizer.lr = 1e38;  // overflowed float inside AdamW with LibTorch's bare message
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::validate(huge); }), "--lr 1e+38: expected a number in (0, 10]");
  // Decoupled weight decay at lr * wd >= 1 zeroes or flips every weight each step (found by scripts/bad_inputs:
  // weight_decay 1e300 trained to NaN instead of being refused).
  clip::TrainConfig decay = tiny_config(tmp / "decay");
  decay.optimizer.weight_decay = 1e300;
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::validate(decay); }), "--weight-decay 1e+300: expected less than 1 / lr");
  // Integers that do not fit their setting are refused, not truncated (2^32 + 4 workers became 4).
  clip::TrainConfig narrow;
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::set_train_setting(narrow, "workers", "4294967300", "--workers"); }),
                  "--workers 4294967300: expected an integer from -2147483648 to 2147483647");
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::parse_train_config(R"({"workers": 4294967300})", "t.json"); }),
                  "t.json: 'workers' must be an integer from -2147483648 to 2147483647, got 4294967300");
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::parse_train_config(R"({"epochs": 18446744073709551615})", "t.json"); }),
                  "t.json: 'epochs' must be an integer from");

  // Weights that turn NaN between checkpoints (here poisoned by a callback after step 2) are never saved.
  struct Poison : clip::TrainCallback {
    clip::Trainer* trainer = nullptr;
    void on_step(const clip::StepEvent& e) override {
      if (e.step != 2) return;
      at::NoGradGuard no_grad;
      trainer->model()->parameters()[0].view(-1)[0] = std::nan("");
    }
  };
  clip::TrainConfig c = tiny_config(tmp / "poisoned");
  c.checkpoint.save_every = 1;
  clip::Trainer trainer(c);
  auto poison = std::make_shared<Poison>();
  poison->trainer = &trainer;
  trainer.add_callback(poison);
  const std::string message = clip::test::error_of([&] { trainer.run(); });
  EXPECT_CONTAINS(message, "training diverged: at step 2 the weights hold NaN or infinity (");
  EXPECT_CONTAINS(message, "nothing was saved. The last good checkpoint is ");
  const std::string latest = clip::latest_checkpoint(tmp / "poisoned");
  EXPECT_NE(latest.find("step_00000001"), std::string::npos) << latest;
  EXPECT_TRUE(clip::nonfinite_tensors(clip::load_train_checkpoint(latest).model).empty()) << latest;
}

// A caption that is not UTF-8 skips its row, named by file and line, instead of stopping training mid-epoch.
TEST(CsvCaptions, ARowThatIsNotUtf8IsSkippedAndNamed) {
  TempDir tmp;
  const std::string images = clip::test::data("preprocess/images/");
  const std::string csv = tmp.write("train.csv", "filepath\ttitle\n" + images + "rocket.jpg\ta rocket\n" + images +
                                                     "chelsea.png\tcaf\xe9 cat\n" + images + "coffee.png\tcoffee\n" +
                                                     images + "horse.png\ta horse\n");
  std::vector<std::string> notes;
  clip::set_log_sink([&](clip::LogLevel, const std::string& line) { notes.push_back(line); });
  const clip::CaptionDataset data = clip::read_caption_csv(csv, "filepath", "title", "\t");
  clip::set_log_sink(nullptr);
  EXPECT_EQ(data.size(), 3u);
  ASSERT_EQ(data.skipped.size(), 1u);
  std::printf("[ message  ] %s\n", data.skipped[0].c_str());
  EXPECT_CONTAINS(data.skipped[0], csv + ":3: the caption is not UTF-8 (\"caf\\xe9 cat\"); row skipped");
  ASSERT_EQ(notes.size(), 1u);
  clip::TrainConfig c = tiny_config(tmp / "run");
  c.model.config = clip::test::data("vit_tiny_bpe.json");  // the CLIP BPE: real captions
  c.data.train_data = csv;
  c.data.batch_size = 3;
  c.optimizer.epochs = 1;
  EXPECT_EQ(clip::train(c).steps, 1);
}

// A second run into a folder that holds one is refused unless it resumes or says --overwrite.
TEST(OutputFolder, AnotherRunIsNeverOverwrittenByAccident) {
  TempDir tmp;
  clip::TrainConfig c = tiny_config(tmp / "run");
  clip::train(c);
  const std::string model = tmp / "run/model.safetensors";
  const auto before = fs::last_write_time(model);
  const std::string message = clip::test::error_of([&] { clip::train(c); });
  EXPECT_CONTAINS(message, "holds another run (");
  EXPECT_CONTAINS(message, "pass --resume latest to continue it, --overwrite to replace it");
  EXPECT_EQ(fs::last_write_time(model), before);
  c.checkpoint.overwrite = true;
  const clip::TrainResult again = clip::train(c);
  EXPECT_GT(again.steps, 0);
  EXPECT_NE(fs::last_write_time(model), before);
}

int run_shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string clip_train() { return std::string(CLIP_BIN_DIR) + "/clip_train"; }

// kill -9 at random moments of a run that checkpoints every step: every complete checkpoint file reads back,
// and --resume latest continues.
TEST(Checkpoints, SurviveKillDashNine) {
  TempDir tmp;
  const std::string out = tmp / "run";
  std::mt19937 rng(7);
  for (int attempt = 0; attempt < 4; ++attempt) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::execl(clip_train().c_str(), "clip_train", "--model-config", clip::test::data("vit_tiny.json").c_str(),
              "--train-data", "synthetic", "--synthetic-samples", "64", "--batch-size", "8", "--epochs", "1000",
              "--save-every", "1", "--keep-checkpoints", "2", "--output-dir", out.c_str(), "--resume", "latest",
              "--report", "false", "--threads", "1", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Once this run has written a checkpoint of its own (start-up time varies with the machine's load), kill it
    // at a random moment of the following steps, each of which writes one.
    auto newest_step = [&] {
      int64_t step = -1;
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(out + "/checkpoints", ec)) {
        const std::string name = entry.path().filename().string();
        if (entry.path().extension() == ".safetensors") step = std::max<int64_t>(step, std::stoll(name.substr(5, 8)));
      }
      return step;
    };
    const int64_t before = newest_step();
    for (int i = 0; i < 600 && newest_step() <= before; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 700));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "clip_train exited on its own (status " << status << ")";
    int complete = 0;
    for (const auto& entry : fs::directory_iterator(out + "/checkpoints")) {
      if (entry.path().extension() != ".safetensors") continue;  // temporary files of the interrupted write
      EXPECT_NO_THROW(clip::load_train_checkpoint(entry.path().string())) << entry.path();
      ++complete;
    }
    EXPECT_GE(complete, 1);
  }
  const std::string latest = clip::latest_checkpoint(out);
  ASSERT_FALSE(latest.empty());
  std::printf("[ measured ] after 4 kill -9: latest %s (step %lld) reads back\n", latest.c_str(),
              static_cast<long long>(clip::load_train_checkpoint(latest).progress.step));
  for (const auto& entry : fs::directory_iterator(out + "/checkpoints")) {
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << "stale temp file left: " << entry.path();
  }
}

// A file-size limit stands in for a full disk: the write fails with one clear line, no partial file stays.
TEST(Checkpoints, FullDiskIsAClearError) {
  TempDir tmp;
  const std::string out = tmp / "run";
  const std::string log = tmp / "log.txt";
  const int code = run_shell("bash -c \"trap '' XFSZ; ulimit -f 1024; exec " + clip_train() + " --model-config " +
                             clip::test::data("vit_tiny.json") +
                             " --train-data synthetic --synthetic-samples 16 --batch-size 8 --epochs 1 --output-dir " +
                             out + " --report false\" > " + log + " 2>&1");
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(code, 0) << text;
  const std::string last_line = text.substr(text.rfind("clip_train: error:"));
  std::printf("[ message  ] %s", last_line.c_str());
  EXPECT_NE(last_line.find("step_00000002.safetensors"), std::string::npos) << last_line;
  EXPECT_NE(last_line.find("disk full"), std::string::npos) << last_line;
  for (const auto& entry : fs::directory_iterator(out + "/checkpoints")) ADD_FAILURE() << "left behind: " << entry.path();
}

TEST(TrainConfig, JsonThenFlagsWithClearErrors) {
  const clip::TrainConfig c = clip::parse_train_config(R"({"batch_size": 64, "lr": 0.001, "lock_image": true})", "cfg.json");
  EXPECT_EQ(c.data.batch_size, 64);
  EXPECT_TRUE(c.model.lock_image);
  const clip::TrainConfig again = clip::parse_train_config(clip::to_json(c), "round trip");
  EXPECT_EQ(clip::to_json(again), clip::to_json(c));
  auto expect_error = [](const std::string& json, const std::string& needle) {
    try {
      clip::parse_train_config(json, "cfg.json");
      ADD_FAILURE() << json;
    } catch (const clip::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(R"({"batch_sise": 3})", "unknown key 'batch_sise'");
  expect_error(R"({"batch_size": "3"})", "'batch_size' must be an integer");
  expect_error(R"({"lr": true})", "'lr' must be a number");

  TempDir tmp;
  const std::string file = tmp / "cfg.json";
  std::ofstream(file) << R"({"batch_size": 64, "epochs": 3, "model": "ViT-B-32", "train_data": "synthetic"})";
  const char* argv[] = {"clip_train", "--config", file.c_str(), "--epochs", "5", "--lr", "2e-4", "--augment", "false"};
  const clip::TrainConfig flags = clip::tools::parse_train_args(9, argv);
  EXPECT_EQ(flags.data.batch_size, 64);  // from the file
  EXPECT_EQ(flags.optimizer.epochs, 5);       // the flag wins
  EXPECT_DOUBLE_EQ(flags.optimizer.lr, 2e-4);
  EXPECT_FALSE(flags.data.augment);
  // A switch works bare too, also before another flag.
  const char* bare[] = {"clip_train", "--lock-image", "--local-loss", "--epochs", "2", "--model", "ViT-B-32"};
  const clip::TrainConfig switches = clip::tools::parse_train_args(7, bare);
  EXPECT_TRUE(switches.model.lock_image);
  EXPECT_TRUE(switches.distributed.local_loss);
  EXPECT_EQ(switches.optimizer.epochs, 2);
  const char* bad[] = {"clip_train", "--bogus", "1"};
  EXPECT_THROW(clip::tools::parse_train_args(3, bad), clip::Error);
  const char* bad_value[] = {"clip_train", "--epochs", "three"};
  EXPECT_THROW(clip::tools::parse_train_args(3, bad_value), clip::Error);
  clip::TrainConfig invalid = flags;
  invalid.optimizer.accum_freq = 5;
  EXPECT_THROW(clip::validate(invalid), clip::Error);
  // A value out of range names where it came from: the config file and its key, or the flag that set it.
  const std::string bad_file = tmp / "bad.json";
  std::ofstream(bad_file) << R"({"beta1": 2, "model": "ViT-B-32"})";
  const char* from_file[] = {"clip_train", "--config", bad_file.c_str()};
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::tools::parse_train_args(3, from_file); }),
                  bad_file + ": 'beta1' 2: expected a number in [0, 1)");
  const char* from_flag[] = {"clip_train", "--config", bad_file.c_str(), "--beta1", "-3"};
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::tools::parse_train_args(5, from_flag); }),
                  "--beta1 -3: expected a number in [0, 1)");
}

// A labeled folder end to end: zero-shot and retrieval evaluations, metrics, the HTML report, and the final
// checkpoint loadable as a model.
TEST(EndToEnd, FolderRunWithEvaluationsAndReport) {
  TempDir tmp;
  const fs::path images = tmp.path() / "images";
  int n = 0;
  for (const auto& entry : fs::directory_iterator(clip::test::data("preprocess/images"))) {
    if (entry.path().extension() != ".png") continue;
    const fs::path dir = images / (n % 2 ? "cat" : "dog");
    fs::create_directories(dir);
    fs::copy_file(entry.path(), dir / entry.path().filename());
    ++n;
  }
  clip::TrainConfig c = tiny_config(tmp / "run");
  c.model.config = clip::test::data("vit_tiny_bpe.json");
  c.data.train_data = images.string();
  c.data.batch_size = 2;
  c.optimizer.epochs = 2;
  c.evaluation.val_split = 0.25;
  c.evaluation.zeroshot_data = images.string();
  c.evaluation.zeroshot_templates = "simple";
  c.checkpoint.report = true;
  const clip::TrainResult r = clip::train(c);
  EXPECT_GE(r.zeroshot_top1, 0.0);
  const auto evals = metric_lines(r.metrics, "eval");
  ASSERT_EQ(evals.size(), 1u);
  EXPECT_TRUE(evals[0].contains("zeroshot_top1"));
  EXPECT_TRUE(evals[0].contains("image_to_text_r1"));
  // The zero-shot evaluation in detail: counts that add up, examples that are what they say.
  std::ifstream details_file(tmp / "run/zeroshot_details.json");
  ASSERT_TRUE(details_file) << "zeroshot_details.json beside metrics.jsonl";
  const nlohmann::json details = nlohmann::json::parse(details_file);
  EXPECT_EQ(details["classes"], nlohmann::json({"cat", "dog"}));
  int64_t counted = 0;
  for (const auto& cell : details["confusion"]) counted += cell[2].get<int64_t>();  // [true, predicted, count]
  EXPECT_EQ(counted, evals[0]["zeroshot_images"].get<int64_t>());
  std::map<std::pair<int64_t, bool>, int> per_kind;  // (class, right) -> examples
  for (const auto& x : details["examples"]) {
    const int64_t label = x["label"].get<int64_t>();
    EXPECT_EQ(x["top"].size(), 2u) << "top-k of 2 classes";
    EXPECT_CONTAINS(x["path"].get<std::string>(), label == 0 ? "/cat/" : "/dog/");
    ++per_kind[{label, x["top"][0].get<int64_t>() == label}];
  }
  EXPECT_FALSE(per_kind.empty());
  for (const auto& [kind, n] : per_kind) EXPECT_EQ(n, 1) << "one example per class, right and wrong";
  std::ifstream html(r.report);
  const std::string report((std::istreambuf_iterator<char>(html)), std::istreambuf_iterator<char>());
  EXPECT_NE(report.find("<svg"), std::string::npos);
  EXPECT_EQ(clip::test::count_of(report, "<td class=\"cell\""), 4u) << "a heatmap cell per class pair";
  EXPECT_EQ(clip::test::count_of(report, "<figure class=\"example"), details["examples"].size());
  EXPECT_EQ(report.find("<script"), std::string::npos) << "self-contained, no scripts";
  EXPECT_EQ(report.find("http"), std::string::npos) << "no network references";
  EXPECT_NO_THROW(clip::load_model(r.last_checkpoint));
  std::printf("[ measured ] folder run: %lld steps, zero-shot top-1 %.2f on the training folder\n",
              static_cast<long long>(r.steps), r.zeroshot_top1);
}

}  // namespace
