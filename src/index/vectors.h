#pragma once
// The image index's vectors: a faiss index under inner product (flat, IVF-flat or HNSW-flat; every kind keeps the
// vectors themselves, so they can be read back exactly). The index's only file that knows faiss is vectors_faiss.cpp
// (the search benchmark, src/bench/search_bench.cpp, calls faiss too, as the baseline); a build without faiss
// compiles vectors_unavailable.cpp, whose functions throw saying so. Internal.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>

namespace faiss {
struct Index;
}

namespace clip::detail {

/// What kind of faiss index, and how it searches by default.
struct VectorSpec {
  std::string kind = "flat";  ///< "flat", "ivf" or "hnsw"
  int64_t ivf_lists = 0;      ///< ivf: inverted lists (k-means centroids)
  int64_t hnsw_m = 0;         ///< hnsw: graph neighbours per node
  int64_t nprobe = 0;         ///< ivf: lists visited per query (0: faiss's default, 1)
  int64_t ef_search = 0;      ///< hnsw: candidate list length per query (0: faiss's default, 16)
};

/// Search depth for one search call (0: the spec's default).
struct SearchDepth {
  int64_t nprobe = 0;
  int64_t ef_search = 0;
};

class Vectors {
 public:
  /// An index of `spec`'s kind over `data` [N, D] (fp32, contiguous), trained (IVF's k-means) on `train` [T, D].
  static std::unique_ptr<Vectors> build(const VectorSpec& spec, const at::Tensor& data, const at::Tensor& train);
  /// Reads a file written by write(); its size and CRC-32 must be `bytes` and `crc32`, else clip::Error naming it.
  static std::unique_ptr<Vectors> read(const std::string& path, uint64_t bytes, uint32_t crc32);
  virtual ~Vectors() = default;

  /// Writes the index atomically; returns {bytes, CRC-32} of what was written.
  virtual std::pair<uint64_t, uint32_t> write(const std::string& path) const = 0;
  /// Top k by inner product per query row of `queries` [Q, D]: scores [Q, k] fp32 and rows [Q, k] int64, -1
  /// (score -inf) where the index holds fewer than k (or an approximate search found fewer).
  void search(const at::Tensor& queries, int64_t k, const SearchDepth& depth, at::Tensor& scores,
              at::Tensor& rows) const;
  /// The same on plain buffers: `queries` [nq, D] row-major; `scores` and `rows` [nq, k].
  virtual void search(const float* queries, int64_t nq, int64_t k, const SearchDepth& depth, float* scores,
                      int64_t* rows) const = 0;
  /// Every stored vector, [N, D] fp32, in row order.
  virtual at::Tensor all() const = 0;
  virtual int64_t size() const = 0;
  virtual int64_t dim() const = 0;
  /// The faiss index itself (the search benchmark measures libclip's overhead on the very same object).
  virtual const faiss::Index& native() const = 0;
};

}  // namespace clip::detail
