// clip_serve and the library under it: dynamic batching (clip/serve/batcher.h), the request handling of clip::Server
// (every endpoint, every refusal), and, with cpp-httplib in the build, the HTTP server under concurrent load and the
// tool itself (equal to clip_embed, graceful SIGTERM). Everything runs on loopback, bounded in count and time.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "clip/embed.h"
#include "clip/image/decode.h"
#include "clip/image/transform.h"
#include "clip/index/image_index.h"
#include "clip/io/safetensors.h"
#include "clip/model/checkpoint.h"
#include "clip/model/config.h"
#include "clip/model/model_tokenizer.h"
#include "clip/serve/batcher.h"
#include "clip/serve/server.h"
#include "clip/text/prompts.h"
#include "clip/util/error.h"
#include "test_util.h"
#include "util/base64.h"

#if CLIP_TEST_HTTP
#include <httplib.h>
#endif

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// The stated tolerance: a row's embedding served in a shared batch vs the same input encoded alone (fp32 GEMMs of
// other shapes round differently; the rows are unit vectors).
constexpr double kBatchTolerance = 1e-5;

clip::CLIP tiny_model(uint64_t seed = 0) {
  clip::ModelConfig config = clip::load_model_config(clip::test::data("vit_tiny_bpe.json"));
  at::manual_seed(static_cast<int64_t>(seed));
  clip::CLIP model(config);
  model->eval();
  return model;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

const std::vector<std::string>& photo_files() {
  static const std::vector<std::string> files = [] {
    std::vector<std::string> out;
    for (const char* name : {"chelsea.png", "chelsea_q85.jpg", "coffee.png", "horse.png", "rocket.jpg", "fruits.jpg"}) {
      const std::string path = clip::test::data(std::string("preprocess/images/") + name);
      if (clip::test::decodes(path)) out.push_back(path);
    }
    return out;
  }();
  return files;
}

// Texts that differ from each other: "photo 17 of a red cat", ...
std::string text_number(int i) {
  static const char* colours[] = {"red", "green", "blue", "black", "white", "striped", "tiny", "huge"};
  static const char* things[] = {"cat", "dog", "car", "house", "tree", "boat", "bird", "cake", "chair"};
  return "photo " + std::to_string(i) + " of a " + colours[i % 8] + " " + things[(i / 8) % 9];
}

double max_difference(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

json parse(const clip::ServeResponse& r) { return json::parse(r.body); }

clip::ServeRequest post(const std::string& path, const json& body) {
  clip::ServeRequest r;
  r.method = "POST";
  r.path = path;
  r.content_type = "application/json";
  r.body = body.dump();
  return r;
}

clip::ServeRequest get(const std::string& path) {
  clip::ServeRequest r;
  r.method = "GET";
  r.path = path;
  return r;
}

at::Tensor embeddings_of(const json& body) {
  const auto rows = body.at("embeddings").get<std::vector<std::vector<float>>>();
  at::Tensor t = at::empty({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows.at(0).size())});
  for (size_t i = 0; i < rows.size(); ++i) {
    for (size_t j = 0; j < rows[i].size(); ++j) t[int64_t(i)][int64_t(j)] = rows[i][j];
  }
  return t;
}

// Expects `r` to be a JSON error with `status` whose message contains `needle`; prints the message.
void expect_error(const clip::ServeResponse& r, int status, const std::string& needle) {
  EXPECT_EQ(r.status, status) << r.body;
  const json body = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(body.is_object() && body.contains("error")) << r.body;
  std::printf("[ message  ] %d %s\n", r.status, body["error"].get<std::string>().c_str());
  EXPECT_CONTAINS(body["error"].get<std::string>(), needle);
}

}  // namespace

// ---- base64 ----------------------------------------------------------------------------------------------------

TEST(Base64, Rfc4648VectorsAndRoundTrip) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},   {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(clip::base64_encode(plain), encoded);
    EXPECT_EQ(clip::base64_decode(encoded).value_or("(refused)"), plain);
  }
  EXPECT_EQ(clip::base64_decode("Zm9vYg").value_or("(refused)"), "foob");        // unpadded
  EXPECT_EQ(clip::base64_decode("Zm9v\r\nYmFy").value_or("(refused)"), "foobar");  // MIME line breaks
  std::mt19937 rng(1);
  std::string bytes(1000, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  EXPECT_EQ(clip::base64_decode(clip::base64_encode(bytes)).value_or("(refused)"), bytes);
  for (const char* bad : {"Zm9v!", "Z", "Zm9=v", "Zm===", "Zg=", "Zm9vY"}) {
    std::string why;
    EXPECT_FALSE(clip::base64_decode(bad, &why).has_value()) << bad;
    std::printf("[ message  ] %s: %s\n", bad, why.c_str());
  }
}

// ---- the batcher -----------------------------------------------------------------------------------------------

// Many threads at once, each with its own texts and images in requests of 1-5 rows: every row equals the same input
// encoded alone, and rows of different requests did share batches.
TEST(DynamicBatcher, ConcurrentRequestsGetTheirOwnRowsBack) {
  clip::CLIP model = tiny_model();
  const auto tokenizer = clip::load_tokenizer(model->config().text);
  std::vector<std::string> texts;
  for (int i = 0; i < 96; ++i) texts.push_back(text_number(i));
  const at::Tensor ids = tokenizer->tokenize(texts, model->config().text.context_length);
  at::manual_seed(3);
  const int64_t r = model->config().vision.image_size;
  const at::Tensor images = at::randn({48, 3, r, r});
  at::Tensor text_alone = at::empty({96, model->config().embed_dim}), image_alone = at::empty({48, model->config().embed_dim});
  {
    c10::InferenceMode inference;
    for (int64_t i = 0; i < 96; ++i) text_alone[i] = model->encode_text(ids.narrow(0, i, 1), true)[0];
    for (int64_t i = 0; i < 48; ++i) image_alone[i] = clip::l2_normalize(model->encode_image(images.narrow(0, i, 1)))[0];
  }

  std::mutex mutex;
  std::vector<clip::BatchRecord> batches;
  clip::DynamicBatcher batcher(*model, clip::BatcherOptions().max_batch(16).max_wait_ms(20).on_batch(
                                           [&](const clip::BatchRecord& b) {
                                             std::lock_guard<std::mutex> lock(mutex);
                                             batches.push_back(b);
                                           }));
  constexpr int kThreads = 8;
  std::atomic<int> failures{0};
  std::vector<double> worst(kThreads, 0.0);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();  // start together
      // Thread t owns texts [12t, 12t + 12) and images [6t, 6t + 6), sent in requests of 1, 2, 4 and 5 rows.
      int64_t text_row = 12 * t, image_row = 6 * t;
      for (int64_t n : {1, 2, 4, 5}) {
        const clip::BatchResult tr = batcher.embed(clip::BatchKind::text, ids.narrow(0, text_row, n), 30s);
        if (tr.status != clip::BatchStatus::ok) {
          ++failures;
          continue;
        }
        worst[t] = std::max(worst[t], max_difference(tr.embeddings, text_alone.narrow(0, text_row, n)));
        text_row += n;
        if (n <= 2 || n == 4) {
          const int64_t m = n == 4 ? 3 : n;
          const clip::BatchResult ir = batcher.embed(clip::BatchKind::image, images.narrow(0, image_row, m), 30s);
          if (ir.status != clip::BatchStatus::ok) {
            ++failures;
            continue;
          }
          worst[t] = std::max(worst[t], max_difference(ir.embeddings, image_alone.narrow(0, image_row, m)));
          image_row += m;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  batcher.stop();
  EXPECT_EQ(failures.load(), 0);
  const double max_diff = *std::max_element(worst.begin(), worst.end());
  int64_t shared = 0, largest = 0, rows = 0;
  for (const auto& b : batches) {
    shared += b.requests > 1;
    largest = std::max(largest, b.rows);
    rows += b.rows;
    EXPECT_LE(b.rows, 16);
  }
  std::printf("[ measured ] %zu batches for 96 text + 48 image rows, %lld shared by several requests, largest %lld; "
              "max |served - alone| = %.3g (tolerance %.0e)\n",
              batches.size(), static_cast<long long>(shared), static_cast<long long>(largest), max_diff, kBatchTolerance);
  EXPECT_EQ(rows, 96 + 48);
  EXPECT_LT(max_diff, kBatchTolerance);
  EXPECT_GT(shared, 0) << "8 threads starting together with a 20 ms window never shared a batch";
}

TEST(DynamicBatcher, QueueLimitTimeoutAndStop) {
  clip::CLIP model = tiny_model();
  const auto tokenizer = clip::load_tokenizer(model->config().text);
  const int64_t l = model->config().text.context_length;
  const at::Tensor three = tokenizer->tokenize({"a", "b", "c"}, l);
  // A batch runs only when 100 rows wait or after 10 s: a request waits in the queue.
  clip::DynamicBatcher batcher(*model, clip::BatcherOptions().max_batch(100).max_wait_ms(10'000).max_queue(4));
  EXPECT_EQ(batcher.embed(clip::BatchKind::text, tokenizer->tokenize({"a", "b", "c", "d", "e"}, l), 1s).status,
            clip::BatchStatus::queue_full);
  std::thread waiting([&] {
    const auto start = std::chrono::steady_clock::now();
    const clip::BatchResult r = batcher.embed(clip::BatchKind::text, three, 300ms);
    EXPECT_EQ(r.status, clip::BatchStatus::timed_out) << clip::to_string(r.status);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  });
  while (batcher.queued(clip::BatchKind::text) == 0) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(batcher.embed(clip::BatchKind::text, three, 1s).status, clip::BatchStatus::queue_full);  // 3 + 3 > 4
  waiting.join();
  EXPECT_EQ(batcher.queued(clip::BatchKind::text), 0) << "a timed-out request's rows stay counted";
  // stop() runs what is queued at once (no 10 s wait) and refuses what comes after.
  clip::BatchResult queued;
  std::thread last([&] { queued = batcher.embed(clip::BatchKind::text, three, 30s); });
  while (batcher.queued(clip::BatchKind::text) == 0) std::this_thread::sleep_for(1ms);
  const auto stop_start = std::chrono::steady_clock::now();
  batcher.stop();
  last.join();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_start, 5s);
  EXPECT_EQ(queued.status, clip::BatchStatus::ok);
  EXPECT_EQ(queued.embeddings.size(0), 3);
  EXPECT_EQ(batcher.embed(clip::BatchKind::text, three, 1s).status, clip::BatchStatus::stopped);
}

TEST(DynamicBatcher, RefusesInputsThatDoNotFitTheModel) {
  clip::CLIP model = tiny_model();
  clip::DynamicBatcher batcher(*model);
  const int64_t l = model->config().text.context_length, r = model->config().vision.image_size;
  for (const auto& [kind, t] : std::vector<std::pair<clip::BatchKind, at::Tensor>>{
           {clip::BatchKind::text, at::zeros({2, l + 1}, at::kLong)},
           {clip::BatchKind::text, at::full({1, l}, model->config().text.vocab_size, at::kLong)},
           {clip::BatchKind::text, at::zeros({1, l})},
           {clip::BatchKind::image, at::zeros({1, 3, r + 1, r})},
           {clip::BatchKind::image, at::zeros({1, 3, r, r}, at::kByte)}}) {
    EXPECT_CONTAINS(clip::test::error_of([&, kind = kind, t = t] { batcher.embed(kind, t, 1s); }), "dynamic batching");
  }
}

// ---- the request handling (no HTTP needed) -----------------------------------------------------------------------

class ServeHandle : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = tiny_model();
    tokenizer_ = clip::load_tokenizer(model_->config().text);
    server_ = std::make_unique<clip::Server>(*model_, *tokenizer_, options());
  }
  virtual clip::ServeOptions options() { return clip::ServeOptions().port(0).max_items(8).max_prompts(64); }

  clip::CLIP model_ = nullptr;
  std::unique_ptr<clip::Tokenizer> tokenizer_;
  std::unique_ptr<clip::Server> server_;
};

TEST_F(ServeHandle, TextAndImageEmbeddingsEqualTheLibrarysOwn) {
  const std::vector<std::string> texts = {"a photo of a cat", "a dog", "a bowl of fruit"};
  const clip::ServeResponse r = server_->handle(post("/v1/embed/text", {{"texts", texts}}));
  ASSERT_EQ(r.status, 200) << r.body;
  const at::Tensor served = embeddings_of(parse(r));
  const at::Tensor direct = clip::embed_texts(*model_, *tokenizer_, texts);
  const double text_diff = max_difference(served, direct);
  EXPECT_EQ(parse(r)["dim"], model_->config().embed_dim);

  ASSERT_GE(photo_files().size(), 2u);
  json images = json::array();
  for (const auto& f : photo_files()) images.push_back(clip::base64_encode(read_bytes(f)));
  images[1] = "data:image/jpeg;base64," + images[1].get<std::string>();  // a data URI is taken too
  const clip::ServeResponse ri = server_->handle(post("/v1/embed/image", {{"images", images}}));
  ASSERT_EQ(ri.status, 200) << ri.body;
  const clip::ImageEmbeddings files = clip::embed_image_files(*model_, photo_files());
  const double image_diff = max_difference(embeddings_of(parse(ri)), files.embeddings);
  // One raw image body, and multipart files, give the same rows.
  clip::ServeRequest raw = post("/v1/embed/image", {});
  raw.content_type = "image/png";
  raw.body = read_bytes(photo_files()[0]);
  const clip::ServeResponse rr = server_->handle(raw);
  ASSERT_EQ(rr.status, 200) << rr.body;
  clip::ServeRequest form = post("/v1/embed/image", {});
  form.body.clear();
  form.content_type = "multipart/form-data; boundary=x";
  form.files = {{"a", "one.png", "image/png", read_bytes(photo_files()[0])}, {"b", "two", "", read_bytes(photo_files()[1])}};
  const clip::ServeResponse rf = server_->handle(form);
  ASSERT_EQ(rf.status, 200) << rf.body;
  const double other_diff = std::max(max_difference(embeddings_of(parse(rr))[0], files.embeddings[0]),
                                     max_difference(embeddings_of(parse(rf)), files.embeddings.narrow(0, 0, 2)));
  std::printf("[ measured ] served vs embed_texts %.3g, vs embed_image_files %.3g, raw and multipart %.3g "
              "(tolerance %.0e)\n", text_diff, image_diff, other_diff, kBatchTolerance);
  EXPECT_LT(text_diff, kBatchTolerance);
  EXPECT_LT(image_diff, kBatchTolerance);
  EXPECT_LT(other_diff, kBatchTolerance);
}

TEST_F(ServeHandle, RefusesBadRequestsWithOneLine) {
  const std::string png = clip::base64_encode(read_bytes(photo_files().at(0)));
  std::string long_text;
  for (int i = 0; i < 100; ++i) long_text += "word ";
  struct Case {
    clip::ServeRequest request;
    int status;
    std::string needle;
  };
  clip::ServeRequest not_json = post("/v1/embed/text", {});
  not_json.body = "{\"texts\": [\"a\"";
  clip::ServeRequest empty = post("/v1/embed/text", {});
  empty.body.clear();
  clip::ServeRequest put = post("/v1/embed/text", {{"texts", {"a"}}});
  put.method = "PUT";
  const std::vector<Case> cases = {
      {not_json, 400, "not valid JSON"},
      {empty, 400, "no body"},
      {post("/v1/embed/text", json::array({"a"})), 400, "expected a JSON object"},
      {post("/v1/embed/text", {{"texts", "a"}}), 400, "'texts' must be an array of strings"},
      {post("/v1/embed/text", {{"texts", {"a", 3}}}), 400, "'texts'[1] must be a string"},
      {post("/v1/embed/text", {{"texts", json::array()}}), 400, "no texts"},
      {post("/v1/embed/text", {{"text", {"a"}}}), 400, "unknown field 'text'"},
      {post("/v1/embed/text", {{"texts", std::vector<std::string>(9, "a")}}), 413, "at most 8 per request"},
      {post("/v1/embed/text", {{"texts", {"ok", long_text}}}), 400, "texts[1]"},
      {post("/v1/embed/text", {{"texts", {"a"}}, {"truncate", "yes"}}), 400, "'truncate' must be true or false"},
      {post("/v1/embed/image", {{"images", {"not base64!"}}}), 400, "images[0]: not base64"},
      {post("/v1/embed/image", {{"images", {png, clip::base64_encode("GIF89a....")}}}), 400, "images[1]"},
      {post("/v1/embed/image", {{"image", 5}}), 400, "'image' must be a base64 string"},
      {post("/v1/embed/image", json::object()), 400, "no images"},
      {post("/v1/classify", {{"image", png}}), 400, "missing field 'classes'"},
      {post("/v1/classify", {{"image", png}, {"classes", {"a"}}, {"classifier", "x"}}), 400, "not both"},
      {post("/v1/classify", {{"image", png}, {"classifier", "imagenet"}}), 404, "no classifier named 'imagenet'"},
      {post("/v1/classify", {{"image", png}, {"classes", {"a"}}, {"templates", {"no slot"}}}), 400, "has no {}"},
      {post("/v1/classify", {{"image", png}, {"classes", {"a"}}, {"template_set", "../../etc/passwd"}}), 400,
       "must name a shipped set"},
      {post("/v1/classify", {{"image", png}, {"classes", {"a", "b"}}, {"template_set", "openai_imagenet"}}), 413,
       "--max-prompts"},
      {post("/v1/classify", {{"image", png}, {"classes", {"a"}}, {"top_k", 0}}), 400, "'top_k' must lie in"},
      {post("/v1/classify", {{"image", png}, {"classes", {"a"}}, {"top_k", 1.5}}), 400, "'top_k' must be an integer"},
      {post("/v1/search", {{"text", "a cat"}}), 404, "no index is loaded"},
      {post("/v1/nothing", json::object()), 404, "no such endpoint"},
      {put, 405, "takes POST"},
      {get("/v1/embed/text"), 405, "takes POST"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.request.path + " " + c.request.body.substr(0, 80));
    expect_error(server_->handle(c.request), c.status, c.needle);
  }
  // The long text is taken when the request asks to truncate.
  EXPECT_EQ(server_->handle(post("/v1/embed/text", {{"texts", {long_text}}, {"truncate", true}})).status, 200);
}

TEST_F(ServeHandle, ClassifyMatchesTheZeroShotClassifier) {
  const std::vector<std::string> classes = {"cat", "coffee", "horse", "rocket"};
  const std::vector<std::string> templates = {"a photo of a {}.", "a drawing of a {}."};
  const clip::ZeroShotClassifier reference = clip::ZeroShotClassifier::build(*model_, *tokenizer_, classes, templates);
  const clip::ImageEmbeddings files = clip::embed_image_files(*model_, photo_files());
  const clip::Prediction expected = reference.classify(files.embeddings, 3);

  json images = json::array();
  for (const auto& f : photo_files()) images.push_back(clip::base64_encode(read_bytes(f)));
  const json request = {{"images", images}, {"classes", classes}, {"templates", templates}, {"top_k", 3}};
  const clip::ServeResponse r = server_->handle(post("/v1/classify", request));
  ASSERT_EQ(r.status, 200) << r.body;
  double worst = 0;
  const json predictions = parse(r)["predictions"];
  ASSERT_EQ(predictions.size(), photo_files().size());
  for (size_t i = 0; i < predictions.size(); ++i) {
    ASSERT_EQ(predictions[i].size(), 3u);
    for (int64_t j = 0; j < 3; ++j) {
      const int64_t c = expected.top_indices[int64_t(i)][j].item<int64_t>();
      EXPECT_EQ(predictions[i][size_t(j)]["index"].get<int64_t>(), c);
      EXPECT_EQ(predictions[i][size_t(j)]["class"].get<std::string>(), classes[size_t(c)]);
      worst = std::max(worst, std::abs(predictions[i][size_t(j)]["probability"].get<double>() -
                                       expected.top_probabilities[int64_t(i)][j].item<double>()));
    }
  }
  std::printf("[ measured ] classify vs ZeroShotClassifier: max |probability difference| %.3g (tolerance 1e-5)\n", worst);
  EXPECT_LT(worst, 1e-5);
  // The same class list again comes from the cache; a saved classifier by name gives the same answer.
  EXPECT_EQ(server_->handle(post("/v1/classify", request)).body, r.body);
  EXPECT_CONTAINS(server_->metrics(), "clip_classifier_cache_total{result=\"hit\"} 1");
  server_->add_classifier("animals", reference);
  const clip::ServeResponse named =
      server_->handle(post("/v1/classify", {{"images", images}, {"classifier", "animals"}, {"top_k", 3}}));
  ASSERT_EQ(named.status, 200) << named.body;
  EXPECT_EQ(parse(named)["predictions"].size(), predictions.size());
  for (size_t i = 0; i < predictions.size(); ++i) {
    EXPECT_EQ(parse(named)["predictions"][i][0]["index"], predictions[i][0]["index"]);
  }
  // Multipart: the image as a file part, the class list as a JSON field.
  clip::ServeRequest form = post("/v1/classify", {});
  form.body.clear();
  form.content_type = "multipart/form-data; boundary=x";
  form.files = {{"image", "x.png", "image/png", read_bytes(photo_files()[0])}};
  form.fields = {{"classes", json(classes).dump()}, {"templates", json(templates).dump()}, {"top_k", "1"}};
  const clip::ServeResponse rf = server_->handle(form);
  ASSERT_EQ(rf.status, 200) << rf.body;
  EXPECT_EQ(parse(rf)["predictions"][0][0]["index"], predictions[0][0]["index"]);
}

TEST_F(ServeHandle, SearchAnIndex) {
  CLIP_REQUIRE_FEATURE(faiss);
  const clip::ImageEmbeddings files = clip::embed_image_files(*model_, photo_files());
  const clip::ImageIndex index = clip::ImageIndex::from_embeddings(files.embeddings, files.paths);
  server_->set_index(&index);
  const clip::ServeResponse r = server_->handle(post("/v1/search", {{"texts", {"a cat", "a horse"}}, {"k", 3}}));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto expected = index.search_text(*model_, *tokenizer_, {"a cat", "a horse"}, 3);
  const json results = parse(r)["results"];
  ASSERT_EQ(results.size(), 2u);
  for (size_t q = 0; q < 2; ++q) {
    ASSERT_EQ(results[q].size(), 3u);
    for (size_t j = 0; j < 3; ++j) {
      EXPECT_EQ(results[q][j]["path"].get<std::string>(), expected[q][j].path);
      EXPECT_NEAR(results[q][j]["score"].get<double>(), expected[q][j].score, 1e-5);
    }
  }
  // By image: the image's own row comes first.
  const clip::ServeResponse ri =
      server_->handle(post("/v1/search", {{"image", clip::base64_encode(read_bytes(photo_files()[2]))}, {"k", 100}}));
  ASSERT_EQ(ri.status, 200) << ri.body;
  EXPECT_EQ(parse(ri)["results"][0].size(), photo_files().size());  // k is capped at the index's size
  EXPECT_EQ(parse(ri)["results"][0][0]["path"].get<std::string>(), files.paths[2]);
  expect_error(server_->handle(post("/v1/search", {{"text", "a"}, {"image", "Zm9v"}})), 400, "one kind");
  // An index of another width is refused when it is set.
  const clip::ImageIndex other = clip::ImageIndex::from_embeddings(at::randn({4, 7}), {"a", "b", "c", "d"});
  EXPECT_THROW(server_->set_index(&other), clip::Error);
}

// What the review of the first version found: bodies of unknown size, compressed bodies and Range requests are
// refused before reading; class lists that differ never share a cached classifier; a long class name cannot blow up
// into gigabytes of prompts; HEAD and form fields work.
TEST_F(ServeHandle, FramingCacheKeysAndPromptBounds) {
  clip::ServeRequest framed = post("/v1/embed/text", {{"texts", {"a"}}});
  framed.from_http = true;
  framed.content_length = static_cast<int64_t>(framed.body.size());
  EXPECT_FALSE(server_->admit(framed).has_value());
  EXPECT_EQ(server_->handle(framed).status, 200);
  auto refused = [&](clip::ServeRequest r, int status, const std::string& needle) {
    const std::optional<clip::ServeResponse> out = server_->admit(r);
    ASSERT_TRUE(out.has_value()) << needle;
    expect_error(*out, status, needle);
    EXPECT_NE(std::find(out->headers.begin(), out->headers.end(), std::make_pair(std::string("Connection"),
                                                                                 std::string("close"))),
              out->headers.end());
    expect_error(server_->handle(r), status, needle);
  };
  clip::ServeRequest unsized = framed;
  unsized.content_length.reset();
  refused(unsized, 411, "Content-Length");
  clip::ServeRequest chunked = framed;
  chunked.transfer_encoding = "chunked";
  refused(chunked, 411, "chunked");
  clip::ServeRequest gzip = framed;
  gzip.content_encoding = "gzip";
  refused(gzip, 415, "compressed");
  clip::ServeRequest range = get("/openapi.json");
  range.from_http = true;
  range.range = "bytes=0-,0-,0-";
  refused(range, 400, "Range");

  // Two class lists that would join to the same text get their own classifiers.
  const std::string png = clip::base64_encode(read_bytes(photo_files().at(0)));
  const json two = {{"image", png}, {"classes", {"cat", "dog"}}, {"templates", {"{}"}}};
  const json one = {{"image", png}, {"classes", {std::string("cat\x1f") + "dog"}}, {"templates", {"{}"}}};
  ASSERT_EQ(server_->handle(post("/v1/classify", two)).status, 200);
  const clip::ServeResponse r1 = server_->handle(post("/v1/classify", one));
  ASSERT_EQ(r1.status, 200) << r1.body;
  EXPECT_EQ(parse(r1)["predictions"][0].size(), 1u);  // one class, not the cached two
  // A class name far longer than any context, in a template, is refused before any prompt is made.
  expect_error(server_->handle(post("/v1/classify", {{"image", png}, {"classes", {std::string(5000, 'x')}}})), 400,
               "more than the model's context holds");
  std::string slots;
  for (int i = 0; i < 40; ++i) slots += "{}";
  expect_error(server_->handle(post("/v1/classify", {{"image", png}, {"classes", {std::string(200, 'y')}},
                                                     {"templates", {slots}}})),
               400, "over 4096 bytes");
  expect_error(server_->handle(post("/v1/classify", {{"image", png}, {"classes", {"a"}},
                                                     {"top_k", uint64_t(1) << 63}})),
               400, "got 9223372036854775808");
  // HEAD is GET without a body; a form whose images are base64 fields works like JSON.
  clip::ServeRequest head = get("/healthz");
  head.method = "HEAD";
  const clip::ServeResponse h = server_->handle(head);
  EXPECT_EQ(h.status, 200);
  EXPECT_TRUE(h.body.empty());
  clip::ServeRequest form = post("/v1/embed/image", {});
  form.body.clear();
  form.content_type = "multipart/form-data; boundary=x";
  form.fields = {{"images", json::array({png}).dump()}};
  EXPECT_EQ(server_->handle(form).status, 200) << server_->handle(form).body;
}

class ServeHandleLimits : public ServeHandle {
  clip::ServeOptions options() override {
    return clip::ServeOptions().port(0).max_image_pixels(64 * 64).token("s3cret").model_name("tiny");
  }
};

TEST_F(ServeHandleLimits, PixelLimitAndToken) {
  auto with_token = [](clip::ServeRequest r, const std::string& auth) {
    r.authorization = auth;
    return r;
  };
  const clip::ServeRequest text = post("/v1/embed/text", {{"texts", {"a"}}});
  expect_error(server_->handle(text), 401, "Authorization: Bearer");
  expect_error(server_->handle(with_token(text, "Bearer wrong")), 401, "wrong bearer token");
  expect_error(server_->handle(with_token(text, "Bearer s3cret2")), 401, "wrong bearer token");
  expect_error(server_->handle(with_token(text, "Basic s3cret")), 401, "Bearer");
  EXPECT_EQ(server_->handle(with_token(text, "Bearer s3cret")).status, 200);
  EXPECT_EQ(server_->handle(with_token(text, "bearer s3cret")).status, 200);  // the scheme is case-insensitive
  expect_error(server_->handle(with_token(text, "Bearer")), 401, "Bearer");
  EXPECT_EQ(server_->handle(get("/healthz")).status, 200);  // no token needed
  EXPECT_EQ(server_->handle(get("/metrics")).status, 401);
  // The photos are larger than 64 x 64 pixels: refused from the header, as a decompression bomb would be.
  const clip::ServeResponse big = server_->handle(
      with_token(post("/v1/embed/image", {{"image", clip::base64_encode(read_bytes(photo_files()[0]))}}), "Bearer s3cret"));
  expect_error(big, 413, "over the limit of 4096");
  const json health = parse(server_->handle(get("/healthz")));
  EXPECT_EQ(health["model"], "tiny");
  EXPECT_EQ(health["precision"], "fp32");
  EXPECT_TRUE(health["index_rows"].is_null());
}

TEST_F(ServeHandle, MetricsAndOpenApi) {
  server_->handle(post("/v1/embed/text", {{"texts", {"a", "b"}}}));
  server_->handle(post("/v1/embed/text", {{"texts", 5}}));
  const std::string metrics = server_->metrics();
  for (const char* line : {"clip_requests_total{endpoint=\"/v1/embed/text\",code=\"200\"} 1",
                           "clip_requests_total{endpoint=\"/v1/embed/text\",code=\"400\"} 1",
                           "clip_request_duration_seconds_bucket{endpoint=\"/v1/embed/text\",le=\"+Inf\"} 2",
                           "clip_request_duration_seconds_count{endpoint=\"/v1/embed/text\"} 2",
                           "clip_batch_size_bucket{kind=\"text\",le=\"2\"} 1", "clip_batch_size_sum{kind=\"text\"} 2",
                           "clip_queue_depth{kind=\"image\"} 0", "# TYPE clip_batch_size histogram"}) {
    EXPECT_CONTAINS(metrics, line);
  }
  // The served description is docs/openapi.json, and it lists exactly the endpoints the server answers.
  const clip::ServeResponse r = server_->handle(get("/openapi.json"));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, read_bytes(std::string(CLIP_SOURCE_DIR) + "/docs/openapi.json"));
  const json spec = json::parse(r.body);
  std::set<std::string> documented;
  for (const auto& [path, methods] : spec.at("paths").items()) {
    documented.insert(path);
    for (const auto& item : methods.items()) {
      const std::string method = item.key();
      clip::ServeRequest probe = get(path);
      probe.method = method == "get" ? "GET" : "POST";
      probe.body = method == "post" ? "{}" : "";
      const clip::ServeResponse routed = server_->handle(probe);
      EXPECT_NE(routed.status, 405) << method << " " << path << ": documented, but the server takes another method";
      EXPECT_EQ(routed.body.find("no such endpoint"), std::string::npos) << path << ": documented, but not answered";
    }
  }
  EXPECT_EQ(documented, (std::set<std::string>{"/v1/embed/text", "/v1/embed/image", "/v1/classify", "/v1/search",
                                               "/healthz", "/metrics", "/openapi.json"}));
}

// ---- HTTP ------------------------------------------------------------------------------------------------------

#if CLIP_TEST_HTTP

namespace {

// Text requests of 1-3 texts from a pool, each checked against the pool's embeddings made alone.
struct LoadResult {
  int64_t requests = 0, errors = 0, wrong = 0;
  double worst = 0;
};

}  // namespace

TEST(ServeHttp, ConcurrentClientsGetCorrectAnswersUnderLoad) {
  clip::CLIP model = tiny_model();
  const auto tokenizer = clip::load_tokenizer(model->config().text);
  std::vector<std::string> pool;
  for (int i = 0; i < 64; ++i) pool.push_back(text_number(i));
  at::Tensor alone = at::empty({64, model->config().embed_dim});
  {
    c10::InferenceMode inference;
    const at::Tensor ids = tokenizer->tokenize(pool, model->config().text.context_length);
    for (int64_t i = 0; i < 64; ++i) alone[i] = model->encode_text(ids.narrow(0, i, 1), true)[0];
  }
  std::vector<std::string> photos;
  for (const auto& f : photo_files()) photos.push_back(read_bytes(f));
  const clip::ImageEmbeddings photo_alone = clip::embed_image_files(*model, photo_files());

  clip::Server server(*model, *tokenizer,
                      clip::ServeOptions().port(0).threads(16).batching(clip::BatcherOptions().max_batch(16).max_wait_ms(5)));
  const int port = server.start();
  constexpr int kClients = 12;
  const auto until = std::chrono::steady_clock::now() + 3s;  // bounded: 3 s, at most 150 requests a client
  std::vector<LoadResult> results(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      httplib::Client http("127.0.0.1", port);
      http.set_read_timeout(30, 0);
      std::mt19937 rng(static_cast<unsigned>(c));
      LoadResult& out = results[size_t(c)];
      while (std::chrono::steady_clock::now() < until && out.requests < 150) {
        ++out.requests;
        const bool image = rng() % 4 == 0;
        std::vector<int64_t> rows(1 + rng() % 3);
        json body;
        if (image) {
          json images = json::array();
          for (auto& r : rows) {
            r = int64_t(rng() % photos.size());
            images.push_back(clip::base64_encode(photos[size_t(r)]));
          }
          body = {{"images", images}};
        } else {
          json texts = json::array();
          for (auto& r : rows) {
            r = int64_t(rng() % pool.size());
            texts.push_back(pool[size_t(r)]);
          }
          body = {{"texts", texts}};
        }
        auto res = http.Post(image ? "/v1/embed/image" : "/v1/embed/text", body.dump(), "application/json");
        if (!res || res->status != 200) {
          ++out.errors;
          continue;
        }
        const at::Tensor got = embeddings_of(json::parse(res->body));
        for (size_t i = 0; i < rows.size(); ++i) {
          const at::Tensor want = image ? photo_alone.embeddings[rows[i]] : alone[rows[i]];
          const double d = max_difference(got[int64_t(i)], want);
          out.worst = std::max(out.worst, d);
          out.wrong += d >= kBatchTolerance;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  // A multipart upload through httplib's parser: the same rows as the files embedded alone.
  {
    httplib::Client http("127.0.0.1", port);
    httplib::MultipartFormDataItems items = {{"b", photos[1], "b.jpg", "image/jpeg"}, {"a", photos[0], "a.png", ""}};
    auto form = http.Post("/v1/embed/image", items);
    ASSERT_TRUE(form);
    ASSERT_EQ(form->status, 200) << form->body;
    const at::Tensor got = embeddings_of(json::parse(form->body));  // parts in field-name order: a, then b
    EXPECT_LT(max_difference(got, photo_alone.embeddings.narrow(0, 0, 2)), kBatchTolerance);
  }
  LoadResult total;
  for (const auto& r : results) {
    total.requests += r.requests;
    total.errors += r.errors;
    total.wrong += r.wrong;
    total.worst = std::max(total.worst, r.worst);
  }
  const std::string metrics = server.metrics();
  server.stop();
  server.wait();
  const auto count = [&](const std::string& prefix) {
    const size_t at = metrics.find(prefix);
    return at == std::string::npos ? -1.0 : std::stod(metrics.substr(at + prefix.size()));
  };
  const double text_batches = count("clip_batch_size_count{kind=\"text\"} "),
               text_rows = count("clip_batch_size_sum{kind=\"text\"} ");
  std::printf("[ measured ] %d clients, 3 s: %lld requests, %lld errors, %lld wrong rows, max |served - alone| %.3g "
              "(tolerance %.0e); text rows per batch %.2f\n",
              kClients, static_cast<long long>(total.requests), static_cast<long long>(total.errors),
              static_cast<long long>(total.wrong), total.worst, kBatchTolerance, text_rows / text_batches);
  EXPECT_GT(total.requests, kClients);
  EXPECT_EQ(total.errors, 0);
  EXPECT_EQ(total.wrong, 0);
  EXPECT_GT(text_rows / text_batches, 1.0) << "concurrent requests never shared a batch";
}

TEST(ServeHttp, LimitsOverHttp) {
  clip::CLIP model = tiny_model();
  const auto tokenizer = clip::load_tokenizer(model->config().text);
  // A batch waits up to 2 s for 100 rows, the queue holds 4: a waiting request fills it.
  clip::Server server(*model, *tokenizer,
                      clip::ServeOptions().port(0).max_items(4).max_body_bytes(2'000'000).timeout_ms(1500).batching(
                          clip::BatcherOptions().max_batch(100).max_wait_ms(2000).max_queue(4)));
  const int port = server.start();
  // A second server on the same port is refused, saying so.
  clip::Server second(*model, *tokenizer, clip::ServeOptions().port(port));
  EXPECT_CONTAINS(clip::test::error_of([&] { second.start(); }), "another process listens there");
  std::thread waiting([&] {
    httplib::Client http("127.0.0.1", port);
    auto res = http.Post("/v1/embed/text", json{{"texts", {"a", "b", "c"}}}.dump(), "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 503) << res->body;  // waited past --timeout-ms (1.5 s) for its 2 s batch window
    EXPECT_CONTAINS(res->body, "timed out");
    EXPECT_EQ(res->get_header_value("Retry-After"), "1");
  });
  httplib::Client http("127.0.0.1", port);
  while (server.metrics().find("clip_queue_depth{kind=\"text\"} 3") == std::string::npos) std::this_thread::sleep_for(1ms);
  auto full = http.Post("/v1/embed/text", json{{"texts", {"d", "e"}}}.dump(), "application/json");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->status, 503);
  EXPECT_CONTAINS(full->body, "busy");
  EXPECT_EQ(full->get_header_value("Retry-After"), "1");
  waiting.join();
  // A chunked body (its size unknown until read) and a compressed one are refused from their headers.
  auto chunked = http.Post("/v1/embed/text",
                           [](size_t, httplib::DataSink& sink) {
                             const std::string part = "{\"texts\": [\"a\"]}";
                             sink.write(part.data(), part.size());
                             sink.done();
                             return true;
                           },
                           "application/json");
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->status, 411) << chunked->body;
  httplib::Client compressing("127.0.0.1", port);
  compressing.set_compress(true);
  auto gzip = compressing.Post("/v1/embed/text", json{{"texts", {"a"}}}.dump(), "application/json");
  ASSERT_TRUE(gzip);
  EXPECT_EQ(gzip->status, 415) << gzip->body;
  // httplib's own refusal of a large body is a JSON error like the others.
  auto big = http.Post("/v1/embed/image", std::string(3'000'000, 'x'), "image/jpeg");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_CONTAINS(big->body, "{\"error\":");
  server.stop();
  server.wait();
}

// The tool: its embeddings equal clip_embed --texts; SIGTERM lets an in-flight request finish, then exits 0.
TEST(ClipServe, EqualsClipEmbedAndStopsGracefully) {
  clip::test::TempDir tmp;
  clip::CLIP model = tiny_model(5);
  const std::string checkpoint = tmp / "tiny.safetensors";
  clip::save_model(*model, checkpoint);
  const std::vector<std::string> texts = {"a photo of a cat", "two dogs on a beach", "ünïcödé text", "a"};
  {
    std::ofstream out(tmp / "texts.txt");
    for (const auto& t : texts) out << t << "\n";
  }
  const auto embed = clip::test::run_command(clip::test::tool("clip_embed") + " --checkpoint " + checkpoint +
                                             " --texts " + (tmp / "texts.txt") + " --output " + (tmp / "e.safetensors") +
                                             " 2>&1");
  ASSERT_EQ(embed.exit_code, 0) << embed.output;
  const at::Tensor expected = clip::read_safetensors(tmp / "e.safetensors").tensors.at("text_embeddings");

  const std::string port_file = tmp / "port";
  const pid_t pid = clip::test::start_command(clip::test::tool("clip_serve") + " --checkpoint " + checkpoint +
                                              " --port 0 --port-file " + port_file +
                                              " --max-batch 64 --max-wait-ms 1500 --templates simple 2>" +
                                              (tmp / "serve.log"));
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!fs::exists(port_file) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(fs::exists(port_file)) << read_bytes(tmp / "serve.log");
  const int port = std::stoi(read_bytes(port_file));
  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(30, 0);
  auto res = http.Post("/v1/embed/text", json{{"texts", texts}}.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const double diff = max_difference(embeddings_of(json::parse(res->body)), expected);
  std::printf("[ measured ] clip_serve vs clip_embed --texts: max |difference| %.3g (tolerance %.0e)\n", diff,
              kBatchTolerance);
  EXPECT_LT(diff, kBatchTolerance);

  // A request that waits 1.5 s for its batch window is in flight when SIGTERM comes: it is answered, then the tool
  // exits 0; a connection after the signal is refused.
  std::atomic<int> status{0};
  std::thread in_flight([&] {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    auto r = c.Post("/v1/embed/text", json{{"texts", {"late"}}}.dump(), "application/json");
    status = r ? r->status : -1;
  });
  std::this_thread::sleep_for(300ms);
  ::kill(pid, SIGTERM);
  in_flight.join();
  EXPECT_EQ(status.load(), 200);
  EXPECT_EQ(clip::test::wait_exit_code(pid), 0) << read_bytes(tmp / "serve.log");
  const std::string log = read_bytes(tmp / "serve.log");
  EXPECT_CONTAINS(log, "SIGTERM: finishing the requests in flight");
  EXPECT_CONTAINS(log, "clip_serve: stopped");
  httplib::Client after("127.0.0.1", port);
  EXPECT_FALSE(after.Get("/healthz"));
}

#endif  // CLIP_TEST_HTTP

TEST(ClipServe, WithoutHttpSaysWhichOption) {
  if (clip::features().http) GTEST_SKIP() << "this build has HTTP (" << clip::features_summary() << ")";
  clip::CLIP model = tiny_model();
  const auto tokenizer = clip::load_tokenizer(model->config().text);
  clip::Server server(*model, *tokenizer, clip::ServeOptions().port(0));
  EXPECT_CONTAINS(clip::test::error_of([&] { server.start(); }), "CLIP_WITH_HTTP");
}
