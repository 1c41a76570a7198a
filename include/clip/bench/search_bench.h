#pragma once
/// The image index's search speed beside faiss's own: the same faiss index object searched through
/// clip::ImageIndex::search (normalization, hits with paths) and through faiss's C++ API alone, on random unit
/// vectors, in alternating rounds (ABBA), so that the ratio is libclip's overhead.
///
///   clip::SearchBenchOptions o;   // 10^4, 10^5, 10^6 vectors of 512-d; flat and IVF; 1 and 64 queries a call
///   for (const clip::SearchBenchRow& r : clip::run_search_benchmark(o)) ...
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace clip {

struct SearchBenchOptions {
  std::vector<int64_t> sizes{10'000, 100'000, 1'000'000};  ///< vectors in the index
  std::vector<std::string> kinds{"flat", "ivf"};
  std::vector<int64_t> batches{1, 64};  ///< queries per search call
  int64_t dim = 512;
  int64_t k = 10;
  int64_t nprobe = 16;                  ///< ivf: lists visited (ivf lists: sqrt(N))
  double seconds = 1.0;                 ///< about this long per timed round
  int64_t rounds = 10;                  ///< rounds of each side, in pairs of alternating order
  uint64_t seed = 0;
};

struct SearchBenchRow {
  int64_t size = 0;
  std::string kind;
  int64_t lists = 0;  ///< ivf
  int64_t batch = 0;
  double faiss_qps = 0, libclip_qps = 0;           ///< queries per second, median round
  double faiss_ms = 0, libclip_ms = 0;             ///< latency of one search call, median round
  double overhead = 0;  ///< libclip's extra time, a fraction: the median over paired rounds of libclip / faiss - 1
};

/// Runs every size x kind x batch; `log` gets a line per finished row (and while building).
std::vector<SearchBenchRow> run_search_benchmark(const SearchBenchOptions& options,
                                                 const std::function<void(const std::string&)>& log = {});

/// The rows as a text table.
std::string format_search_bench_table(const std::vector<SearchBenchRow>& rows);

}  // namespace clip
