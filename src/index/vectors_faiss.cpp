// The image index's vectors on faiss (libfaiss-dev): IndexFlatIP, IndexIVFFlat or IndexHNSWFlat, written and read
// through faiss's own serialization with our atomic file underneath and a CRC-32 checked before faiss parses.
#include <ATen/ATen.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "clip/util/error.h"
#include "clip/util/log.h"
#include "index/vectors.h"
#include "util/atomic_file.h"
#include "util/file.h"

namespace clip::detail {
namespace {

uint32_t crc_update(uint32_t crc, const void* data, size_t size) {
  return static_cast<uint32_t>(crc32_z(crc, static_cast<const Bytef*>(data), size));
}

struct HashingWriter : faiss::IOWriter {
  explicit HashingWriter(AtomicFile& f) : file(f) {}
  size_t operator()(const void* ptr, size_t size, size_t nitems) override {
    const size_t n = size * nitems;
    file.write(ptr, n);
    crc = crc_update(crc, ptr, n);
    bytes += n;
    return nitems;
  }
  AtomicFile& file;
  uint64_t bytes = 0;
  uint32_t crc = 0;
};

struct FdReader : faiss::IOReader {
  FdReader(int f, std::string path) : fd(f) { name = std::move(path); }
  size_t operator()(void* ptr, size_t size, size_t nitems) override {
    if (size == 0 || nitems == 0) return 0;
    char* out = static_cast<char*>(ptr);
    size_t want = size * nitems, got = 0;
    while (got < want) {
      const ssize_t n = ::read(fd, out + got, want - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail(name, ": cannot read: ", std::strerror(errno));
      if (n == 0) break;
      got += size_t(n);
    }
    return got / size;
  }
  int fd;
};

// The CRC-32 of a whole file, streamed.
uint32_t file_crc(int fd, const std::string& path) {
  std::vector<char> buffer(size_t(1) << 20);
  uint32_t crc = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path, ": cannot read: ", std::strerror(errno));
    if (n == 0) return crc;
    crc = crc_update(crc, buffer.data(), size_t(n));
  }
}

class FaissVectors final : public Vectors {
 public:
  explicit FaissVectors(std::unique_ptr<faiss::Index> index) : index_(std::move(index)) {}

  std::pair<uint64_t, uint32_t> write(const std::string& path) const override {
    AtomicFile file(path);
    HashingWriter writer(file);
    try {
      faiss::write_index(index_.get(), &writer);
    } catch (const faiss::FaissException& e) {
      fail(path, ": faiss could not write the index: ", e.what());
    }
    file.commit();
    return {writer.bytes, writer.crc};
  }

  void search(const float* queries, int64_t nq, int64_t k, const SearchDepth& depth, float* scores,
              int64_t* rows) const override {
    if (nq == 0 || k == 0) return;
    faiss::SearchParametersIVF ivf;
    faiss::SearchParametersHNSW hnsw;
    const faiss::SearchParameters* params = nullptr;
    if (dynamic_cast<const faiss::IndexIVF*>(index_.get())) {
      ivf.nprobe = size_t(std::max<int64_t>(1, depth.nprobe));
      params = &ivf;
    } else if (dynamic_cast<const faiss::IndexHNSW*>(index_.get())) {
      hnsw.efSearch = int(std::max<int64_t>(k, depth.ef_search > 0 ? depth.ef_search : 16));
      params = &hnsw;
    }
    static_assert(sizeof(faiss::Index::idx_t) == sizeof(int64_t), "faiss labels are 64-bit");
    index_->search(nq, queries, k, scores, reinterpret_cast<faiss::Index::idx_t*>(rows), params);
    for (int64_t i = 0; i < nq * k; ++i) {
      if (rows[i] < 0) scores[i] = -std::numeric_limits<float>::infinity();
    }
  }

  at::Tensor all() const override {
    at::Tensor out = at::empty({size(), dim()}, at::kFloat);
    if (size() > 0) index_->reconstruct_n(0, size(), out.data_ptr<float>());
    return out;
  }
  int64_t size() const override { return int64_t(index_->ntotal); }
  int64_t dim() const override { return int64_t(index_->d); }
  const faiss::Index& native() const override { return *index_; }

 private:
  std::unique_ptr<faiss::Index> index_;
};

}  // namespace

std::unique_ptr<Vectors> Vectors::build(const VectorSpec& spec, const at::Tensor& data, const at::Tensor& train) {
  TORCH_CHECK(data.dim() == 2 && data.scalar_type() == at::kFloat && data.is_contiguous(),
              "Vectors::build: expected contiguous fp32 [N, D], got ", data.sizes());
  const int64_t d = data.size(1), n = data.size(0);
  std::unique_ptr<faiss::Index> index;
  try {
    if (spec.kind == "flat") {
      index = std::make_unique<faiss::IndexFlatIP>(d);
    } else if (spec.kind == "ivf") {
      auto ivf = std::make_unique<faiss::IndexIVFFlat>(new faiss::IndexFlatIP(d), d, size_t(spec.ivf_lists),
                                                      faiss::METRIC_INNER_PRODUCT);
      ivf->own_fields = true;
      const at::Tensor t = train.to(at::kFloat).contiguous();
      if (t.size(0) < spec.ivf_lists) {
        fail("--ivf ", spec.ivf_lists, ": needs at least as many training vectors as lists, and there are ",
             t.size(0), "; use fewer lists (about 4 * sqrt(N) is usual) or the flat index");
      }
      if (t.size(0) < 39 * spec.ivf_lists) {  // said once, in our words, instead of faiss's printf
        log_warning("--ivf ", spec.ivf_lists, ": k-means gets ", t.size(0), " training vectors, fewer than the 39 per "
                    "list it wants (", 39 * spec.ivf_lists, "); the lists will be uneven");
      }
      ivf->cp.min_points_per_centroid = 1;
      ivf->train(t.size(0), t.data_ptr<float>());
      index = std::move(ivf);
    } else if (spec.kind == "hnsw") {
      index = std::make_unique<faiss::IndexHNSWFlat>(d, int(spec.hnsw_m), faiss::METRIC_INNER_PRODUCT);
    } else {
      fail("unknown index kind '", spec.kind, "' (flat, ivf or hnsw)");
    }
    if (n > 0) index->add(n, data.data_ptr<float>());
    if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(index.get())) ivf->make_direct_map(true);  // for all()
  } catch (const faiss::FaissException& e) {
    fail("faiss could not build the ", spec.kind, " index: ", e.what());
  }
  return std::make_unique<FaissVectors>(std::move(index));
}

std::unique_ptr<Vectors> Vectors::read(const std::string& path, uint64_t bytes, uint32_t crc32) {
  RegularFile file(path, "index vectors file");
  if (file.size() != bytes) {
    fail(path, ": holds ", file.size(), " bytes, the index's manifest says ", bytes,
         "; the index is damaged (rebuild it with clip_index build)");
  }
  const uint32_t crc = file_crc(file.fd(), path);
  if (crc != crc32) {
    fail(path, ": its checksum (CRC-32 ", crc, ") differs from the manifest's (", crc32,
         "); the index is damaged (rebuild it with clip_index build)");
  }
  if (::lseek(file.fd(), 0, SEEK_SET) != 0) fail(path, ": cannot seek: ", std::strerror(errno));
  FdReader reader(file.fd(), path);
  try {
    std::unique_ptr<faiss::Index> index(faiss::read_index(&reader));
    const bool known = dynamic_cast<faiss::IndexFlat*>(index.get()) || dynamic_cast<faiss::IndexIVFFlat*>(index.get()) ||
                       dynamic_cast<faiss::IndexHNSWFlat*>(index.get());
    if (!known || index->metric_type != faiss::METRIC_INNER_PRODUCT) {
      fail(path, ": is a faiss index of a kind clip_index does not make (flat, IVF-flat or HNSW-flat, inner product)");
    }
    return std::make_unique<FaissVectors>(std::move(index));
  } catch (const faiss::FaissException& e) {
    fail(path, ": faiss cannot read it: ", e.what());
  }
}

}  // namespace clip::detail
