// ImageIndex::build and ::update: one reconciliation of a folder's files with what is already embedded (a finished
// index, an interrupted run's chunks), the model run only on what is new, checkpoints every N images, and the recall
// of an approximate index measured against exact search.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <unordered_map>

#include "clip/data/image_folder.h"
#include "clip/embed.h"
#include "clip/index/image_index.h"
#include "clip/io/safetensors.h"
#include "clip/model/model_tokenizer.h"
#include "clip/text/prompts.h"
#include "clip/util/error.h"
#include "clip/util/log.h"
#include "clip/util/progress.h"
#include "clip/util/sha256.h"
#include "index/index_state.h"
#include "util/atomic_file.h"
#include "util/clock.h"
#include "util/file.h"
#include "util/json.h"

namespace fs = std::filesystem;

namespace clip {
namespace {

// What is already embedded for a file.
struct Known {
  FileRecord record;
  at::Tensor embedding;  // [D]
  bool from_chunk = false;
  int64_t listed_ns = 0;  // when the run that recorded it listed the folder
};

// A file whose mtime is this close to (or after) the moment its run listed the folder may have changed again
// within the file system's timestamp resolution (2 s on FAT, about 1 s on network shares) after it was read: its
// size and mtime prove nothing, so it is hashed (as git treats "racily clean" entries).
constexpr int64_t kTimestampSlackNs = 2'000'000'000;

int64_t wall_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A file that could not be read in an interrupted run (not retried while unchanged, so a resumed run's batches fall
// where an uninterrupted run's do).
struct KnownSkip {
  int64_t size = 0, mtime_ns = 0;
  std::string message;
};

// One file of the folder as this run sees it.
struct Entry {
  FileRecord record;
  at::Tensor embedding;  // defined once known
  std::string error;     // non-empty: unreadable
};

std::string uint8_text(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), size_t(c.numel()));
}

at::Tensor text_uint8(const std::string& s) {
  at::Tensor t = at::empty({int64_t(s.size())}, at::kByte);
  std::copy(s.begin(), s.end(), t.data_ptr<uint8_t>());
  return t;
}

// The checkpoint chunks of interrupted runs in <dir>/partial: written one atomic file at a time.
class Chunks {
 public:
  Chunks(const std::string& dir, const std::string& fingerprint, const std::string& root, int64_t dim,
         int64_t listed_ns)
      : folder_(fs::path(dir) / "partial"), fingerprint_(fingerprint), root_(root), dim_(dim), listed_ns_(listed_ns) {}

  // Reads what interrupted runs left; refuses chunks of another model or folder.
  void read(std::map<std::string, Known>& known, std::map<std::string, KnownSkip>& skipped, int64_t& rows) {
    std::error_code ec;
    const fs::path manifest = folder_ / "build.json";
    if (!fs::exists(manifest, ec)) return;
    const nlohmann::json j = parse_json(read_file(manifest.string(), "build manifest"), manifest.string());
    const auto text = [&](const char* key) {
      return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
    };
    if (text("fingerprint") != fingerprint_) {
      fail(folder_.string(), ": holds an interrupted run made with another model; run again with that model, or "
           "remove ", folder_.string(), " to start over");
    }
    std::string images;
    if (!hex_to_bytes(text("images_hex"), images) || images != root_) {
      fail(folder_.string(), ": holds an interrupted run over another folder (", text("images"),
           "); remove it to start over");
    }
    std::vector<fs::path> files;
    for (fs::directory_iterator it(folder_, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().extension() == ".safetensors") files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      // The next chunk is numbered after every chunk there, usable or not.
      int64_t number = 0;
      if (std::sscanf(f.filename().string().c_str(), "chunk-%" SCNd64 ".safetensors", &number) == 1) {
        next_ = std::max(next_, number + 1);
      }
      try {
        const Safetensors s = read_safetensors(f.string());
        const at::Tensor e = s.tensors.at("embeddings");
        const std::vector<FileRecord> records = parse_records(uint8_text(s.tensors.at("files")), f.string());
        const std::vector<FileRecord> skip_stats = parse_records(uint8_text(s.tensors.at("skipped")), f.string());
        const std::vector<ItemError> messages = parse_skipped(uint8_text(s.tensors.at("messages")), f.string());
        const at::Tensor listed = s.tensors.at("listed_ns");
        if (e.dim() != 2 || e.size(0) != int64_t(records.size()) || e.size(1) != dim_ ||
            skip_stats.size() != messages.size() || listed.numel() != 1) {
          fail(f.string(), ": its parts disagree");
        }
        const int64_t listed_ns = listed.to(at::kLong).item<int64_t>();
        const at::Tensor ef = e.to(at::kFloat);
        for (size_t i = 0; i < records.size(); ++i) {
          known[records[i].path] = {records[i], ef[int64_t(i)], true, listed_ns};
        }
        for (size_t i = 0; i < skip_stats.size(); ++i) {
          skipped[skip_stats[i].path] = {skip_stats[i].size, skip_stats[i].mtime_ns, messages[i].message};
        }
        rows += int64_t(records.size());
        started_ = true;
      } catch (const std::exception& e) {  // written atomically, so only outside damage: redo its images
        log_warning(f.string(), ": cannot be used (", error_message(e), "); removed, its images are embedded again");
        fs::remove(f, ec);
      }
    }
  }

  void write(const std::vector<at::Tensor>& embeddings, const std::vector<FileRecord>& records,
             const std::vector<FileRecord>& skip_stats, const std::vector<ItemError>& skipped) {
    std::error_code ec;
    if (!started_) {
      fs::create_directories(folder_, ec);
      if (ec) fail(folder_.string(), ": cannot create (", ec.message(), ")");
      const std::string text = dump_json({{"fingerprint", fingerprint_}, {"images", root_},
                                          {"images_hex", bytes_to_hex(root_)}}, 2) + "\n";
      write_file_atomically((folder_ / "build.json").string(), text);
      started_ = true;
    }
    char name[48];
    std::snprintf(name, sizeof name, "chunk-%06" PRId64 ".safetensors", next_++);
    const at::Tensor e = embeddings.empty() ? at::empty({0, dim_}, at::kFloat) : at::stack(embeddings);
    write_safetensors((folder_ / name).string(), {{"embeddings", e},
                                                  {"files", text_uint8(format_records(records))},
                                                  {"skipped", text_uint8(format_records(skip_stats))},
                                                  {"messages", text_uint8(format_skipped(skipped))},
                                                  {"listed_ns", at::full({1}, listed_ns_, at::kLong)}});
  }

  void remove() {
    std::error_code ec;
    fs::remove_all(folder_, ec);
  }

 private:
  fs::path folder_;
  std::string fingerprint_, root_;
  int64_t dim_, listed_ns_;
  int64_t next_ = 1;
  bool started_ = false;
};

std::string sha256_of(const std::string& path) {
  try {
    return sha256_file(path);
  } catch (const std::exception&) {
    return "";  // unreadable: embedded (and reported) like a new file
  }
}

// Each query's k-th best exact score against `data` [N, D] (its own row skip[i] left out), computed in blocks of
// rows so that memory stays O(Q x block), whatever N is.
struct Exact {
  at::Tensor queries;  // [Q, D]
  at::Tensor kth;      // [Q]
};

Exact exact_scores(const at::Tensor& data, const at::Tensor& queries, int64_t k, const std::vector<int64_t>& skip) {
  constexpr int64_t kBlock = 65536;
  at::Tensor best = at::full({queries.size(0), k}, -std::numeric_limits<float>::infinity());
  for (int64_t start = 0; start < data.size(0); start += kBlock) {
    const int64_t rows = std::min(kBlock, data.size(0) - start);
    at::Tensor scores = at::matmul(queries, data.narrow(0, start, rows).t());
    for (size_t i = 0; i < skip.size(); ++i) {
      if (skip[i] >= start && skip[i] < start + rows) {
        scores[int64_t(i)][skip[i] - start] = -std::numeric_limits<float>::infinity();
      }
    }
    best = std::get<0>(at::cat({best, scores}, 1).topk(k, 1));
  }
  return {queries.contiguous(), best.select(1, k - 1).contiguous()};
}

// recall@k of `found` [Q, >=k] (rows; -1 none; a query's own row skip[i] left out): the share of the k found whose
// exact score reaches the k-th best exact score (within 1e-6, so that ties and rounding between faiss's and LibTorch's
// dot products do not count as misses).
double recall_at(const Exact& exact, const at::Tensor& data, const at::Tensor& found, int64_t k,
                 const std::vector<int64_t>& skip) {
  const int64_t q = found.size(0), d = data.size(1);
  if (q == 0 || k == 0) return 1.0;
  const float* queries = exact.queries.data_ptr<float>();
  const float* rows = data.data_ptr<float>();
  const auto kth = exact.kth.accessor<float, 1>();
  const auto f = found.accessor<int64_t, 2>();
  int64_t hits = 0;
  for (int64_t i = 0; i < q; ++i) {
    int64_t taken = 0;
    for (int64_t j = 0; j < found.size(1) && taken < k; ++j) {
      if (f[i][j] < 0 || (!skip.empty() && f[i][j] == skip[size_t(i)])) continue;
      ++taken;
      float score = 0;
      for (int64_t c = 0; c < d; ++c) score += queries[i * d + c] * rows[f[i][j] * d + c];
      hits += score >= kth[i] - 1e-6f;
    }
  }
  return double(hits) / double(q * k);
}

IndexRecall measure_recall(const detail::Vectors& vectors, const detail::VectorSpec& spec, const at::Tensor& data,
                           const std::vector<int64_t>& held_out, const at::Tensor& text_queries, double target) {
  IndexRecall r;
  const int64_t n = data.size(0);
  r.k = std::min<int64_t>(10, n - 1);
  r.target = target;
  r.image_queries = int64_t(held_out.size());
  r.text_queries = text_queries.defined() ? text_queries.size(0) : 0;
  if (r.k <= 0) return r;
  const at::Tensor image_q = data.index_select(0, at::tensor(held_out, at::kLong));
  const Exact image_exact = exact_scores(data, image_q, r.k, held_out);
  const Exact text_exact = r.text_queries > 0 ? exact_scores(data, text_queries, r.k, {}) : Exact{};
  // IVF: nprobe 1, 2, 4, ... up to every list (an exhaustive search); HNSW: efSearch 16, 32, ... up to N or 4096.
  // A depth that does not improve on the one before ends the sweep (HNSW's graph can leave some neighbours
  // unreachable at any depth).
  std::vector<int64_t> depths;
  if (spec.kind == "ivf") {
    for (int64_t d = 1; d < spec.ivf_lists; d *= 2) depths.push_back(d);
    depths.push_back(spec.ivf_lists);
  } else {
    const int64_t deepest = std::min<int64_t>(std::max<int64_t>(16, n), 4096);
    for (int64_t d = 16; d < deepest; d *= 2) depths.push_back(d);
    depths.push_back(deepest);
  }
  for (const int64_t d : depths) {
    at::Tensor scores, rows;
    IndexRecallPoint p;
    p.depth = d;
    vectors.search(image_q, r.k + 1, {d, d}, scores, rows);
    p.image_recall = recall_at(image_exact, data, rows, r.k, held_out);
    p.text_recall = 1.0;
    if (r.text_queries > 0) {
      vectors.search(text_queries, r.k, {d, d}, scores, rows);
      p.text_recall = recall_at(text_exact, data, rows, r.k, {});
    }
    const bool stalled = !r.points.empty() && p.image_recall <= r.points.back().image_recall &&
                         p.text_recall <= r.points.back().text_recall;
    r.points.push_back(p);
    r.chosen_depth = stalled ? r.points[r.points.size() - 2].depth : d;  // as good, and cheaper
    if ((p.image_recall >= target && p.text_recall >= target) || stalled) break;
  }
  return r;
}

// "a photo of a {class}." for up to `count` ImageNet classes, evenly spaced: text queries for the recall measurement
// (text and image embeddings sit apart, so an index tuned on images alone can fail text queries).
at::Tensor recall_text_queries(CLIPImpl& model, int64_t count) {
  try {
    const PromptSet set = load_prompt_set("openai_imagenet");
    const auto tokenizer = load_tokenizer(model.config().text);
    std::vector<std::string> texts;
    const int64_t total = int64_t(set.classes.size());
    const int64_t step = std::max<int64_t>(1, total / std::max<int64_t>(1, count));
    for (int64_t i = 0; i < total && int64_t(texts.size()) < count; i += step) {
      texts.push_back(fill_template("a photo of a {}.", set.classes[size_t(i)]));
    }
    if (texts.empty()) return {};
    return embed_texts(model, *tokenizer, texts);
  } catch (const std::exception& e) {
    log_warning("recall on text queries not measured: ", error_message(e));
    return {};
  }
}

detail::VectorSpec spec_for(const IndexOptions& o, int64_t n, int64_t train_rows) {
  detail::VectorSpec spec;
  spec.kind = o.kind;
  if (spec.kind == "ivf") {
    // faiss's k-means wants >= 39 training points per centroid; 4 sqrt(N) lists is the usual choice.
    spec.ivf_lists = o.ivf_lists > 0
                         ? o.ivf_lists
                         : std::max<int64_t>(1, std::min<int64_t>(int64_t(4 * std::sqrt(double(n))), train_rows / 39));
  } else if (spec.kind == "hnsw") {
    if (o.hnsw_m < 2) fail("--hnsw ", o.hnsw_m, ": the neighbours per node must be at least 2 (16 to 64 is usual)");
    spec.hnsw_m = o.hnsw_m;
  } else if (spec.kind != "flat") {
    fail("unknown index kind '", spec.kind, "': flat, ivf or hnsw");
  }
  return spec;
}

// The vectors of `data` [N, D] into `state`; for an approximate index, the recall of held-out image queries (and,
// with a model, of text queries) against exact search, which sets the default search depth. `where` names the index
// in warnings.
void add_vectors(ImageIndex::State& state, const at::Tensor& data, const IndexOptions& options, CLIPImpl* model,
                 const std::string& where) {
  const int64_t n = data.size(0);
  std::vector<int64_t> held_out;
  at::Tensor train = data;
  if (options.kind != "flat" && n >= 4 && options.target_recall > 0) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(0x1db1);
    std::shuffle(order.begin(), order.end(), rng);
    held_out.assign(order.begin(), order.begin() + std::min<int64_t>(options.recall_queries, n / 2));
    std::sort(held_out.begin(), held_out.end());
    std::vector<int64_t> rest(order.begin() + int64_t(held_out.size()), order.end());
    std::sort(rest.begin(), rest.end());
    train = data.index_select(0, at::tensor(rest, at::kLong));
  }
  const detail::VectorSpec spec = spec_for(options, n, train.size(0));
  state.vectors = detail::Vectors::build(spec, data, train);
  IndexInfo& info = state.info;
  info.kind = spec.kind;
  info.ivf_lists = spec.ivf_lists;
  info.hnsw_m = spec.hnsw_m;
  state.ivf_lists_requested = options.ivf_lists;
  if (held_out.empty()) return;
  const at::Tensor text = model ? recall_text_queries(*model, options.recall_queries) : at::Tensor();
  state.recall = measure_recall(*state.vectors, spec, data, held_out, text, options.target_recall);
  info.default_depth = state.recall->chosen_depth;
  const IndexRecallPoint& deepest = state.recall->points.back();
  if (deepest.image_recall < options.target_recall || deepest.text_recall < options.target_recall) {
    log_warning(where, ": the ", spec.kind, " index misses results even at its deepest search (recall@",
                state.recall->k, " ", deepest.image_recall, " for images, ", deepest.text_recall, " for texts, ",
                "below the target ", options.target_recall, "); ", spec.kind == "hnsw" ? "a larger --hnsw M or " : "",
                "the exact index (--flat) would not");
  }
}

bool same_record(const FileRecord& a, const FileRecord& b) {
  return a.path == b.path && a.size == b.size && a.mtime_ns == b.mtime_ns && a.sha256 == b.sha256;
}

// Whether an update found the index as it is: the same files, unchanged, the same unreadable ones, the same kind.
bool unchanged(const ImageIndex::State& prior, const ImageIndex::State& now, const std::vector<ItemError>& skipped,
               const IndexOptions& o, const std::string& root) {
  if (o.model_checkpoint != prior.info.model_checkpoint || o.model_config != prior.info.model_config ||
      (o.kind != "flat" && (!prior.recall || prior.recall->target != o.target_recall))) {
    return false;
  }
  if (root != prior.info.images_root || o.kind != prior.info.kind || o.ivf_lists != prior.ivf_lists_requested ||
      (o.kind == "hnsw" && o.hnsw_m != prior.info.hnsw_m) || !std::equal(now.files.begin(), now.files.end(),
                                                                          prior.files.begin(), prior.files.end(),
                                                                          same_record)) {
    return false;
  }
  return std::equal(skipped.begin(), skipped.end(), prior.skipped.begin(), prior.skipped.end(),
                    [](const ItemError& a, const ItemError& b) { return a.path == b.path && a.message == b.message; });
}

void check_options(const IndexOptions& o) {
  if (o.batch_size <= 0) fail("the batch size must be positive, got ", o.batch_size);
  if (o.checkpoint_every <= 0) fail("checkpoint_every must be positive, got ", o.checkpoint_every);
  if (o.ivf_lists < 0) fail("--ivf ", o.ivf_lists, ": the number of lists must be positive");
  if (o.target_recall < 0 || o.target_recall > 1) fail("--target-recall ", o.target_recall, ": must be in [0, 1]");
  if (o.recall_queries <= 0) fail("--recall-queries ", o.recall_queries, ": must be positive");
}

std::string absolute_folder(const std::string& images) {
  std::error_code ec;
  const fs::path abs = fs::absolute(images, ec).lexically_normal();
  std::string s = abs.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

// The one path of build and update: `prior` is the finished index being updated (or null).
ImageIndex ImageIndex::reconcile(CLIPImpl& model, const std::string& root, const std::string& dir, IndexOptions options,
                     const State* prior, IndexBuildReport* report_out) {
  check_options(options);
  const auto start = Clock::now();
  const int64_t listed_ns = wall_clock_ns();
  IndexBuildReport report;
  const std::string fingerprint = weights_fingerprint(model);
  const int64_t dim = model.config().embed_dim;

  std::map<std::string, Known> known;
  if (prior) {
    const at::Tensor all = prior->vectors->all();
    for (size_t i = 0; i < prior->files.size(); ++i) {
      known[prior->files[i].path] = {prior->files[i], all[int64_t(i)], false, prior->scanned_ns};
    }
  }
  Chunks chunks(dir, fingerprint, root, dim, listed_ns);
  std::map<std::string, KnownSkip> known_skipped;
  int64_t chunk_rows = 0;
  chunks.read(known, known_skipped, chunk_rows);
  std::unordered_map<std::string, const Known*> by_hash;
  for (const auto& [path, k] : known) by_hash.emplace(k.record.sha256, &k);

  // The folder now, in row order.
  std::vector<std::string> rels;
  for (const std::string& p : scan_images(root).paths) rels.push_back(fs::path(p).lexically_relative(root).string());
  std::sort(rels.begin(), rels.end());
  report.files = int64_t(rels.size());
  const std::set<std::string> present(rels.begin(), rels.end());
  std::set<int64_t> vanished_sizes;
  if (prior) {
    for (const FileRecord& r : prior->files) {
      if (!present.count(r.path)) {
        ++report.removed;
        vanished_sizes.insert(r.size);
      }
    }
  }

  std::vector<Entry> entries(rels.size());
  std::vector<size_t> pending, hash_first;
  for (size_t i = 0; i < rels.size(); ++i) {
    Entry& e = entries[i];
    e.record.path = rels[i];
    const std::string full = (fs::path(root) / rels[i]).string();
    const auto st = stat_file(full);
    if (!st) {
      e.error = full + ": disappeared while being indexed";
      continue;
    }
    e.record.size = st->first;
    e.record.mtime_ns = st->second;
    const auto k = known.find(rels[i]);
    const auto s = known_skipped.find(rels[i]);
    const bool same_stat = k != known.end() && k->second.record.size == e.record.size &&
                           k->second.record.mtime_ns == e.record.mtime_ns;
    if (same_stat && e.record.mtime_ns < k->second.listed_ns - kTimestampSlackNs) {
      e.record.sha256 = k->second.record.sha256;
      e.embedding = k->second.embedding;
      ++report.reused;
      if (k->second.from_chunk) ++report.resumed;
    } else if (s != known_skipped.end() && s->second.size == e.record.size && s->second.mtime_ns == e.record.mtime_ns) {
      e.error = s->second.message;
    } else if ((k != known.end() && k->second.record.size == e.record.size) || vanished_sizes.count(e.record.size)) {
      hash_first.push_back(i);  // touched, racily clean, or perhaps renamed: the content decides
    } else {
      pending.push_back(i);
    }
  }
  // Touched and possibly renamed files: hash them before deciding to run the model.
  at::parallel_for(0, int64_t(hash_first.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      Entry& e = entries[hash_first[size_t(j)]];
      e.record.sha256 = sha256_of((fs::path(root) / e.record.path).string());
    }
  });
  for (const size_t i : hash_first) {
    const auto h = by_hash.find(entries[i].record.sha256);
    if (!entries[i].record.sha256.empty() && h != by_hash.end()) {
      entries[i].embedding = h->second->embedding;
      ++report.reused;
      if (h->second->from_chunk) ++report.resumed;
    } else {
      pending.push_back(i);
    }
  }
  std::sort(pending.begin(), pending.end());

  // The model, over what is new, in checkpointed chunks of whole batches.
  if (!pending.empty()) {
    std::vector<std::string> paths;
    for (const size_t i : pending) paths.push_back((fs::path(root) / entries[i].record.path).string());
    EmbedOptions eo;
    eo.batch_size = options.batch_size;
    eo.workers = options.workers;
    eo.hash_content = true;
    eo.source = root;
    const int64_t every = (options.checkpoint_every + options.batch_size - 1) / options.batch_size * options.batch_size;
    ImageFeatureStream stream(model, paths, eo);
    Progress progress("embed", int64_t(paths.size()), "img");
    std::vector<at::Tensor> chunk_embeddings;
    std::vector<FileRecord> chunk_records, chunk_skip_stats;
    std::vector<ItemError> chunk_skipped;
    int64_t in_chunk = 0;
    while (auto batch = stream.next()) {
      const at::Tensor features = batch->indices.empty() ? at::Tensor() : l2_normalize(batch->features).to(at::kCPU, at::kFloat);
      for (size_t j = 0; j < batch->indices.size(); ++j) {
        Entry& e = entries[pending[size_t(batch->indices[j])]];
        e.embedding = features[int64_t(j)];
        e.record.sha256 = batch->sha256[j];
        chunk_embeddings.push_back(e.embedding);
        chunk_records.push_back(e.record);
      }
      for (const ItemError& err : batch->errors) {
        Entry& e = entries[pending[size_t(err.index)]];
        e.error = err.message;
        if (options.report_skipped) log_warning("skipped ", err.message);
        chunk_skip_stats.push_back(e.record);
        chunk_skip_stats.back().sha256 = std::string(64, '0');
        chunk_skipped.push_back(err);
      }
      const int64_t items = int64_t(batch->indices.size() + batch->errors.size());
      report.embedded += int64_t(batch->indices.size());
      in_chunk += items;
      if (options.progress) progress.advance(items);
      if (in_chunk >= every) {
        chunks.write(chunk_embeddings, chunk_records, chunk_skip_stats, chunk_skipped);
        chunk_embeddings.clear();
        chunk_records.clear();
        chunk_skip_stats.clear();
        chunk_skipped.clear();
        in_chunk = 0;
      }
    }
    if (options.progress) progress.finish();
    report.model_seconds = stream.model_seconds();
    report.wait_seconds = stream.wait_seconds();
    report.cpu = stream.cpu_split();
  }

  // Rows in path order.
  auto state = std::make_unique<State>();
  std::vector<at::Tensor> rows;
  for (Entry& e : entries) {
    if (!e.error.empty()) {
      report.skipped.push_back({int64_t(report.skipped.size()), (fs::path(root) / e.record.path).string(), e.error});
      continue;
    }
    rows.push_back(e.embedding);
    state->files.push_back(std::move(e.record));
  }
  if (rows.empty()) fail(root, ": none of its ", rels.size(), " images could be read");
  if (prior && unchanged(*prior, *state, report.skipped, options, root)) {  // nothing to write
    chunks.remove();
    report.seconds = seconds_since(start);
    if (report_out) *report_out = std::move(report);
    return load(dir);
  }
  const at::Tensor data = at::stack(rows).contiguous();

  IndexInfo& info = state->info;
  info.images_root = root;
  info.dim = dim;
  info.model_fingerprint = fingerprint;
  info.model_name = model.config().name;
  info.model_checkpoint = options.model_checkpoint;
  info.model_config = options.model_config;
  const std::string precision = to_string(model.inference_precision());
  if (!prior || (report.embedded > 0 && report.reused == 0)) {
    info.model_precision = precision;
  } else if (report.embedded == 0 || prior->info.model_precision == precision) {
    info.model_precision = prior->info.model_precision;
  } else {
    log_warning(dir, ": the ", report.embedded, " images embedded now used ", precision, ", the ", report.reused,
                " rows kept ", prior->info.model_precision, " (cosine >= 0.99 between the two, docs/performance.md); "
                "the index's precision is now 'mixed': build it again for one precision");
    info.model_precision = "mixed";
  }
  info.generation = prior ? prior->info.generation : 0;
  state->scanned_ns = listed_ns;
  add_vectors(*state, data, options, &model, dir);
  report.recall = state->recall;
  state->skipped = report.skipped;

  ImageIndex index(std::move(state));
  index.save(dir);
  chunks.remove();
  report.seconds = seconds_since(start);
  if (report_out) *report_out = std::move(report);
  return index;
}

ImageIndex ImageIndex::from_embeddings(const at::Tensor& embeddings, const std::vector<std::string>& paths,
                                       const IndexOptions& options) {
  if (embeddings.dim() != 2 || int64_t(paths.size()) != embeddings.size(0) || embeddings.size(0) == 0) {
    fail("from_embeddings: ", paths.size(), " paths for embeddings of shape ", shape_string(embeddings.sizes()),
         "; expected one non-empty [N, D] row per path");
  }
  IndexOptions o = options;
  if (o.kind.empty()) o.kind = "flat";
  auto state = std::make_unique<State>();
  for (const std::string& p : paths) state->files.push_back({p, 0, 0, std::string(64, '0')});
  state->info.dim = embeddings.size(1);
  add_vectors(*state, l2_normalize(embeddings.to(at::kCPU, at::kFloat)).contiguous(), o, nullptr, "from_embeddings");
  return ImageIndex(std::move(state));
}

ImageIndex ImageIndex::build(CLIPImpl& model, const std::string& images, const std::string& dir,
                             const IndexOptions& options, IndexBuildReport* report) {
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "index.json", ec)) {
    fail(dir, ": already holds an index; bring it up to date with clip_index update (ImageIndex::update), or "
         "remove it to build anew");
  }
  IndexOptions o = options;
  if (o.kind.empty()) o.kind = "flat";
  return reconcile(model, absolute_folder(images), dir, o, nullptr, report);
}

ImageIndex ImageIndex::update(CLIPImpl& model, const std::string& dir, const IndexOptions& options,
                              const std::string& images, IndexBuildReport* report) {
  ImageIndex index = load(dir);
  if (index.info().images_root.empty()) {
    fail(dir, ": was made from embeddings, not from a folder of images; there is nothing to update it from");
  }
  index.check_model(model);
  const State& prior = *index.state_;
  IndexOptions o = options;
  if (o.kind.empty()) {  // keep the index's kind
    o.kind = prior.info.kind;
    o.ivf_lists = prior.ivf_lists_requested;
    o.hnsw_m = prior.info.hnsw_m;
  }
  if (o.model_checkpoint.empty()) o.model_checkpoint = prior.info.model_checkpoint;
  if (o.model_config.empty()) o.model_config = prior.info.model_config;
  const std::string root = images.empty() ? prior.info.images_root : absolute_folder(images);
  return reconcile(model, root, dir, o, &prior, report);
}

}  // namespace clip
