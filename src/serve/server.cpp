#include "clip/serve/server.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <list>
#include <mutex>
#include <set>

#include "clip/image/transform.h"
#include "clip/text/prompts.h"
#include "clip/util/error.h"
#include "clip/util/utf8.h"
#include "serve/http_frontend.h"
#include "util/base64.h"
#include "util/clock.h"
#include "util/json.h"

namespace clip {
namespace {

using nlohmann::json;

// A request the client got wrong (4xx) or the server cannot take now (503): answered with its status and message.
struct HttpError {
  int status;
  std::string message;
  std::vector<std::pair<std::string, std::string>> headers = {};
};

[[noreturn]] void reject(int status, std::string message) { throw HttpError{status, std::move(message)}; }

ServeResponse json_response(int status, const json& body) {
  ServeResponse r;
  r.status = status;
  r.body = dump_json(body);
  return r;
}

ServeResponse error_response(int status, const std::string& message) {
  return json_response(status, json{{"error", utf8_or_escaped(message)}});
}

// ---- metrics --------------------------------------------------------------------------------------------------

// A Prometheus histogram: cumulative bucket counts, sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void add(double v) {
    size_t i = 0;
    while (i < bounds_.size() && v > bounds_[i]) ++i;
    ++counts_[i];
    sum_ += v;
    ++count_;
  }
  // `name`'s _bucket, _sum and _count lines with `labels` ("" or `endpoint="..."`).
  void write(std::string& out, const std::string& name, const std::string& labels) const {
    const std::string sep = labels.empty() ? "" : ",";
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      cumulative += counts_[i];
      out += name + "_bucket{" + labels + sep + "le=\"" + (i < bounds_.size() ? number(bounds_[i]) : "+Inf") +
             "\"} " + std::to_string(cumulative) + "\n";
    }
    const std::string braces = labels.empty() ? "" : "{" + labels + "}";
    out += name + "_sum" + braces + " " + number(sum_) + "\n";
    out += name + "_count" + braces + " " + std::to_string(count_) + "\n";
  }
  static std::string number(double v) {
    char buf[32];
    const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
    return std::string(buf, end);
  }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

const std::vector<double> kLatencyBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};

// The routes: path -> method. Everything else is 404 (405 for a known path with another method).
const std::array<std::pair<const char*, const char*>, 7> kRoutes = {{{"/v1/embed/text", "POST"},
                                                                     {"/v1/embed/image", "POST"},
                                                                     {"/v1/classify", "POST"},
                                                                     {"/v1/search", "POST"},
                                                                     {"/healthz", "GET"},
                                                                     {"/metrics", "GET"},
                                                                     {"/openapi.json", "GET"}}};

// Compares a client's token with the server's without leaking, through timing, where they first differ.
bool same_secret(const std::string& given, const std::string& token) {
  if (token.empty()) return false;
  unsigned diff = given.size() == token.size() ? 0u : 1u;
  for (size_t i = 0; i < given.size(); ++i) {
    diff |= static_cast<unsigned char>(given[i]) ^ static_cast<unsigned char>(token[i % token.size()]);
  }
  return diff == 0;
}

// Floats as the shortest text that reads back to the same float.
void append_floats(std::string& out, const float* v, int64_t n) {
  char buf[32];
  out += '[';
  for (int64_t i = 0; i < n; ++i) {
    if (i) out += ',';
    const auto end = std::to_chars(buf, buf + sizeof buf, v[i]).ptr;
    out.append(buf, end);
  }
  out += ']';
}

}  // namespace

// ---- the service ----------------------------------------------------------------------------------------------

struct Server::State {
  CLIPImpl& model;
  const Tokenizer& tokenizer;
  ServeOptions options;
  const ImageIndex* index = nullptr;
  std::map<std::string, ZeroShotClassifier> classifiers;
  Clock::time_point started = Clock::now();
  std::atomic<int64_t> in_flight{0};
  std::atomic<bool> stopping{false};

  // Classifiers built from request class lists, most recently used first.
  std::mutex cache_mutex;
  std::list<std::pair<std::string, std::shared_ptr<const ZeroShotClassifier>>> cache;

  mutable std::mutex metrics_mutex;
  std::map<std::pair<std::string, int>, uint64_t> requests;  // (endpoint, status) -> count
  std::map<std::string, Histogram> latency;                  // endpoint -> seconds
  Histogram batch_rows[2] = {Histogram(kBatchBounds), Histogram(kBatchBounds)};
  Histogram batch_seconds[2] = {Histogram(kLatencyBounds), Histogram(kLatencyBounds)};
  uint64_t cache_hits = 0, cache_misses = 0;

  // Last, so that they are destroyed first: the worker and the HTTP threads use everything above.
  std::mutex http_mutex;  // start() vs stop() from another thread
  std::unique_ptr<HttpFrontend> http;
  std::unique_ptr<DynamicBatcher> batcher;

  State(CLIPImpl& m, const Tokenizer& t, ServeOptions o) : model(m), tokenizer(t), options(std::move(o)) {}

  void record_batch(const BatchRecord& b) {
    std::lock_guard<std::mutex> lock(metrics_mutex);
    batch_rows[static_cast<int>(b.kind)].add(static_cast<double>(b.rows));
    batch_seconds[static_cast<int>(b.kind)].add(b.seconds);
  }

  // The time a request has left, from its deadline (rounded up: a fraction of a millisecond is not 0).
  static std::chrono::milliseconds left(Clock::time_point deadline) {
    const auto rest = deadline - Clock::now();
    if (rest <= Clock::duration::zero()) return std::chrono::milliseconds(0);
    return std::chrono::ceil<std::chrono::milliseconds>(rest);
  }

  // ---- request parsing ----

  static json parse_body(const ServeRequest& r) {
    if (r.body.empty()) reject(400, "the request has no body; send a JSON object (docs/openapi.json)");
    json body;
    try {
      body = parse_json(r.body, "request body");
    } catch (const Error& e) {
      reject(400, e.what());
    }
    if (!body.is_object()) reject(400, "request body: expected a JSON object, got " + std::string(body.type_name()));
    return body;
  }

  // Refuses fields the endpoint does not know (a typo would otherwise be ignored silently).
  static void check_fields(const json& body, std::initializer_list<const char*> known) {
    for (const auto& item : body.items()) {
      if (std::none_of(known.begin(), known.end(), [&](const char* k) { return item.key() == k; })) {
        std::string list;
        for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
        reject(400, "unknown field '" + utf8_excerpt(item.key()) + "' (this endpoint takes " + list + ")");
      }
    }
  }

  static std::vector<std::string> string_list(const json& value, const std::string& field, bool allow_one) {
    if (allow_one && value.is_string()) return {value.get<std::string>()};
    if (!value.is_array()) reject(400, "'" + field + "' must be an array of strings, got " + value.type_name());
    std::vector<std::string> out;
    out.reserve(value.size());
    for (size_t i = 0; i < value.size(); ++i) {
      if (!value[i].is_string()) {
        reject(400, "'" + field + "'[" + std::to_string(i) + "] must be a string, got " + value[i].type_name());
      }
      out.push_back(value[i].get<std::string>());
    }
    return out;
  }

  int64_t integer(const json& body, const char* field, int64_t fallback, int64_t lo, int64_t hi) const {
    if (!body.contains(field)) return fallback;
    const json& v = body.at(field);
    if (!v.is_number_integer()) reject(400, std::string("'") + field + "' must be an integer, got " + v.type_name());
    const bool too_large = v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi);
    const int64_t n = too_large ? hi : v.get<int64_t>();
    if (too_large || n < lo || n > hi) {
      reject(400, std::string("'") + field + "' must lie in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                      "], got " + (too_large ? v.dump() : std::to_string(n)));
    }
    return n;
  }

  void check_count(size_t n, const char* what) const {
    if (n == 0) reject(400, std::string("no ") + what + " in the request");
    if (static_cast<int64_t>(n) > options.max_items()) {
      reject(413, "the request has " + std::to_string(n) + " " + what + "; the server takes at most " +
                      std::to_string(options.max_items()) + " per request (--max-items)");
    }
  }

  // The images of a request: JSON "images"/"image" (base64, data URIs allowed), multipart files, or a raw image/* body.
  std::vector<std::string> image_bytes(const ServeRequest& r, const json* body) const {
    std::vector<std::string> out;
    if (!r.files.empty()) {
      for (const auto& f : r.files) out.push_back(f.content);
    } else if (r.content_type.rfind("image/", 0) == 0) {
      out.push_back(r.body);
    } else if (body) {  // JSON, or a form's fields holding base64
      std::vector<std::string> encoded;
      if (body->contains("images")) encoded = string_list(body->at("images"), "images", false);
      if (body->contains("image")) {
        const json& one = body->at("image");
        if (!one.is_string()) reject(400, std::string("'image' must be a base64 string, got ") + one.type_name());
        encoded.push_back(one.get<std::string>());
      }
      check_count(encoded.size(), "images");
      for (size_t i = 0; i < encoded.size(); ++i) {
        std::string_view text = encoded[i];
        if (text.rfind("data:", 0) == 0) {  // a data URI: data:image/png;base64,....
          const size_t comma = text.find(',');
          if (comma == std::string_view::npos || text.substr(0, comma).find(";base64") == std::string_view::npos) {
            reject(400, "images[" + std::to_string(i) + "]: a data URI must be base64 (data:<type>;base64,...)");
          }
          text.remove_prefix(comma + 1);
        }
        std::string why;
        std::optional<std::string> bytes = base64_decode(text, &why);
        if (!bytes) reject(400, "images[" + std::to_string(i) + "]: not base64: " + why);
        out.push_back(std::move(*bytes));
      }
    }
    check_count(out.size(), "images");
    return out;
  }

  // Decoded and preprocessed: [n, 3, R, R].
  at::Tensor image_inputs(const std::vector<std::string>& images) const {
    DecodeOptions decode;
    decode.max_pixels = options.max_image_pixels();
    std::vector<at::Tensor> rows;
    rows.reserve(images.size());
    for (size_t i = 0; i < images.size(); ++i) {
      const std::string source = "images[" + std::to_string(i) + "]";
      try {
        const Image image = decode_image_bytes(reinterpret_cast<const uint8_t*>(images[i].data()), images[i].size(),
                                               source, decode);
        rows.push_back(preprocess(image, model.config().preprocess));
      } catch (const ImageTooLargeError& e) {
        reject(413, e.what());
      } catch (const Error& e) {
        reject(400, e.what());
      }
    }
    return at::stack(rows);
  }

  at::Tensor text_inputs(const std::vector<std::string>& texts, bool truncate, const char* field) const {
    try {
      return tokenizer.tokenize(texts, model.config().text.context_length, truncate);
    } catch (const TextError& e) {
      reject(400, std::string(field) + "[" + std::to_string(e.index()) + "] (\"" + utf8_excerpt(texts.at(e.index())) +
                      "\"): " + e.reason() + (truncate ? "" : " (send \"truncate\": true to cut long texts)"));
    }
  }

  at::Tensor run(BatchKind kind, const at::Tensor& inputs, Clock::time_point deadline) {
    BatchResult r = batcher->embed(kind, inputs, left(deadline));
    switch (r.status) {
      case BatchStatus::ok: return r.embeddings;
      case BatchStatus::queue_full:
        throw HttpError{503, "the server is busy: its queue holds " + std::to_string(options.batching().max_queue()) +
                                 " rows; try again shortly",
                        {{"Retry-After", "1"}}};
      case BatchStatus::timed_out:
        throw HttpError{503, "timed out after " + Histogram::number(options.timeout_ms()) +
                                 " ms waiting for the model (--timeout-ms); the server is overloaded",
                        {{"Retry-After", "1"}}};
      case BatchStatus::stopped: throw HttpError{503, "the server is shutting down", {{"Retry-After", "5"}}};
      case BatchStatus::failed: throw HttpError{500, "the model failed on this batch: " + r.error};
    }
    throw HttpError{500, "unknown batch status"};
  }

  // Embeds `inputs` in pieces of at most max_batch rows (a classifier's prompts may be more than the queue holds).
  at::Tensor run_in_pieces(BatchKind kind, const at::Tensor& inputs, Clock::time_point deadline) {
    const int64_t step = options.batching().max_batch();
    if (inputs.size(0) <= step) return run(kind, inputs, deadline);
    std::vector<at::Tensor> parts;
    for (int64_t start = 0; start < inputs.size(0); start += step) {
      parts.push_back(run(kind, inputs.narrow(0, start, std::min(step, inputs.size(0) - start)), deadline));
    }
    return at::cat(parts);
  }

  std::string embeddings_body(const at::Tensor& e) const {
    const at::Tensor c = e.contiguous();
    std::string out = "{\"model\":" + dump_json(options.model_name()) + ",\"dim\":" + std::to_string(c.size(1)) +
                      ",\"embeddings\":[";
    out.reserve(out.size() + static_cast<size_t>(c.numel()) * 12);
    for (int64_t i = 0; i < c.size(0); ++i) {
      if (i) out += ',';
      append_floats(out, c.data_ptr<float>() + i * c.size(1), c.size(1));
    }
    out += "]}";
    return out;
  }

  // ---- endpoints ----

  ServeResponse embed_text(const ServeRequest& r, Clock::time_point deadline) {
    const json body = parse_body(r);
    check_fields(body, {"texts", "truncate"});
    if (!body.contains("texts")) reject(400, "missing field 'texts' (an array of strings)");
    const std::vector<std::string> texts = string_list(body.at("texts"), "texts", false);
    check_count(texts.size(), "texts");
    bool truncate = false;
    if (body.contains("truncate")) {
      if (!body.at("truncate").is_boolean()) reject(400, "'truncate' must be true or false");
      truncate = body.at("truncate").get<bool>();
    }
    ServeResponse out;
    out.body = embeddings_body(run(BatchKind::text, text_inputs(texts, truncate, "texts"), deadline));
    return out;
  }

  static bool is_form(const ServeRequest& r) {
    return !r.files.empty() || r.content_type.rfind("multipart/form-data", 0) == 0;
  }

  // The JSON body, or nullopt for a multipart form (its fields: form_fields) or a raw image.
  std::optional<json> optional_body(const ServeRequest& r) const {
    if (is_form(r) || r.content_type.rfind("image/", 0) == 0) return std::nullopt;
    return parse_body(r);
  }

  ServeResponse embed_image(const ServeRequest& r, Clock::time_point deadline) {
    const std::optional<json> parsed = optional_body(r);
    const json body = parsed ? *parsed : form_fields(r);
    check_fields(body, {"images", "image"});
    const at::Tensor inputs = image_inputs(image_bytes(r, &body));
    ServeResponse out;
    out.body = embeddings_body(run(BatchKind::image, inputs, deadline));
    return out;
  }

  // Multipart requests carry their other fields as form parts: each is read as JSON when it parses, else as a string.
  static json form_fields(const ServeRequest& r) {
    json body = json::object();
    for (const auto& [name, value] : r.fields) {
      json v = parse_json_or_discarded(value);
      body[name] = v.is_discarded() ? json(value) : v;
    }
    return body;
  }

  std::shared_ptr<const ZeroShotClassifier> classifier_for(const json& body, Clock::time_point deadline) {
    if (body.contains("classifier")) {
      if (body.contains("classes")) reject(400, "give 'classifier' or 'classes', not both");
      const json& name = body.at("classifier");
      if (!name.is_string()) reject(400, "'classifier' must be a string");
      auto it = classifiers.find(name.get<std::string>());
      if (it == classifiers.end()) {
        std::string names;
        for (const auto& [n, c] : classifiers) names += (names.empty() ? "" : ", ") + n;
        reject(404, "no classifier named '" + utf8_excerpt(name.get<std::string>()) + "' (this server has: " +
                        (names.empty() ? std::string("none; load one with --classifier NAME=FILE") : names) + ")");
      }
      return std::shared_ptr<const ZeroShotClassifier>(&it->second, [](const ZeroShotClassifier*) {});
    }
    if (!body.contains("classes")) reject(400, "missing field 'classes' (an array of class names) or 'classifier'");
    const std::vector<std::string> classes = string_list(body.at("classes"), "classes", false);
    if (classes.empty()) reject(400, "'classes' is empty");
    std::vector<std::string> templates = options.templates();
    if (body.contains("templates") && body.contains("template_set")) {
      reject(400, "give 'templates' or 'template_set', not both");
    }
    if (body.contains("templates")) {
      templates = string_list(body.at("templates"), "templates", false);
      if (templates.empty()) reject(400, "'templates' is empty");
      for (size_t i = 0; i < templates.size(); ++i) {
        if (templates[i].find("{}") == std::string::npos) {
          reject(400, "templates[" + std::to_string(i) + "] (\"" + utf8_excerpt(templates[i]) + "\") has no {}");
        }
      }
    } else if (body.contains("template_set")) {
      const json& name = body.at("template_set");
      const std::vector<std::string> names = prompt_set_names();
      if (!name.is_string() || std::find(names.begin(), names.end(), name.get<std::string>()) == names.end()) {
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
        reject(400, "'template_set' must name a shipped set: " + list);
      }
      templates = load_prompt_set(name.get<std::string>()).templates;
    }
    // Every prompt must fit the context; bound the filled text before filling it (a long name in many "{}" would
    // otherwise make gigabytes of prompts from a small request). 4 KB is far beyond any context of 77 tokens.
    constexpr size_t kMaxPromptBytes = 4096;
    for (size_t t = 0; t < templates.size(); ++t) {
      size_t slots = 0;
      for (size_t at = templates[t].find("{}"); at != std::string::npos; at = templates[t].find("{}", at + 2)) ++slots;
      for (size_t c = 0; c < classes.size(); ++c) {
        const size_t bytes = templates[t].size() - 2 * slots + slots * classes[c].size();
        if (bytes > kMaxPromptBytes || (slots > 0 && classes[c].size() > kMaxPromptBytes)) {
          reject(400, "the prompt of class " + std::to_string(c) + " (\"" + utf8_excerpt(classes[c]) + "\") in template " +
                          std::to_string(t) + " would be over " + std::to_string(kMaxPromptBytes) +
                          " bytes, more than the model's context holds");
        }
      }
    }
    const size_t prompts = classes.size() * templates.size();
    if (static_cast<int64_t>(prompts) > options.max_prompts()) {
      reject(413, std::to_string(classes.size()) + " classes x " + std::to_string(templates.size()) + " templates = " +
                      std::to_string(prompts) + " prompts, over the server's " + std::to_string(options.max_prompts()) +
                      " per request (--max-prompts); use fewer templates, or save the classifier with clip_zeroshot "
                      "--save-classifier and serve it with --classifier NAME=FILE");
    }
    // The cache key: every name and template with its length before it, so that no two lists share a key.
    std::string key;
    const auto add = [&key](const std::vector<std::string>& list) {
      key += std::to_string(list.size()) + ':';
      for (const auto& item : list) key += std::to_string(item.size()) + ':' + item;
    };
    add(classes);
    add(templates);
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      for (auto it = cache.begin(); it != cache.end(); ++it) {
        if (it->first == key) {
          cache.splice(cache.begin(), cache, it);
          std::lock_guard<std::mutex> m(metrics_mutex);
          ++cache_hits;
          return cache.front().second;
        }
      }
    }
    const std::vector<std::string> all = ZeroShotClassifier::prompts(classes, templates);
    at::Tensor ids;
    try {
      ids = tokenizer.tokenize(all, model.config().text.context_length, /*truncate=*/false);
    } catch (const TextError& e) {
      reject(400, "the prompt \"" + utf8_excerpt(all.at(e.index())) + "\" (class '" +
                      utf8_excerpt(classes.at(e.index() / templates.size())) + "'): " + e.reason());
    }
    const auto [scale, bias] = ZeroShotClassifier::scoring_of(model);  // sigmoid scores for a SigLIP-trained model
    auto classifier = std::make_shared<const ZeroShotClassifier>(ZeroShotClassifier::from_prompt_embeddings(
        run_in_pieces(BatchKind::text, ids, deadline), classes, templates, scale, bias));
    {
      std::lock_guard<std::mutex> m(metrics_mutex);
      ++cache_misses;
    }
    if (options.classifier_cache() > 0) {
      std::lock_guard<std::mutex> lock(cache_mutex);
      cache.emplace_front(key, classifier);
      while (static_cast<int64_t>(cache.size()) > options.classifier_cache()) cache.pop_back();
    }
    return classifier;
  }

  ServeResponse classify(const ServeRequest& r, Clock::time_point deadline) {
    const std::optional<json> parsed = optional_body(r);
    const json body = parsed ? *parsed : form_fields(r);
    check_fields(body, {"images", "image", "classes", "templates", "template_set", "classifier", "top_k"});
    const std::vector<std::string> images = image_bytes(r, &body);  // before the classifier: cheap checks first
    const int64_t top_k = integer(body, "top_k", 5, 1, 1 << 20);
    std::shared_ptr<const ZeroShotClassifier> classifier = classifier_for(body, deadline);
    const at::Tensor features = run(BatchKind::image, image_inputs(images), deadline);
    const Prediction p = classifier->classify(features, top_k);
    const at::Tensor idx = p.top_indices.to(at::kCPU, at::kLong).contiguous();
    const at::Tensor prob = p.top_probabilities.to(at::kCPU, at::kFloat).contiguous();
    const auto index_of = idx.accessor<int64_t, 2>();
    const auto probability_of = prob.accessor<float, 2>();
    json predictions = json::array();
    for (int64_t i = 0; i < idx.size(0); ++i) {
      json row = json::array();
      for (int64_t j = 0; j < idx.size(1); ++j) {
        const int64_t c = index_of[i][j];
        row.push_back({{"class", classifier->classes().at(static_cast<size_t>(c))},
                       {"index", c},
                       {"probability", probability_of[i][j]}});
      }
      predictions.push_back(std::move(row));
    }
    return json_response(200, json{{"model", options.model_name()}, {"predictions", std::move(predictions)}});
  }

  ServeResponse search(const ServeRequest& r, Clock::time_point deadline) {
    if (!index) reject(404, "no index is loaded: start clip_serve with --index DIR (made by clip_index)");
    const std::optional<json> parsed = optional_body(r);
    const json body = parsed ? *parsed : form_fields(r);
    check_fields(body, {"text", "texts", "images", "image", "k"});
    const int64_t k = integer(body, "k", 10, 1, 10000);
    const bool by_text = body.contains("text") || body.contains("texts");
    const bool by_image = !r.files.empty() || r.content_type.rfind("image/", 0) == 0 || body.contains("image") ||
                          body.contains("images");
    if (by_text == by_image) reject(400, "give text queries ('text' or 'texts') or image queries, one kind");
    at::Tensor queries;
    if (by_text) {
      std::vector<std::string> texts;
      if (body.contains("text")) texts = string_list(body.at("text"), "text", true);
      if (body.contains("texts")) {
        const auto more = string_list(body.at("texts"), "texts", false);
        texts.insert(texts.end(), more.begin(), more.end());
      }
      check_count(texts.size(), "texts");
      queries = run(BatchKind::text, text_inputs(texts, /*truncate=*/true, "texts"), deadline);
    } else {
      queries = run(BatchKind::image, image_inputs(image_bytes(r, &body)), deadline);
    }
    const auto hits = index->search(queries, std::min<int64_t>(k, index->size()));
    json results = json::array();
    for (const auto& per_query : hits) {
      json row = json::array();
      for (const IndexHit& h : per_query) row.push_back({{"path", h.path}, {"score", h.score}, {"row", h.row}});
      results.push_back(std::move(row));
    }
    return json_response(200, json{{"model", options.model_name()}, {"results", std::move(results)}});
  }

  ServeResponse healthz() const {
    json names = json::array();
    for (const auto& [name, c] : classifiers) names.push_back(name);
    json body{{"status", "ok"},
              {"model", options.model_name()},
              {"device", model.logit_scale.device().str()},
              {"precision", to_string(model.inference_precision())},
              {"embed_dim", model.config().embed_dim},
              {"index_rows", index ? json(index->size()) : json(nullptr)},
              {"classifiers", std::move(names)},
              {"queued", {{"text", batcher->queued(BatchKind::text)}, {"image", batcher->queued(BatchKind::image)}}},
              {"uptime_s", seconds_since(started)}};
    return json_response(200, body);
  }

  std::string metrics_text() const {
    std::string out;
    std::lock_guard<std::mutex> lock(metrics_mutex);
    out += "# HELP clip_requests_total HTTP requests answered, by endpoint and status code.\n"
           "# TYPE clip_requests_total counter\n";
    for (const auto& [key, n] : requests) {
      out += "clip_requests_total{endpoint=\"" + key.first + "\",code=\"" + std::to_string(key.second) + "\"} " +
             std::to_string(n) + "\n";
    }
    out += "# HELP clip_request_duration_seconds Time from the request's arrival to its answer, by endpoint.\n"
           "# TYPE clip_request_duration_seconds histogram\n";
    for (const auto& [endpoint, h] : latency) h.write(out, "clip_request_duration_seconds", "endpoint=\"" + endpoint + "\"");
    out += "# HELP clip_batch_size Rows per forward pass, by kind (text, image).\n# TYPE clip_batch_size histogram\n";
    for (int k = 0; k < 2; ++k) {
      batch_rows[k].write(out, "clip_batch_size", std::string("kind=\"") + to_string(static_cast<BatchKind>(k)) + "\"");
    }
    out += "# HELP clip_batch_duration_seconds Time of a forward pass, by kind.\n"
           "# TYPE clip_batch_duration_seconds histogram\n";
    for (int k = 0; k < 2; ++k) {
      batch_seconds[k].write(out, "clip_batch_duration_seconds",
                             std::string("kind=\"") + to_string(static_cast<BatchKind>(k)) + "\"");
    }
    out += "# HELP clip_queue_depth Rows waiting for a batch now, by kind.\n# TYPE clip_queue_depth gauge\n";
    for (int k = 0; k < 2; ++k) {
      const auto kind = static_cast<BatchKind>(k);
      out += std::string("clip_queue_depth{kind=\"") + to_string(kind) + "\"} " +
             std::to_string(batcher->queued(kind)) + "\n";
    }
    out += "# HELP clip_requests_in_flight Requests being handled now.\n# TYPE clip_requests_in_flight gauge\n";
    out += "clip_requests_in_flight " + std::to_string(in_flight.load()) + "\n";
    out += "# HELP clip_classifier_cache_total Classify requests by class list: built now (miss) or reused (hit).\n"
           "# TYPE clip_classifier_cache_total counter\n";
    out += "clip_classifier_cache_total{result=\"hit\"} " + std::to_string(cache_hits) + "\n";
    out += "clip_classifier_cache_total{result=\"miss\"} " + std::to_string(cache_misses) + "\n";
    return out;
  }

  ServeResponse dispatch(const ServeRequest& r, const std::string& endpoint, Clock::time_point deadline) {
    if (endpoint == "/v1/embed/text") return embed_text(r, deadline);
    if (endpoint == "/v1/embed/image") return embed_image(r, deadline);
    if (endpoint == "/v1/classify") return classify(r, deadline);
    if (endpoint == "/v1/search") return search(r, deadline);
    if (endpoint == "/healthz") return healthz();
    ServeResponse out;
    if (endpoint == "/metrics") {
      out.content_type = "text/plain; version=0.0.4; charset=utf-8";
      out.body = metrics_text();
    } else {
      out.body = Server::openapi();
    }
    return out;
  }

  // The endpoint a path names ("other" for none): the metrics' label.
  static std::string endpoint_of(const ServeRequest& r) {
    const auto route = std::find_if(kRoutes.begin(), kRoutes.end(), [&](const auto& p) { return r.path == p.first; });
    return route == kRoutes.end() ? "other" : route->first;
  }

  // Throws HttpError for a request whose body must not be read: its size is unknown before reading (no
  // Content-Length, chunked) or it is compressed (httplib would inflate it without a limit); and Range requests
  // (httplib would apply them to every answer). Only for requests from an HTTP layer.
  static void check_framing(const ServeRequest& r) {
    if (!r.from_http) return;
    if (!r.range.empty()) reject(400, "Range requests are not supported");
    const auto identity = [](const std::string& v) { return v.empty() || v == "identity"; };
    if (!identity(r.content_encoding)) {
      throw HttpError{415, "compressed request bodies (Content-Encoding: " + utf8_excerpt(r.content_encoding) +
                               ") are not accepted; send the body as it is"};
    }
    if (r.method == "POST" && (!identity(r.transfer_encoding) || !r.content_length)) {
      throw HttpError{411, "send the body with a Content-Length header (chunked or unsized bodies are not accepted)"};
    }
  }

  // Throws HttpError for a request that goes no further than its request line and headers.
  void check_admission(const ServeRequest& r) const {
    check_framing(r);
    const auto route = std::find_if(kRoutes.begin(), kRoutes.end(), [&](const auto& p) { return r.path == p.first; });
    if (route == kRoutes.end()) reject(404, "no such endpoint: " + utf8_excerpt(r.path) + " (see GET /openapi.json)");
    const std::string endpoint = route->first;
    const bool head_of_get = r.method == "HEAD" && std::string(route->second) == "GET";
    if (r.method != route->second && !head_of_get) {
      throw HttpError{405, endpoint + " takes " + route->second + ", not " + utf8_excerpt(r.method),
                      {{"Allow", route->second}}};
    }
    if (!options.token().empty() && endpoint != "/healthz") {
      // The scheme is case-insensitive (RFC 7235); the token is compared in constant time.
      const std::string prefix = "bearer ";
      std::string scheme = r.authorization.substr(0, prefix.size());
      std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
      const bool has = scheme == prefix;
      if (!has || !same_secret(r.authorization.substr(std::min(prefix.size(), r.authorization.size())),
                               options.token())) {
        throw HttpError{401, has ? "wrong bearer token" : "this server wants an Authorization: Bearer <token> header",
                        {{"WWW-Authenticate", "Bearer"}}};
      }
    }
  }

  void record(const std::string& endpoint, int status, double seconds) {
    std::lock_guard<std::mutex> lock(metrics_mutex);
    ++requests[{endpoint, status}];
    latency.try_emplace(endpoint, kLatencyBounds).first->second.add(seconds);
  }

  static ServeResponse from_error(const HttpError& e) {
    ServeResponse out = error_response(e.status, e.message);
    out.headers = e.headers;
    return out;
  }

  std::optional<ServeResponse> admit(const ServeRequest& r) {
    const auto start = Clock::now();
    try {
      check_framing(r);
      return std::nullopt;
    } catch (const HttpError& e) {
      ServeResponse out = from_error(e);
      out.headers.emplace_back("Connection", "close");  // the body, if any, is left unread
      record(endpoint_of(r), out.status, seconds_since(start));
      return out;
    }
  }

  ServeResponse handle(const ServeRequest& r) {
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double, std::milli>(options.timeout_ms()));
    ++in_flight;
    const std::string endpoint = endpoint_of(r);
    ServeResponse out;
    try {
      check_admission(r);
      out = dispatch(r, endpoint, deadline);
    } catch (const HttpError& e) {
      out = from_error(e);
    } catch (const Error& e) {
      out = error_response(400, e.what());
    } catch (const std::exception& e) {
      out = error_response(500, "internal error: " + error_message(e));
    }
    if (r.method == "HEAD") out.body.clear();
    if (stopping) out.headers.emplace_back("Connection", "close");  // no next request on this connection
    --in_flight;
    record(endpoint, out.status, seconds_since(start));
    return out;
  }
};

Server::Server(CLIPImpl& model, const Tokenizer& tokenizer, ServeOptions options)
    : state_(std::make_unique<State>(model, tokenizer, std::move(options))) {
  ServeOptions& o = state_->options;
  if (o.max_items() < 1) fail("HTTP server: max_items (--max-items) must be at least 1");
  if (o.max_items() > o.batching().max_queue()) {
    fail("HTTP server: max_items (--max-items, ", o.max_items(), ") is over the queue's length (--max-queue, ",
         o.batching().max_queue(), "): a full request could never be queued; raise --max-queue or lower --max-items");
  }
  if (!(o.timeout_ms() > 0 && o.timeout_ms() <= 86'400'000)) {
    fail("HTTP server: timeout_ms (--timeout-ms) must lie in (0, 86400000] (a day), got ", o.timeout_ms());
  }
  if (o.templates().empty()) fail("HTTP server: no default templates");
  if (o.model_name().empty()) o.model_name(model.config().name);
  BatcherOptions batching = o.batching();
  State* s = state_.get();
  batching.on_batch([s](const BatchRecord& b) { s->record_batch(b); });
  state_->batcher = std::make_unique<DynamicBatcher>(model, batching);
}

Server::~Server() {
  stop();
  wait();
}

void Server::set_index(const ImageIndex* index) {
  if (index) index->check_model(state_->model);
  state_->index = index;
}

void Server::add_classifier(const std::string& name, ZeroShotClassifier classifier) {
  if (classifier.weights().size(1) != state_->model.config().embed_dim) {
    fail("classifier '", name, "': its embeddings have ", classifier.weights().size(1), " dimensions, the model's ",
         state_->model.config().embed_dim, " (made with another model)");
  }
  state_->classifiers.insert_or_assign(name, std::move(classifier));
}

int Server::start() {
  std::lock_guard<std::mutex> lock(state_->http_mutex);
  if (state_->http) fail("HTTP server: already started");
  if (state_->stopping) fail("HTTP server: stopped before it started");
  state_->http = make_http_frontend(*this, state_->options);
  return state_->http->port();
}

void Server::stop() {
  std::lock_guard<std::mutex> lock(state_->http_mutex);
  state_->stopping = true;
  if (state_->http) state_->http->stop();
}

bool Server::running() const {
  std::lock_guard<std::mutex> lock(state_->http_mutex);
  return state_->http && state_->http->running();
}

void Server::wait() {
  HttpFrontend* http = nullptr;
  {
    std::lock_guard<std::mutex> lock(state_->http_mutex);
    http = state_->http.get();
  }
  if (http) http->wait();
  state_->batcher->stop();
}

std::optional<ServeResponse> Server::admit(const ServeRequest& request) { return state_->admit(request); }

ServeResponse Server::handle(const ServeRequest& request) { return state_->handle(request); }

std::string Server::metrics() const { return state_->metrics_text(); }

}  // namespace clip
