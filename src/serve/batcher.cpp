#include "clip/serve/batcher.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "clip/util/error.h"
#include "util/clock.h"

namespace clip {

const char* to_string(BatchKind kind) { return kind == BatchKind::text ? "text" : "image"; }

const char* to_string(BatchStatus status) {
  switch (status) {
    case BatchStatus::ok: return "ok";
    case BatchStatus::queue_full: return "queue_full";
    case BatchStatus::timed_out: return "timed_out";
    case BatchStatus::stopped: return "stopped";
    case BatchStatus::failed: return "failed";
  }
  return "?";
}

namespace {

// One embed() call. Guarded by State::mutex, except `inputs` (read-only once queued).
struct Request {
  at::Tensor inputs;
  int kind = 0;
  int64_t rows = 0;
  int64_t taken = 0;  // rows handed to batches
  int64_t done = 0;   // rows whose embeddings are in `out`
  at::Tensor out;     // [rows, D], made when the first batch returns
  bool finished = false;  // status is final (ok, failed, timed out)
  BatchStatus status = BatchStatus::ok;
  std::string error;
  Clock::time_point queued_at;
};

// Rows [start, start + count) of a request, in a batch.
struct Piece {
  std::shared_ptr<Request> request;
  int64_t start = 0, count = 0;
};

}  // namespace

struct DynamicBatcher::State {
  CLIPImpl& model;
  BatcherOptions options;
  mutable std::mutex mutex;
  std::condition_variable work;  // the worker: rows queued, or stopping
  std::condition_variable done;  // callers: a request finished
  std::deque<std::shared_ptr<Request>> queues[2];
  int64_t queued_rows[2] = {0, 0};
  bool stopping = false;
  std::thread worker;

  State(CLIPImpl& m, BatcherOptions o) : model(m), options(std::move(o)) {}

  // Ends a request that will run no further rows (failed, timed out): its rows still queued leave the count.
  void finish(Request& r, BatchStatus status, std::string error = {}) {
    queued_rows[r.kind] -= r.rows - r.taken;
    r.taken = r.rows;
    r.finished = true;
    r.status = status;
    r.error = std::move(error);
  }

  // The kind whose oldest waiting row came first; -1 when nothing waits. Drops finished (timed-out) requests at the
  // fronts. Under the lock.
  int next_kind() {
    int best = -1;
    for (int k = 0; k < 2; ++k) {
      auto& q = queues[k];
      while (!q.empty() && q.front()->finished) q.pop_front();
      if (q.empty()) continue;
      if (best < 0 || q.front()->queued_at < queues[best].front()->queued_at) best = k;
    }
    return best;
  }

  // Takes up to max_batch rows of `kind` from the queue, oldest first. Under the lock.
  std::vector<Piece> take(int kind) {
    std::vector<Piece> pieces;
    int64_t room = options.max_batch();
    auto& q = queues[kind];
    while (room > 0 && !q.empty()) {
      const std::shared_ptr<Request>& r = q.front();
      if (r->finished) {
        q.pop_front();
        continue;
      }
      const int64_t n = std::min(room, r->rows - r->taken);
      pieces.push_back({r, r->taken, n});
      r->taken += n;
      queued_rows[kind] -= n;
      room -= n;
      if (r->taken == r->rows) q.pop_front();
    }
    return pieces;
  }

  at::Tensor run(BatchKind kind, const std::vector<Piece>& pieces) {
    std::vector<at::Tensor> parts;
    parts.reserve(pieces.size());
    for (const Piece& p : pieces) parts.push_back(p.request->inputs.narrow(0, p.start, p.count));
    c10::InferenceMode inference;
    const at::Tensor& weight = model.logit_scale;
    const at::Tensor batch = parts.size() == 1 ? parts[0] : at::cat(parts);
    if (kind == BatchKind::text) {
      return model.encode_text(batch.to(weight.device()), /*normalize=*/true).to(at::kCPU, at::kFloat);
    }
    const at::Tensor features = model.encode_image(batch.to(weight.device(), weight.scalar_type()));
    return l2_normalize(features).to(at::kCPU, at::kFloat);
  }

  void loop() {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      work.wait(lock, [&] { return stopping || queued_rows[0] + queued_rows[1] > 0; });
      const int kind = next_kind();
      if (kind < 0) {
        if (stopping) return;
        continue;
      }
      // Wait for the batch to fill, at most until its oldest row has waited max_wait_ms (not when stopping: drain).
      const Clock::time_point oldest = queues[kind].front()->queued_at;
      const auto deadline =
          oldest + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(options.max_wait_ms()));
      work.wait_until(lock, deadline, [&] { return stopping || queued_rows[kind] >= options.max_batch(); });
      std::vector<Piece> pieces = take(kind);
      if (pieces.empty()) continue;  // the waiting requests timed out meanwhile
      lock.unlock();

      BatchRecord record;
      record.kind = static_cast<BatchKind>(kind);
      record.wait_seconds = seconds_since(oldest);
      for (const Piece& p : pieces) record.rows += p.count;
      record.requests = static_cast<int64_t>(pieces.size());
      const auto start = Clock::now();
      at::Tensor out;
      std::string error;
      try {
        out = run(record.kind, pieces);
        TORCH_CHECK(out.dim() == 2 && out.size(0) == record.rows, "the model returned ", out.sizes(), " for ",
                    record.rows, " rows");
      } catch (const std::exception& e) {
        error = error_message(e);
      }
      record.seconds = seconds_since(start);
      // Recorded before its requests are answered: whoever reads the metrics after an answer sees its batch.
      if (options.on_batch()) options.on_batch()(record);

      lock.lock();
      int64_t row = 0;
      for (const Piece& p : pieces) {
        Request& r = *p.request;
        if (!r.finished && error.empty()) {
          try {
            if (!r.out.defined()) r.out = at::empty({r.rows, out.size(1)}, out.options());
            r.out.narrow(0, p.start, p.count).copy_(out.narrow(0, row, p.count));
            r.done += p.count;
            r.finished = r.done == r.rows;
          } catch (const std::exception& e) {  // out of memory for the request's result
            finish(r, BatchStatus::failed, error_message(e));
          }
        } else if (!r.finished) {
          finish(r, BatchStatus::failed, error);
        }
        row += p.count;
      }
      done.notify_all();
    }
  }
};

DynamicBatcher::DynamicBatcher(CLIPImpl& model, BatcherOptions options)
    : state_(std::make_unique<State>(model, std::move(options))) {
  const BatcherOptions& o = state_->options;
  if (o.max_batch() < 1) fail("dynamic batching: max_batch must be at least 1 (got ", o.max_batch(), ")");
  if (!(o.max_wait_ms() >= 0 && o.max_wait_ms() <= 60'000)) {
    fail("dynamic batching: max_wait_ms must lie in [0, 60000] (got ", o.max_wait_ms(), ")");
  }
  if (o.max_queue() < 1) fail("dynamic batching: max_queue must be at least 1 (got ", o.max_queue(), ")");
  model.eval();
  state_->worker = std::thread([this] { state_->loop(); });
}

DynamicBatcher::~DynamicBatcher() { stop(); }

void DynamicBatcher::stop() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stopping = true;
  }
  state_->work.notify_all();
  if (state_->worker.joinable()) state_->worker.join();
}

int64_t DynamicBatcher::queued(BatchKind kind) const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->queued_rows[static_cast<int>(kind)];
}

const BatcherOptions& DynamicBatcher::options() const { return state_->options; }

BatchResult DynamicBatcher::embed(BatchKind kind, const at::Tensor& inputs, std::chrono::milliseconds timeout) {
  const ModelConfig& config = state_->model.config();
  if (!inputs.defined() || inputs.size(0) == 0) fail("dynamic batching: no ", to_string(kind), " rows to embed");
  if (kind == BatchKind::text) {
    if (inputs.dim() != 2 || inputs.size(1) != config.text.context_length || !at::isIntegralType(inputs.scalar_type(), false)) {
      fail("dynamic batching: text rows must be [n, ", config.text.context_length, "] integer token ids, not ",
           inputs.sizes(), " ", inputs.scalar_type());
    }
    const auto [lo, hi] = at::aminmax(inputs);
    if (lo.item<int64_t>() < 0 || hi.item<int64_t>() >= config.text.vocab_size) {
      fail("dynamic batching: token ids must lie in [0, ", config.text.vocab_size, "); these span [", lo.item<int64_t>(),
           ", ", hi.item<int64_t>(), "]");
    }
  } else {
    const int64_t r = config.vision.image_size;
    if (inputs.dim() != 4 || inputs.size(1) != 3 || inputs.size(2) != r || inputs.size(3) != r ||
        !at::isFloatingType(inputs.scalar_type())) {
      fail("dynamic batching: image rows must be [n, 3, ", r, ", ", r, "] floating point, not ", inputs.sizes(), " ",
           inputs.scalar_type());
    }
  }
  const int k = static_cast<int>(kind);
  auto request = std::make_shared<Request>();
  request->inputs = inputs.contiguous();
  request->rows = inputs.size(0);
  request->kind = k;
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mutex);
  if (s.stopping) return {BatchStatus::stopped, {}, {}};
  if (s.queued_rows[0] + s.queued_rows[1] + request->rows > s.options.max_queue()) {
    return {BatchStatus::queue_full, {}, {}};
  }
  request->queued_at = Clock::now();
  s.queues[k].push_back(request);
  s.queued_rows[k] += request->rows;
  s.work.notify_all();
  // A deadline beyond a day is a day (a huge timeout would overflow the clock's nanoseconds into the past).
  const auto deadline = request->queued_at + std::min<std::chrono::milliseconds>(timeout, std::chrono::hours(24));
  if (!s.done.wait_until(lock, deadline, [&] { return request->finished; })) {
    // Timed out: its rows still queued are dropped; rows in a running batch are computed and discarded.
    s.finish(*request, BatchStatus::timed_out);
    s.work.notify_all();
  }
  BatchResult result;
  result.status = request->status;
  result.error = request->error;
  if (request->status == BatchStatus::ok) result.embeddings = request->out;
  return result;
}

}  // namespace clip
