#pragma once
/// An HTTP service for embedding, zero-shot classification and search (clip_serve), with dynamic batching across
/// clients (clip/serve/batcher.h).
///
///   clip::Server server(*model, *tokenizer, clip::ServeOptions().port(8080));
///   server.set_index(&index);                               // optional: POST /v1/search
///   server.add_classifier("imagenet", std::move(classifier));  // optional: {"classifier": "imagenet"}
///   int port = server.start();                              // binds (127.0.0.1 by default), serves on its threads
///   ...                                                     // another thread calls server.stop() (e.g. on SIGTERM)
///   server.wait();                                          // returns when in-flight requests have been answered
///
/// Endpoints (JSON bodies; docs/openapi.json describes them all and is served at GET /openapi.json):
///   POST /v1/embed/text   {"texts": [...], "truncate": false}          -> {"embeddings": [[...], ...], ...}
///   POST /v1/embed/image  {"images": ["<base64>", ...]}, multipart/form-data files, or one raw image/* body
///   POST /v1/classify     images as above + {"classes": [...], "templates": [...]} or {"classifier": "name"}, "top_k"
///   POST /v1/search       {"text": "..."} / {"texts": [...]} / an image, "k"; when an index is loaded
///   GET  /healthz, GET /metrics (Prometheus text), GET /openapi.json
/// Every error is a JSON body {"error": "<one line naming the problem>"} with a 4xx status (the client's) or 5xx (the
/// server's: 503 with Retry-After when the queue is full or a request timed out waiting).
///
/// The HTTP side needs cpp-httplib in the build (CLIP_WITH_HTTP; clip::features().http); without it start() throws
/// and handle() still answers requests given to it directly (an application's own HTTP stack can call it).
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/arg.h>

#include "clip/image/decode.h"
#include "clip/index/image_index.h"
#include "clip/model/clip_model.h"
#include "clip/serve/batcher.h"
#include "clip/text/tokenizer.h"
#include "clip/zeroshot/classifier.h"

namespace clip {

/// How the server listens, batches and limits.
struct ServeOptions {
  TORCH_ARG(std::string, host) = "127.0.0.1";  ///< the address to bind (loopback unless told otherwise)
  TORCH_ARG(int, port) = 8080;                 ///< 0: any free port (start() returns it)
  TORCH_ARG(int, threads) = 32;                ///< connections served at once (each waits on the batcher)
  TORCH_ARG(BatcherOptions, batching);
  TORCH_ARG(int64_t, max_body_bytes) = 32 << 20;  ///< larger request bodies: 413
  TORCH_ARG(int64_t, max_items) = 64;             ///< texts or images per request; more: 413
  TORCH_ARG(int64_t, max_image_pixels) = 40'000'000;  ///< decoded size limit per image (decompression bombs): 413
  TORCH_ARG(int64_t, max_prompts) = 2048;  ///< classify: classes x templates embedded for one request; more: 413
  TORCH_ARG(int64_t, classifier_cache) = 16;  ///< classifiers built from request class lists, kept for reuse
  TORCH_ARG(double, timeout_ms) = 30'000;     ///< a request's time in the queue and the model; then 503
  TORCH_ARG(double, read_timeout_s) = 10;     ///< a client that sends nothing for this long is dropped
  TORCH_ARG(std::string, token);               ///< when set, every endpoint but /healthz wants "Bearer <token>"
  /// classify's templates when a request names none (clip_zeroshot's default set, openai_imagenet, in clip_serve)
  TORCH_ARG(std::vector<std::string>, templates) = std::vector<std::string>{"a photo of a {}."};
  TORCH_ARG(std::string, model_name);  ///< reported by /healthz and in responses
};

/// A request as the HTTP layer hands it over.
struct ServeRequest {
  std::string method;        ///< "GET", "POST", ...
  std::string path;          ///< "/v1/embed/text"
  std::string content_type;  ///< the header's value ("application/json", "image/jpeg", ...)
  std::string authorization; ///< the Authorization header's value
  std::string body;          ///< the raw body (empty for multipart: see files and fields)
  struct File {
    std::string field, filename, content_type, content;
  };
  std::vector<File> files;                    ///< multipart/form-data parts that carry a filename
  std::map<std::string, std::string> fields;  ///< the other multipart parts (field name -> value)
  /// Set by an HTTP layer, with the framing headers below: admit() and handle() then refuse bodies of unknown size
  /// (no Content-Length, chunked), compressed bodies and Range requests.
  bool from_http = false;
  std::optional<int64_t> content_length;
  std::string transfer_encoding, content_encoding, range;
};

/// What the server answers.
struct ServeResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra headers (Retry-After, WWW-Authenticate)
};

class Server {
 public:
  /// The model and tokenizer must outlive the server, and no other thread may encode with the model while it runs.
  Server(CLIPImpl& model, const Tokenizer& tokenizer, ServeOptions options = {});
  ~Server();  ///< stop() and wait()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Serves POST /v1/search from `index` (which must outlive the server); throws clip::Error when the index was made
  /// by another model. Before start().
  void set_index(const ImageIndex* index);
  /// Makes a saved classifier available as {"classifier": name}. Before start().
  void add_classifier(const std::string& name, ZeroShotClassifier classifier);

  /// Binds host:port and serves on background threads; returns the port. Throws clip::Error when the address cannot
  /// be bound (naming it) or the build has no HTTP (CLIP_WITH_HTTP).
  int start();
  /// Stops accepting connections; requests being handled are answered. Thread-safe, idempotent; returns at once.
  void stop();
  /// Blocks until the server has stopped and answered the requests it was handling, then stops the batcher.
  /// Connections accepted but not yet picked up by a thread are closed unanswered; responses sent while stopping say
  /// "Connection: close".
  void wait();
  /// Whether it accepts connections: false before start(), after stop(), and when accepting failed for good (the
  /// process ran out of descriptors, the network went away): a program should then exit.
  bool running() const;

  /// For a request from_http, before its body is read: refuses a body whose size is not known in advance (no
  /// Content-Length, chunked) or that is compressed (it would be inflated without a limit), and Range requests; the
  /// refusal is recorded in the metrics and says "Connection: close" (the body stays unread). nullopt to go on: the
  /// HTTP layer then reads the body, at most ServeOptions::max_body_bytes, and calls handle().
  std::optional<ServeResponse> admit(const ServeRequest& request);

  /// Handles one request (what the HTTP layer calls, on many threads at once): the endpoint and method, the bearer
  /// token, admit()'s checks, then the endpoint's work. Never throws.
  ServeResponse handle(const ServeRequest& request);

  /// The Prometheus text of GET /metrics.
  std::string metrics() const;
  /// The OpenAPI description served at GET /openapi.json (docs/openapi.json, compiled in).
  static const std::string& openapi();

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace clip
