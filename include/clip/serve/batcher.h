#pragma once
/// Dynamic batching: many threads ask for embeddings, one worker runs the model on batches made of their rows.
///
///   clip::DynamicBatcher batcher(*model, clip::BatcherOptions().max_batch(32).max_wait_ms(2));
///   // on any thread, at the same time as others:
///   clip::BatchResult r = batcher.embed(clip::BatchKind::text, tokenizer->tokenize({"a cat"}), 30'000ms);
///   if (r.status == clip::BatchStatus::ok) use(r.embeddings);   // [1, D] fp32, L2-normalized, on the CPU
///
/// Rows wait in one queue per kind (text and image rows never share a batch). The worker takes the kind whose oldest
/// row has waited longest and runs a batch as soon as `max_batch` rows of it are waiting, or when that oldest row has
/// waited `max_wait_ms`: a lone request pays at most max_wait_ms, concurrent ones share forward passes (and rows that
/// arrive while a batch runs wait for the next one, so batches form under load even with max_wait_ms 0). A request
/// larger than max_batch is split over several batches; rows of different requests share a batch, and each request
/// gets back exactly its own rows, in order. The batcher is the only user of the model while it runs (it puts the
/// model in eval mode): build it over a model no other thread encodes with.
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "clip/model/clip_model.h"

namespace clip {

/// What a batch holds: token ids or preprocessed images.
enum class BatchKind { text = 0, image = 1 };

/// "text" | "image".
const char* to_string(BatchKind kind);

/// One forward pass, as reported to BatcherOptions::on_batch (on the worker thread).
struct BatchRecord {
  BatchKind kind = BatchKind::text;
  int64_t rows = 0;        ///< rows in the batch
  int64_t requests = 0;    ///< requests the rows came from
  double seconds = 0;      ///< the forward pass, including the copies in and out
  double wait_seconds = 0; ///< how long the batch's oldest row waited in the queue
};

/// How the batcher batches.
struct BatcherOptions {
  TORCH_ARG(int64_t, max_batch) = 32;      ///< rows per forward pass, at most
  /// The longest a queued row waits for others to join its batch. 0: a batch runs as soon as the worker is free, so
  /// it holds the rows that arrived while the previous one ran (on the CPU this batches as well as waiting and adds
  /// no latency at low load: docs/serving.md); a GPU, whose batches finish faster than requests arrive, may want a
  /// few milliseconds.
  TORCH_ARG(double, max_wait_ms) = 0.0;
  TORCH_ARG(int64_t, max_queue) = 1024;    ///< rows waiting, both kinds together; embed() refuses beyond (queue_full)
  /// Called after every forward pass, before its requests are answered (metrics); must not block or throw.
  TORCH_ARG(std::function<void(const BatchRecord&)>, on_batch) = nullptr;
};

/// How a request ended.
enum class BatchStatus {
  ok,          ///< embeddings holds its rows
  queue_full,  ///< refused at once: its rows would overfill the queue (try again later)
  timed_out,   ///< not finished within its timeout; its rows still queued were dropped
  stopped,     ///< refused: the batcher is stopping
  failed,      ///< the model threw on a batch holding its rows (error says what)
};

/// "ok" | "queue_full" | "timed_out" | "stopped" | "failed".
const char* to_string(BatchStatus status);

/// A request's outcome.
struct BatchResult {
  BatchStatus status = BatchStatus::ok;
  at::Tensor embeddings;  ///< ok: [n, D] fp32 on the CPU, L2-normalized, row i from input row i
  std::string error;      ///< failed: the model's message
};

class DynamicBatcher {
 public:
  /// Starts the worker thread; puts `model` in eval mode.
  explicit DynamicBatcher(CLIPImpl& model, BatcherOptions options = {});
  /// stop().
  ~DynamicBatcher();
  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  /// Embeds `inputs` in batches shared with other callers and blocks until they are done or `timeout` has passed.
  /// text: [n, L] integer token ids (Tokenizer::tokenize; L the model's context length); image: [n, 3, R, R] floating
  /// point, preprocessed as the model's config says. Throws clip::Error for inputs of the wrong shape or dtype (before
  /// queueing anything); everything else is in the status.
  BatchResult embed(BatchKind kind, const at::Tensor& inputs, std::chrono::milliseconds timeout);

  /// Rows of `kind` waiting for a batch now.
  int64_t queued(BatchKind kind) const;
  const BatcherOptions& options() const;

  /// Refuses new requests, finishes every row already queued, joins the worker. Idempotent.
  void stop();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace clip
