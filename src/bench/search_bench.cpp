// clip::ImageIndex::search against faiss alone on the very same faiss index object (built once, saved and loaded
// back by ImageIndex), alternating rounds.
#include "clip/bench/search_bench.h"

#include <ATen/ATen.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "clip/index/image_index.h"
#include "clip/util/error.h"
#include "index/index_state.h"
#include "util/clock.h"
#include "clip_features.h"
#if CLIP_WITH_FAISS
#include <faiss/IndexIVF.h>
#include <faiss/index_io.h>
#endif

namespace fs = std::filesystem;

namespace clip {

#if CLIP_WITH_FAISS
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// A folder removed when done.
struct ScratchDir {
  ScratchDir()
      : path(fs::temp_directory_path() / ("clip_search_bench_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
};

}  // namespace

std::vector<SearchBenchRow> run_search_benchmark(const SearchBenchOptions& o,
                                                 const std::function<void(const std::string&)>& log) {
  const auto say = [&](const std::string& line) {
    if (log) log(line);
  };
  std::vector<SearchBenchRow> rows;
  at::manual_seed(int64_t(o.seed));
  for (const int64_t n : o.sizes) {
    const at::Tensor data = at::randn({n, o.dim});
    std::vector<std::string> paths;
    paths.reserve(size_t(n));
    for (int64_t i = 0; i < n; ++i) paths.push_back("vectors/" + std::to_string(i) + ".jpg");
    const int64_t max_batch = *std::max_element(o.batches.begin(), o.batches.end());
    const at::Tensor queries = at::randn({std::max<int64_t>(4096, max_batch), o.dim});
    const at::Tensor unit_queries = queries / queries.norm(2, 1, true);
    for (const std::string& kind : o.kinds) {
      ScratchDir scratch;
      IndexOptions io;
      io.kind = kind;
      io.ivf_lists = kind == "ivf" ? std::max<int64_t>(1, int64_t(std::sqrt(double(n)))) : 0;
      io.target_recall = 0;  // not the subject here
      say("building the " + kind + " index of " + std::to_string(n) + " vectors");
      const auto build_start = Clock::now();
      const double build_seconds = [&] {
        ImageIndex built = ImageIndex::from_embeddings(data, paths, io);
        const double s = seconds_since(build_start);
        built.save(scratch.path.string());
        return s;
      }();
      // Loaded as a user loads it; faiss alone searches the very same faiss index object, so that the difference
      // is libclip's own work (normalizing, results with paths), not where the vectors happen to lie in memory.
      const ImageIndex index = ImageIndex::load(scratch.path.string());
      const faiss::Index* alone = &IndexAccess::state(index).vectors->native();
      faiss::SearchParametersIVF ivf;
      ivf.nprobe = size_t(o.nprobe);
      const faiss::SearchParameters* params = kind == "ivf" ? &ivf : nullptr;
      say("  built in " + std::to_string(build_seconds) + " s");

      for (const int64_t batch : o.batches) {
        std::vector<float> distances(size_t(batch * o.k));
        std::vector<faiss::Index::idx_t> labels(size_t(batch * o.k));
        const int64_t available = unit_queries.size(0) / batch;
        // faiss alone: the unit queries, as ImageIndex::search normalizes its own.
        const auto faiss_calls = [&](int64_t calls) {
          for (int64_t c = 0; c < calls; ++c) {
            const float* q = unit_queries.data_ptr<float>() + (c % available) * batch * o.dim;
            alone->search(batch, q, o.k, distances.data(), labels.data(), params);
          }
        };
        size_t sink = 0;
        const auto libclip_calls = [&](int64_t calls) {
          for (int64_t c = 0; c < calls; ++c) {
            const auto hits = index.search(queries.narrow(0, (c % available) * batch, batch), o.k, o.nprobe);
            sink += hits.back().size();
          }
        };
        // Calls per round: about o.seconds of faiss's time.
        const auto probe = Clock::now();
        faiss_calls(1);
        const double one = std::max(seconds_since(probe), 1e-6);
        const int64_t calls = std::max<int64_t>(3, int64_t(o.seconds / one));
        libclip_calls(1);
        // Rounds in pairs, the order alternating (faiss, libclip, libclip, faiss, ...); the overhead is the median of
        // the pairs' ratios, which cancels the machine's slow drifts.
        std::vector<double> faiss_times, libclip_times, ratios;
        for (int64_t r = 0; r < o.rounds; ++r) {
          const bool faiss_first = r % 2 == 0;
          double t[2];
          for (int side = 0; side < 2; ++side) {
            const bool faiss_turn = (side == 0) == faiss_first;
            const auto start = Clock::now();
            faiss_turn ? faiss_calls(calls) : libclip_calls(calls);
            t[faiss_turn ? 0 : 1] = seconds_since(start);
          }
          faiss_times.push_back(t[0]);
          libclip_times.push_back(t[1]);
          ratios.push_back(t[1] / t[0]);
        }
        if (sink == 0) fail("search benchmark: no results");
        SearchBenchRow row;
        row.size = n;
        row.kind = kind;
        row.lists = io.ivf_lists;
        row.batch = batch;
        const double f = median(faiss_times), l = median(libclip_times);
        row.faiss_qps = double(calls * batch) / f;
        row.libclip_qps = double(calls * batch) / l;
        row.faiss_ms = 1e3 * f / double(calls);
        row.libclip_ms = 1e3 * l / double(calls);
        row.overhead = median(ratios) - 1;
        rows.push_back(row);
        char line[160];
        std::snprintf(line, sizeof line, "  %s N=%lld batch %lld: faiss %.1f q/s, libclip %.1f q/s (%+.1f%%)",
                      kind.c_str(), (long long)n, (long long)batch, row.faiss_qps, row.libclip_qps,
                      100 * row.overhead);
        say(line);
      }
    }
  }
  return rows;
}
#else
std::vector<SearchBenchRow> run_search_benchmark(const SearchBenchOptions&, const std::function<void(const std::string&)>&) {
  fail("the search benchmark needs faiss, which this libclip was built without (CLIP_WITH_FAISS)");
}
#endif

std::string format_search_bench_table(const std::vector<SearchBenchRow>& rows) {
  std::string out = "| vectors | index | queries/call | faiss q/s | libclip q/s | faiss ms/call | libclip ms/call | "
                    "overhead |\n|---:|---|---:|---:|---:|---:|---:|---:|\n";
  for (const SearchBenchRow& r : rows) {
    char line[256];
    const std::string kind = r.kind == "ivf" ? "IVF " + std::to_string(r.lists) : r.kind;
    std::snprintf(line, sizeof line, "| %lld | %s | %lld | %.1f | %.1f | %.3f | %.3f | %+.1f%% |\n", (long long)r.size,
                  kind.c_str(), (long long)r.batch, r.faiss_qps, r.libclip_qps, r.faiss_ms, r.libclip_ms,
                  100 * r.overhead);
    out += line;
  }
  return out;
}

}  // namespace clip
