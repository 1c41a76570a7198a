// clip_serve: an HTTP service for embeddings, zero-shot classification and index search, with dynamic batching.
#include <CLI/CLI.hpp>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include "clip/index/image_index.h"
#include "clip/model/model_tokenizer.h"
#include "clip/serve/server.h"
#include "clip/text/prompts.h"
#include "clip/util/error.h"
#include "clip/util/features.h"
#include "clip/util/threads.h"
#include "cli.h"
#include "index_model.h"
#include "model_flags.h"
#include "tool_main.h"

namespace {

struct Params {
  std::string checkpoint, index, templates = "openai_imagenet", token_file, port_file;
  std::vector<std::string> classifiers;  // NAME=FILE
  clip::tools::ModelFlags model;
  std::string device = "auto";
  int threads = 0;
  std::string host = "127.0.0.1";
  int port = 8080, http_threads = 32;
  int64_t max_batch = 32, max_queue = 1024, max_items = 64, max_prompts = 2048, classifier_cache = 16;
  double max_wait_ms = 0, timeout_ms = 30'000, max_body_mb = 32, read_timeout_s = 10;
  int64_t max_image_pixels = 40'000'000;
};

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::string read_token(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) clip::fail(path, ": cannot read the token file");
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front()))) token.erase(token.begin());
  if (token.empty()) clip::fail(path, ": the token file is empty; put the bearer token clients must send in it");
  if (token.find_first_of(" \t\r\n") != std::string::npos) {
    clip::fail(path, ": the token has whitespace in it; a bearer token is one word");
  }
  return token;
}

int serve(const Params& p, const sigset_t& signals) {
  std::optional<clip::ImageIndex> index;
  clip::CLIP model = nullptr;
  if (!p.index.empty()) {
    index.emplace(clip::ImageIndex::load(p.index));
    model = clip::tools::load_index_model(p.index, index->info(), p.checkpoint, p.model, p.device);
  } else {
    model = clip::load_model(p.checkpoint, p.model.options().device(clip::tools::resolve_device(p.device, p.model.precision)));
  }
  std::unique_ptr<clip::Tokenizer> tokenizer;
  try {
    tokenizer = clip::load_tokenizer(model->config().text);
  } catch (const clip::Error& e) {
    // A model whose tokenizer libclip cannot load yet (SigLIP's, MetaCLIP 2's): images are served, texts refused.
    std::fprintf(stderr, "clip_serve: warning: text requests will be refused: %s\n", e.what());
    tokenizer = clip::unavailable_tokenizer(model->config().text, e.what());
  }

  clip::ServeOptions options;
  options.host(p.host)
      .port(p.port)
      .threads(p.http_threads)
      .batching(clip::BatcherOptions().max_batch(p.max_batch).max_wait_ms(p.max_wait_ms).max_queue(p.max_queue))
      .max_body_bytes(static_cast<int64_t>(p.max_body_mb * 1024 * 1024))
      .max_items(p.max_items)
      .max_image_pixels(p.max_image_pixels)
      .max_prompts(p.max_prompts)
      .classifier_cache(p.classifier_cache)
      .timeout_ms(p.timeout_ms)
      .read_timeout_s(p.read_timeout_s)
      .templates(clip::load_prompt_set(p.templates).templates)
      .model_name(model->config().name.empty() ? std::filesystem::path(p.checkpoint).stem().string()
                                                : model->config().name);
  if (!p.token_file.empty()) options.token(read_token(p.token_file));
  if (!is_loopback(p.host) && p.token_file.empty()) {
    std::fprintf(stderr, "clip_serve: warning: listening on %s without --token-file: anyone who can reach this port "
                         "can use the server\n", p.host.c_str());
  }

  clip::Server server(*model, *tokenizer, options);
  if (index) server.set_index(&*index);
  for (const std::string& spec : p.classifiers) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      clip::fail("--classifier ", spec, ": expected NAME=FILE (a file written by clip_zeroshot --save-classifier)");
    }
    server.add_classifier(spec.substr(0, eq), clip::ZeroShotClassifier::load(spec.substr(eq + 1)));
  }
  const int port = server.start();
  if (!p.port_file.empty()) {
    const std::string tmp = p.port_file + ".tmp";
    std::ofstream(tmp) << port << "\n";
    std::filesystem::rename(tmp, p.port_file);
  }
  std::fprintf(stderr, "clip_serve: %s on %s (%s) at http://%s:%d (batches of up to %lld, %g ms wait%s%s)\n",
               options.model_name().c_str(), model->logit_scale.device().str().c_str(),
               clip::to_string(model->inference_precision()), p.host.c_str(), port,
               static_cast<long long>(p.max_batch), p.max_wait_ms, index ? "; index " : "",
               index ? p.index.c_str() : "");

  // Wait for SIGTERM/SIGINT, checking once a second that the server still accepts connections.
  int signal = -1;
  const timespec second{1, 0};
  while (signal < 0 && server.running()) signal = sigtimedwait(&signals, nullptr, &second);
  if (signal < 0) {
    server.stop();
    server.wait();
    clip::fail("the HTTP server stopped accepting connections (the process is out of file descriptors, or the "
               "network failed); exiting");
  }
  std::fprintf(stderr, "clip_serve: %s: finishing the requests in flight, then stopping (a second signal exits at "
                       "once)\n", signal == SIGINT ? "SIGINT" : "SIGTERM");
  std::thread([signals] {
    int again = 0;
    sigwait(&signals, &again);
    std::fprintf(stderr, "clip_serve: second signal: exiting without waiting for the requests in flight\n");
    std::_Exit(1);
  }).detach();
  server.stop();
  server.wait();
  std::fprintf(stderr, "clip_serve: stopped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Params p;
  CLI::App app{"clip_serve: CLIP over HTTP: text and image embeddings, zero-shot classification, and search of an\n"
               "index made by clip_index; requests from many clients are batched together. Endpoints:\n"
               "POST /v1/embed/text, /v1/embed/image, /v1/classify, /v1/search; GET /healthz, /metrics,\n"
               "/openapi.json (docs/serving.md). SIGTERM or SIGINT: stop accepting, answer what is in flight, exit 0."};
  auto* checkpoint = app.add_option("--checkpoint,--pretrained", p.checkpoint, "the model (with --index: default, the index's)")
                         ->check(clip::tools::kCheckpointPath);
  auto* index = app.add_option("--index", p.index, "serve POST /v1/search from this index (clip_index build)")
                    ->check(CLI::ExistingDirectory);
  app.add_option("--classifier", p.classifiers,
                 "NAME=FILE: a classifier saved by clip_zeroshot --save-classifier, used as {\"classifier\": NAME} "
                 "(repeatable)");
  app.add_option("--templates", p.templates,
                 "classify's prompt templates when a request names none: a set (configs/templates) or a file")
      ->capture_default_str();
  app.add_option("--host", p.host, "the address to listen on (loopback by default; 0.0.0.0 for every interface)")
      ->capture_default_str();
  app.add_option("--port", p.port, "the port (0: any free one; see --port-file)")
      ->capture_default_str()
      ->check(clip::tools::int_range(0, 65535));
  app.add_option("--port-file", p.port_file, "write the port here once listening (for scripts, with --port 0)");
  app.add_option("--token-file", p.token_file, "require 'Authorization: Bearer <the token in this file>'")
      ->check(CLI::ExistingFile);
  app.add_option("--max-batch", p.max_batch, "rows per forward pass, at most")
      ->capture_default_str()
      ->check(clip::tools::positive_int());
  app.add_option("--max-wait-ms", p.max_wait_ms,
                 "the longest a request waits for others to share its batch (0: none; requests that arrive while a "
                 "batch runs share the next; a few ms may help on a GPU)")
      ->capture_default_str()
      ->check(clip::tools::non_negative_number());
  app.add_option("--max-queue", p.max_queue, "texts and images waiting, at most; beyond, 503 with Retry-After")
      ->capture_default_str()
      ->check(clip::tools::positive_int());
  app.add_option("--max-items", p.max_items, "texts or images in one request, at most (413 beyond)")
      ->capture_default_str()
      ->check(clip::tools::positive_int());
  app.add_option("--max-body-mb", p.max_body_mb, "request body size limit in MiB (413 beyond)")
      ->capture_default_str()
      ->check(clip::tools::positive_number());
  app.add_option("--max-image-pixels", p.max_image_pixels,
                 "decoded image size limit (width x height; 413 beyond: decompression bombs)")
      ->capture_default_str()
      ->check(clip::tools::positive_int());
  app.add_option("--max-prompts", p.max_prompts, "classify: classes x templates embedded for one request (413 beyond)")
      ->capture_default_str()
      ->check(clip::tools::positive_int());
  app.add_option("--classifier-cache", p.classifier_cache, "classifiers built from request class lists kept for reuse")
      ->capture_default_str()
      ->check(clip::tools::non_negative_int());
  app.add_option("--timeout-ms", p.timeout_ms, "a request's longest wait for the model; then 503 with Retry-After")
      ->capture_default_str()
      ->check(clip::tools::positive_number());
  app.add_option("--read-timeout-s", p.read_timeout_s, "drop a client that sends nothing for this long")
      ->capture_default_str()
      ->check(clip::tools::positive_number());
  app.add_option("--http-threads", p.http_threads, "connections served at once")
      ->capture_default_str()
      ->check(clip::tools::int_range(1, 4096));
  p.model.add_to(app, /*with_verify=*/true);
  p.model.add_precision(app);
  app.add_option("--device", p.device, "auto (CUDA when visible and fp32, else the CPU), cpu, cuda or cuda:N")
      ->capture_default_str();
  app.add_option("--threads", p.threads, "LibTorch CPU threads (0: one per core)")
      ->capture_default_str()
      ->check(clip::tools::non_negative_int());
  if (const auto done = clip::tools::parse_flags(app, argc, argv, "clip_serve")) return *done;
  if (checkpoint->empty() && index->empty()) {
    std::cerr << "clip_serve: error: no model: give --checkpoint (or --index, whose model it is)\n";
    return 2;
  }
  if (!clip::features().http) {
    std::cerr << "clip_serve: error: this build has no HTTP server (" << clip::features_summary()
              << "); configure with -DCLIP_WITH_HTTP=ON and Debian's libcpp-httplib-dev\n";
    return 1;
  }
  // SIGTERM and SIGINT are taken by sigwait in serve(): blocked here, before any thread starts, so that every thread
  // (the batcher's, the HTTP pool's) inherits the mask and none is interrupted.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return clip::tools::run_tool("clip_serve", [&] {
    clip::set_cpu_threads(p.threads);
    return serve(p, signals);
  });
}
