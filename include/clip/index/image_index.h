#pragma once
/// A folder of images, embedded once and searched by text, by image or by embedding; kept up to date without
/// re-embedding what did not change. The vectors live in a faiss index (exact inner product by default, IVF or
/// HNSW for large collections), beside a table of the files (path, size, mtime, SHA-256 of the content, row).
///
///   clip::IndexBuildReport report;
///   clip::ImageIndex index = clip::ImageIndex::build(*model, "photos/", "photos.index", {}, &report);
///   auto hits = index.search_text(*model, *tokenizer, {"a dog on a beach"}, /*k=*/10);
///   for (const clip::IndexHit& h : hits[0]) std::printf("%.3f %s\n", h.score, h.path.c_str());
///
///   clip::ImageIndex index = clip::ImageIndex::load("photos.index");   // later, in another program
///   index.check_model(*model);                                         // refuses another model's index
///
/// The index folder: `index.json` (the manifest: model fingerprint, kind, row count, the files of the current
/// generation with their sizes and CRC-32s), `vectors.<gen>.faiss`, `files.<gen>.tsv` and `skipped.<gen>.tsv`.
/// A save writes a new generation's files, then replaces the manifest atomically, then removes the old files, so a
/// crash leaves the old index or the new one, never a mix. While building, every `checkpoint_every` images go to
/// `partial/` (one atomic file a chunk); an interrupted build or update, run again, starts after the last chunk.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clip/image/loader.h"
#include "clip/util/cpu_split.h"
#include "clip/model/clip_model.h"
#include "clip/text/tokenizer.h"

namespace clip {

/// How an index is built and searched.
struct IndexOptions {
  std::string kind;                ///< "flat" (exact), "ivf" or "hnsw"; empty: flat for build, kept by update
  int64_t ivf_lists = 0;           ///< ivf: inverted lists (0: 4 * sqrt(N), at least 1)
  int64_t hnsw_m = 32;             ///< hnsw: neighbours per node
  /// ivf/hnsw: the search depth (nprobe, efSearch) stored as the default is the smallest whose recall@10 against
  /// exact search reaches this on the text queries (see IndexRecall); 0 keeps faiss's defaults.
  double target_recall = 0.95;
  int64_t recall_queries = 500;    ///< held-out image queries for the recall measurement (at most N / 2)
  int64_t batch_size = 64;         ///< images per forward pass
  int workers = 0;                 ///< decoding threads (0: one per core)
  int64_t checkpoint_every = 2048; ///< images per checkpoint chunk (rounded up to whole batches)
  bool progress = true;            ///< progress with rate and ETA on stderr (or the log sink)
  bool report_skipped = true;      ///< print each unreadable file (they are always listed in the report)
  std::string model_checkpoint;    ///< recorded in the manifest so clip_search can load the model by itself
  std::string model_config;        ///< likewise (a config file or registry name; may be empty)
};

/// One row of an approximate index's recall measurement: recall@10 against exact search at one search depth.
struct IndexRecallPoint {
  int64_t depth = 0;        ///< nprobe (ivf) or efSearch (hnsw)
  double image_recall = 0;  ///< held-out images as queries (their own row left out)
  double text_recall = 0;   ///< "a photo of a {class}." for the ImageNet classes as queries
};

/// Recall of an approximate index, measured at build time.
struct IndexRecall {
  int64_t image_queries = 0, text_queries = 0, k = 10;
  std::vector<IndexRecallPoint> points;  ///< increasing depth
  int64_t chosen_depth = 0;              ///< the default stored in the index
  double target = 0;                     ///< the recall it was chosen to reach
};

/// What build/update did.
struct IndexBuildReport {
  int64_t files = 0;     ///< image files found
  int64_t embedded = 0;  ///< run through the model now
  int64_t reused = 0;    ///< embeddings kept (unchanged, renamed or touched files, or a resumed build's chunks)
  int64_t removed = 0;   ///< rows of files that are gone
  int64_t resumed = 0;   ///< of `reused`, from an interrupted run's chunks
  std::vector<ItemError> skipped;  ///< unreadable files (not in the index)
  double seconds = 0, model_seconds = 0, wait_seconds = 0;  ///< wall, in the model, waiting for decoding
  std::optional<CpuSplit> cpu;  ///< where the cores' time went while images were embedded (when any were)
  std::optional<IndexRecall> recall;  ///< ivf/hnsw
};

/// A search result.
struct IndexHit {
  int64_t row = 0;
  std::string path;  ///< the file as found (root joined with its stored relative path)
  float score = 0;   ///< inner product of unit vectors: cosine similarity
};

/// Near-duplicate images: every member's similarity with some other member is at least the threshold.
struct DuplicateGroup {
  std::vector<IndexHit> members;  ///< score: the member's highest similarity within the group
};

/// Facts about a loaded index.
struct IndexInfo {
  std::string images_root;   ///< absolute
  std::string kind;
  int64_t ivf_lists = 0, hnsw_m = 0, default_depth = 0;
  int64_t dim = 0;
  std::string model_fingerprint, model_name, model_checkpoint, model_config;
  /// the inference precision the embeddings were made with (fp32, bf16, int8; "mixed" after an update that
  /// embedded new files in another precision than the rows it kept)
  std::string model_precision = "fp32";
  int64_t generation = 0;
};

class ImageIndex {
 public:
  /// Embeds every image under the folder `images` into a new index saved in `dir`. When `dir` holds chunks of an
  /// interrupted build with the same model, they are reused. Refuses a `dir` that already holds a finished index
  /// (use update) and chunks made by another model.
  static ImageIndex build(CLIPImpl& model, const std::string& images, const std::string& dir,
                          const IndexOptions& options = {}, IndexBuildReport* report = nullptr);
  /// Brings the index in `dir` up to date with its images folder (or `images`, when not empty): new files are
  /// embedded, changed ones re-embedded (a file whose size and mtime differ; when its content hash is unchanged the
  /// stored embedding is kept; likewise for a renamed file), gone ones removed, the rest kept as they are. The
  /// result equals a fresh build. With `options.kind` empty the index keeps its kind and settings.
  static ImageIndex update(CLIPImpl& model, const std::string& dir, const IndexOptions& options = {},
                           const std::string& images = "", IndexBuildReport* report = nullptr);
  /// An index over embeddings made elsewhere ([N, D], normalized here), one row per path (kept as given). It
  /// records no model: check_model then checks only the embedding width. update() refuses it (no folder).
  static ImageIndex from_embeddings(const at::Tensor& embeddings, const std::vector<std::string>& paths,
                                    const IndexOptions& options = {});
  /// Reads the index in `dir`; a damaged or incomplete one is refused with one line naming the file.
  static ImageIndex load(const std::string& dir);
  /// The manifest's facts alone (which model, which folder, which kind), without reading the vectors.
  static IndexInfo read_info(const std::string& dir);
  /// Recall measured when the index was last built or updated (approximate kinds).
  const std::optional<IndexRecall>& recall() const;

  ImageIndex(ImageIndex&&) noexcept;
  ImageIndex& operator=(ImageIndex&&) noexcept;
  ~ImageIndex();

  /// Throws clip::Error unless `model` is the one the index was made with (its weights fingerprint and
  /// embedding width; only the width for an index made from_embeddings).
  void check_model(const CLIPImpl& model) const;

  /// Top k rows per query [Q, D] (normalized here), best first; `depth` overrides the stored nprobe/efSearch.
  std::vector<std::vector<IndexHit>> search(const at::Tensor& queries, int64_t k, int64_t depth = 0) const;
  /// One query per text (fp32, on the CPU): the mean of its normalized embeddings under `templates`
  /// ("a photo of a {}.") or the text itself when there are none.
  at::Tensor text_queries(CLIPImpl& model, const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                          const std::vector<std::string>& templates = {}) const;
  /// One query per image file (normalized; fp32, on the CPU). Throws clip::Error naming a file that cannot be read.
  at::Tensor image_queries(CLIPImpl& model, const std::vector<std::string>& paths) const;
  std::vector<std::vector<IndexHit>> search_text(CLIPImpl& model, const Tokenizer& tokenizer,
                                                 const std::vector<std::string>& texts, int64_t k,
                                                 const std::vector<std::string>& templates = {}) const;
  std::vector<std::vector<IndexHit>> search_image(CLIPImpl& model, const std::vector<std::string>& paths,
                                                  int64_t k) const;

  /// Groups of near-duplicates (similarity >= threshold, joined transitively), largest first. Each image is
  /// compared with its `neighbours` nearest (through the index's own search).
  std::vector<DuplicateGroup> duplicates(float threshold, int64_t neighbours = 32) const;

  /// Writes the index to `dir` as a new generation (see the file comment).
  void save(const std::string& dir) const;

  int64_t size() const;
  int64_t dim() const;
  /// The file of `row`, as found (absolute).
  std::string path(int64_t row) const;
  /// The stored embeddings [N, D] fp32, in row order.
  at::Tensor embeddings() const;
  const IndexInfo& info() const;
  /// Files that could not be read when the index was last built or updated (not in the index).
  const std::vector<ItemError>& skipped() const;

  struct State;

 private:
  friend struct IndexAccess;  // libclip's own code (src/index/index_state.h)
  explicit ImageIndex(std::unique_ptr<State> state);
  static ImageIndex reconcile(CLIPImpl& model, const std::string& root, const std::string& dir, IndexOptions options,
                              const State* prior, IndexBuildReport* report);
  std::unique_ptr<State> state_;
};

}  // namespace clip
