// ImageIndex: the files table, the manifest, load and save by generations, search and near-duplicates. Building and
// updating are in index_build.cpp.
#include "clip/index/image_index.h"

#include <ATen/ATen.h>
#include <signal.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <regex>
#include <map>
#include <set>
#include <tuple>

#include "clip/embed.h"
#include "clip/util/error.h"
#include "clip/zeroshot/classifier.h"
#include "index/index_state.h"
#include "util/atomic_file.h"
#include "util/file.h"
#include "util/json.h"

namespace fs = std::filesystem;

namespace clip {
namespace {

constexpr const char* kFormat = "libclip-image-index";
constexpr int kVersion = 1;
uint32_t text_crc(const std::string& text) {
  return static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef*>(text.data()), text.size()));
}

// A table file named in the manifest, checked against its size and CRC-32.
std::string read_checked(const std::string& path, uint64_t bytes, uint32_t crc) {
  const std::string text = read_file(path, "index table", uint64_t(1) << 40);
  if (text.size() != bytes || text_crc(text) != crc) {
    fail(path, ": does not match the index's manifest (", text.size(), " bytes, CRC-32 ", text_crc(text),
         "; expected ", bytes, " bytes, CRC-32 ", crc, "); the index is damaged (rebuild it with clip_index build)");
  }
  return text;
}

std::string manifest_path(const std::string& dir) { return (fs::path(dir) / "index.json").string(); }

template <typename T>
T field(const nlohmann::json& j, const char* key, const std::string& source) {
  const auto it = j.find(key);
  if (it == j.end()) fail(source, ": has no '", key, "'; it is damaged or not a libclip image index");
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    fail(source, ": '", key, "' has the wrong type; the file is damaged");
  }
}

}  // namespace

ImageIndex::ImageIndex(std::unique_ptr<State> state) : state_(std::move(state)) {}
ImageIndex::ImageIndex(ImageIndex&&) noexcept = default;
ImageIndex& ImageIndex::operator=(ImageIndex&&) noexcept = default;
ImageIndex::~ImageIndex() = default;

int64_t ImageIndex::size() const { return int64_t(state_->files.size()); }
int64_t ImageIndex::dim() const { return state_->info.dim; }
const IndexInfo& ImageIndex::info() const { return state_->info; }
const std::vector<ItemError>& ImageIndex::skipped() const { return state_->skipped; }
const std::optional<IndexRecall>& ImageIndex::recall() const { return state_->recall; }
at::Tensor ImageIndex::embeddings() const { return state_->vectors->all(); }

std::string ImageIndex::path(int64_t row) const {
  TORCH_CHECK(row >= 0 && row < size(), "ImageIndex::path: row ", row, " of ", size());
  const std::string& root = state_->info.images_root;
  const std::string& rel = state_->files[size_t(row)].path;
  if (root.empty()) return rel;
  return root.back() == '/' ? root + rel : root + "/" + rel;
}

void ImageIndex::check_model(const CLIPImpl& model) const {
  const IndexInfo& i = state_->info;
  if (model.config().embed_dim != i.dim) {
    fail("the index holds ", i.dim, "-d embeddings and the model makes ", model.config().embed_dim,
         "-d ones: it was made with another model (", i.model_name, " from ", i.model_checkpoint,
         "); search with that one, or build a new index with this one");
  }
  if (i.model_fingerprint.empty()) return;  // from_embeddings: no model recorded
  const std::string fingerprint = weights_fingerprint(model);
  if (fingerprint != i.model_fingerprint) {
    fail("the index was made with another model (weights fingerprint ", i.model_fingerprint.substr(0, 12), " of ",
         i.model_name, " from ", i.model_checkpoint, "; this model's is ", fingerprint.substr(0, 12),
         "): its embeddings would not match; search with that model, or build a new index with this one");
  }
}

namespace {

// The manifest's facts, and the files it names as (path, bytes, CRC-32).
struct Manifest {
  IndexInfo info;
  int64_t ivf_lists_requested = 0, rows = 0, scanned_ns = 0;
  std::map<std::string, std::tuple<std::string, uint64_t, uint32_t>> files;
  std::optional<IndexRecall> recall;
};

Manifest parse_manifest(const std::string& dir, const std::string& manifest);

Manifest read_manifest(const std::string& dir) {
  const std::string manifest = manifest_path(dir);
  try {
    return parse_manifest(dir, manifest);
  } catch (const nlohmann::json::exception&) {  // a value of the wrong type somewhere the fields do not check
    fail(manifest, ": holds a value of the wrong type; the index is damaged (rebuild it with clip_index build)");
  }
}

Manifest parse_manifest(const std::string& dir, const std::string& manifest) {
  std::error_code ec;
  if (!fs::exists(manifest, ec)) {
    if (fs::exists(fs::path(dir) / "partial", ec)) {
      fail(dir, ": holds an unfinished build (partial/ but no index.json); run clip_index build again to finish it");
    }
    fail(dir, ": is not an image index (no index.json); make one with clip_index build");
  }
  const nlohmann::json j = parse_json(read_file(manifest, "index manifest"), manifest);
  if (!j.is_object() || !j.contains("format") || j["format"] != kFormat) {
    fail(manifest, ": is not a libclip image index manifest");
  }
  if (field<int>(j, "version", manifest) != kVersion) {
    fail(manifest, ": index format version ", field<int>(j, "version", manifest), "; this libclip reads version ",
         kVersion);
  }
  Manifest m;
  IndexInfo& info = m.info;
  const nlohmann::json model = field<nlohmann::json>(j, "model", manifest);
  info.model_fingerprint = field<std::string>(model, "fingerprint", manifest);
  info.model_name = field<std::string>(model, "name", manifest);
  info.model_checkpoint = field<std::string>(model, "checkpoint", manifest);
  info.model_config = field<std::string>(model, "config", manifest);
  // Indexes made before precisions existed were fp32.
  info.model_precision = model.contains("precision") ? field<std::string>(model, "precision", manifest) : "fp32";
  info.dim = field<int64_t>(model, "embed_dim", manifest);
  // The folder's bytes in hex: a name that is not UTF-8 survives JSON unchanged ("images" is for people to read).
  if (!hex_to_bytes(field<std::string>(j, "images_hex", manifest), info.images_root)) {
    fail(manifest, ": 'images_hex' is not hexadecimal; the index is damaged");
  }
  m.scanned_ns = field<int64_t>(j, "scanned_ns", manifest);
  info.generation = field<int64_t>(j, "generation", manifest);
  const nlohmann::json kind = field<nlohmann::json>(j, "index", manifest);
  info.kind = field<std::string>(kind, "kind", manifest);
  info.ivf_lists = field<int64_t>(kind, "ivf_lists", manifest);
  m.ivf_lists_requested = field<int64_t>(kind, "ivf_lists_requested", manifest);
  info.hnsw_m = field<int64_t>(kind, "hnsw_m", manifest);
  info.default_depth = field<int64_t>(kind, "default_depth", manifest);
  m.rows = field<int64_t>(j, "rows", manifest);
  const nlohmann::json files = field<nlohmann::json>(j, "files", manifest);
  for (const char* name : {"table", "skipped", "vectors"}) {
    const nlohmann::json f = field<nlohmann::json>(files, name, manifest);
    const std::string base = field<std::string>(f, "name", manifest);
    if (base.empty() || base.find('/') != std::string::npos) fail(manifest, ": names a file outside the index folder");
    m.files[name] = std::make_tuple((fs::path(dir) / base).string(), field<uint64_t>(f, "bytes", manifest),
                                    field<uint32_t>(f, "crc32", manifest));
  }
  if (j.contains("recall") && j["recall"].is_object()) {
    const nlohmann::json& r = j["recall"];
    IndexRecall recall;
    recall.image_queries = r.value("image_queries", int64_t(0));
    recall.text_queries = r.value("text_queries", int64_t(0));
    recall.k = r.value("k", int64_t(10));
    recall.chosen_depth = r.value("chosen_depth", int64_t(0));
    recall.target = r.value("target", 0.0);
    for (const auto& p : r.value("points", nlohmann::json::array())) {
      recall.points.push_back({p.value("depth", int64_t(0)), p.value("image_recall", 0.0), p.value("text_recall", 0.0)});
    }
    m.recall = recall;
  }
  return m;
}

}  // namespace

IndexInfo ImageIndex::read_info(const std::string& dir) { return read_manifest(dir).info; }

ImageIndex ImageIndex::load(const std::string& dir) {
  Manifest m = read_manifest(dir);
  auto state = std::make_unique<State>();
  state->info = m.info;
  state->ivf_lists_requested = m.ivf_lists_requested;
  state->scanned_ns = m.scanned_ns;
  state->recall = m.recall;
  const IndexInfo& info = state->info;
  const int64_t rows = m.rows;
  const auto file = [&](const char* name) { return m.files.at(name); };
  {
    const auto [path, bytes, crc] = file("table");
    state->files = parse_records(read_checked(path, bytes, crc), path);
    if (int64_t(state->files.size()) != rows) {
      fail(path, ": lists ", state->files.size(), " files, the manifest says ", rows, "; the index is damaged");
    }
  }
  {
    const auto [path, bytes, crc] = file("skipped");
    state->skipped = parse_skipped(read_checked(path, bytes, crc), path);
  }
  {
    const auto [path, bytes, crc] = file("vectors");
    state->vectors = detail::Vectors::read(path, bytes, crc);
    if (state->vectors->size() != rows || state->vectors->dim() != info.dim) {
      fail(path, ": holds ", state->vectors->size(), " vectors of ", state->vectors->dim(), " dimensions, the manifest ",
           rows, " of ", info.dim, "; the index is damaged");
    }
  }
  return ImageIndex(std::move(state));
}

void ImageIndex::save(const std::string& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(dir, ": cannot create the index folder (", ec.message(), ")");
  const State& s = *state_;
  int64_t generation = s.info.generation;
  if (fs::exists(manifest_path(dir), ec)) {  // another index there: take the generation after it
    try {
      const nlohmann::json j = parse_json(read_file(manifest_path(dir), "index manifest"), manifest_path(dir));
      if (j.is_object() && j.contains("generation") && j["generation"].is_number_integer()) {
        generation = std::max(generation, j["generation"].get<int64_t>());
      }
    } catch (const Error&) {  // a damaged manifest is replaced
    }
  }
  ++generation;
  const std::string tag = std::to_string(generation);
  const auto named = [&](const std::string& stem, const std::string& ext) { return stem + "." + tag + "." + ext; };

  nlohmann::json files;
  const auto [vector_bytes, vector_crc] = s.vectors->write((fs::path(dir) / named("vectors", "faiss")).string());
  files["vectors"] = {{"name", named("vectors", "faiss")}, {"bytes", vector_bytes}, {"crc32", vector_crc}};
  const std::string table = format_records(s.files), skipped = format_skipped(s.skipped);
  write_file_atomically((fs::path(dir) / named("files", "tsv")).string(), table);
  files["table"] = {{"name", named("files", "tsv")}, {"bytes", table.size()}, {"crc32", text_crc(table)}};
  write_file_atomically((fs::path(dir) / named("skipped", "tsv")).string(), skipped);
  files["skipped"] = {{"name", named("skipped", "tsv")}, {"bytes", skipped.size()}, {"crc32", text_crc(skipped)}};

  const IndexInfo& i = s.info;
  nlohmann::json j = {
      {"format", kFormat},
      {"version", kVersion},
      {"generation", generation},
      {"model",
       {{"fingerprint", i.model_fingerprint},
        {"name", i.model_name},
        {"checkpoint", i.model_checkpoint},
        {"config", i.model_config},
        {"precision", i.model_precision},
        {"embed_dim", i.dim}}},
      {"images", i.images_root},
      {"images_hex", bytes_to_hex(i.images_root)},
      {"scanned_ns", s.scanned_ns},
      {"rows", s.files.size()},
      {"skipped_files", s.skipped.size()},
      {"index",
       {{"kind", i.kind},
        {"ivf_lists", i.ivf_lists},
        {"ivf_lists_requested", s.ivf_lists_requested},
        {"hnsw_m", i.hnsw_m},
        {"default_depth", i.default_depth}}},
      {"files", files},
  };
  if (s.recall) {
    nlohmann::json points = nlohmann::json::array();
    for (const IndexRecallPoint& p : s.recall->points) {
      points.push_back({{"depth", p.depth}, {"image_recall", p.image_recall}, {"text_recall", p.text_recall}});
    }
    j["recall"] = {{"image_queries", s.recall->image_queries}, {"text_queries", s.recall->text_queries},
                   {"k", s.recall->k}, {"chosen_depth", s.recall->chosen_depth}, {"target", s.recall->target},
                   {"points", points}};
  }
  write_file_atomically(manifest_path(dir), dump_json(j, 2) + "\n");
  state_->info.generation = generation;

  // The old generation's files, now that the manifest names the new ones, and what a killed save left half-written
  // (AtomicFile's PATH.tmp.<pid> of a process that is gone).
  static const std::regex ours(R"((vectors\.\d+\.faiss|files\.\d+\.tsv|skipped\.\d+\.tsv))");
  static const std::regex temporary(R"((vectors\.\d+\.faiss|files\.\d+\.tsv|skipped\.\d+\.tsv|index\.json)\.tmp\.(\d+))");
  std::vector<fs::path> remove;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::smatch m;
    if (std::regex_match(name, ours) && name.find("." + tag + ".") == std::string::npos) {
      remove.push_back(it->path());
    } else if (std::regex_match(name, m, temporary) && ::kill(pid_t(std::stoll(m[2].str())), 0) != 0 &&
               errno == ESRCH) {
      remove.push_back(it->path());
    }
  }
  for (const fs::path& p : remove) fs::remove(p, ec);
}

std::vector<std::vector<IndexHit>> ImageIndex::search(const at::Tensor& queries, int64_t k, int64_t depth) const {
  if (queries.dim() != 2 || queries.size(1) != dim()) {
    fail("search: queries of shape ", shape_string(queries.sizes()), ", the index holds ", dim(), "-d embeddings");
  }
  if (k <= 0) fail("search: k must be positive, got ", k);
  k = std::min(k, size());
  // Plain loops into buffers kept per thread, no tensor operations: on a small index a search takes well under a
  // millisecond, and LibTorch's per-operation cost, or fresh pages for a large batch's buffers, would show.
  const at::Tensor q = queries.to(at::kCPU, at::kFloat).contiguous();
  const int64_t nq = q.size(0), d = q.size(1);
  thread_local std::vector<float> unit, scores;
  thread_local std::vector<int64_t> rows;
  unit.resize(size_t(nq * d));
  scores.resize(size_t(nq * k));
  rows.resize(size_t(nq * k));
  const float* in = q.data_ptr<float>();
  for (int64_t i = 0; i < nq; ++i) {
    double norm = 0;
    for (int64_t j = 0; j < d; ++j) norm += double(in[i * d + j]) * in[i * d + j];
    const float scale = norm > 0 ? float(1 / std::sqrt(norm)) : 0.0f;
    for (int64_t j = 0; j < d; ++j) unit[size_t(i * d + j)] = in[i * d + j] * scale;
  }
  const int64_t depth_used = depth > 0 ? depth : state_->info.default_depth;
  state_->vectors->search(unit.data(), nq, k, {depth_used, depth_used}, scores.data(), rows.data());
  std::vector<std::vector<IndexHit>> out(static_cast<size_t>(nq));
  for (int64_t i = 0; i < nq; ++i) {
    out[size_t(i)].reserve(size_t(k));
    for (int64_t j = 0; j < k; ++j) {
      const int64_t row = rows[size_t(i * k + j)];
      if (row < 0) break;
      out[size_t(i)].push_back({row, path(row), scores[size_t(i * k + j)]});
    }
  }
  return out;
}

at::Tensor ImageIndex::text_queries(CLIPImpl& model, const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                                    const std::vector<std::string>& templates) const {
  check_model(model);
  if (templates.empty()) return embed_texts(model, tokenizer, texts);
  return ZeroShotClassifier::build(model, tokenizer, texts, templates).weights().to(at::kCPU, at::kFloat);
}

at::Tensor ImageIndex::image_queries(CLIPImpl& model, const std::vector<std::string>& paths) const {
  check_model(model);
  EmbedOptions options;
  options.source = "query images";
  ImageEmbeddings e = embed_image_files(model, paths, options);
  if (!e.errors.empty()) fail(e.errors.front().message);
  return e.embeddings;
}

std::vector<std::vector<IndexHit>> ImageIndex::search_text(CLIPImpl& model, const Tokenizer& tokenizer,
                                                           const std::vector<std::string>& texts, int64_t k,
                                                           const std::vector<std::string>& templates) const {
  return search(text_queries(model, tokenizer, texts, templates), k);
}

std::vector<std::vector<IndexHit>> ImageIndex::search_image(CLIPImpl& model, const std::vector<std::string>& paths,
                                                            int64_t k) const {
  return search(image_queries(model, paths), k);
}

std::vector<DuplicateGroup> ImageIndex::duplicates(float threshold, int64_t neighbours) const {
  if (neighbours <= 0) fail("duplicates: the neighbours compared must be positive, got ", neighbours);
  const int64_t n = size();
  std::vector<int64_t> parent(static_cast<size_t>(n));
  std::iota(parent.begin(), parent.end(), 0);
  const auto find = [&](int64_t x) {
    while (parent[size_t(x)] != x) x = parent[size_t(x)] = parent[size_t(parent[size_t(x)])];
    return x;
  };
  std::vector<float> best(size_t(n), -std::numeric_limits<float>::infinity());
  const at::Tensor all = embeddings();
  const int64_t k = std::min(n, neighbours + 1);  // the image itself is among its neighbours
  const int64_t depth = state_->info.default_depth;
  for (int64_t start = 0; start < n; start += 4096) {
    at::Tensor scores, rows;
    state_->vectors->search(all.narrow(0, start, std::min<int64_t>(4096, n - start)), k, {depth, depth}, scores, rows);
    const auto s = scores.accessor<float, 2>();
    const auto r = rows.accessor<int64_t, 2>();
    for (int64_t i = 0; i < scores.size(0); ++i) {
      const int64_t a = start + i;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t b = r[i][j];
        if (b < 0 || s[i][j] < threshold) break;  // sorted by score
        if (b == a) continue;
        best[size_t(a)] = std::max(best[size_t(a)], s[i][j]);
        best[size_t(b)] = std::max(best[size_t(b)], s[i][j]);
        parent[size_t(find(a))] = find(b);
      }
    }
  }
  std::map<int64_t, DuplicateGroup> groups;
  for (int64_t i = 0; i < n; ++i) {
    if (best[size_t(i)] >= threshold) groups[find(i)].members.push_back({i, path(i), best[size_t(i)]});
  }
  std::vector<DuplicateGroup> out;
  for (auto& [root, g] : groups) out.push_back(std::move(g));
  std::stable_sort(out.begin(), out.end(), [](const DuplicateGroup& a, const DuplicateGroup& b) {
    return a.members.size() > b.members.size();
  });
  return out;
}

}  // namespace clip
