// ShardWriter (libarchive, pax-restricted tar: plain ustar headers unless a name needs more) and write_shards.
#include <archive.h>
#include <archive_entry.h>


#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "clip/data/shard_writer.h"
#include "clip/image/decode.h"
#include "clip/image/resample.h"
#include "clip/util/error.h"
#include "clip/util/log.h"
#include "clip/util/progress.h"
#include "image/decode_formats.h"
#include "image/encode.h"
#include "util/atomic_file.h"
#include "util/file.h"
#include "util/json.h"

namespace fs = std::filesystem;

namespace clip {
namespace {

struct ArchiveWriteDeleter {
  void operator()(archive* a) const noexcept { archive_write_free(a); }
};
using ArchiveWriteHandle = std::unique_ptr<archive, ArchiveWriteDeleter>;

struct EntryDeleter {
  void operator()(archive_entry* e) const noexcept { archive_entry_free(e); }
};

struct Prepared {
  std::string extension;
  std::string bytes;
  int64_t width = 0, height = 0;
  bool resized = false;
  std::string error;
};

// Reads an image file and makes its shard member: the original bytes where they can stay, else converted to RGB,
// resized (shorter side to options.resize, Pillow-exact bicubic) and re-encoded.
Prepared prepare(const std::string& path, const ShardWriteOptions& options) {
  Prepared p;
  std::string bytes = read_file(path);
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  const Image image = decode_image_bytes(data, bytes.size(), path);
  p.width = image.width;
  p.height = image.height;
  const int64_t short_side = std::min(image.width, image.height);
  const bool shrink = options.resize > 0 && short_side > options.resize;
  const detail::Format format = detail::sniff_format(data, bytes.size());
  if (!shrink && (format == detail::Format::jpeg || format == detail::Format::png || format == detail::Format::webp)) {
    p.extension = format == detail::Format::jpeg ? "jpg" : format == detail::Format::png ? "png" : "webp";
    p.bytes = std::move(bytes);
    return p;
  }
  std::vector<uint8_t> rgb(static_cast<size_t>(image.width * image.height * 3));
  convert_to_rgb(image.pixels.data(), image.mode, image.palette.data(), image.width * image.height, rgb.data());
  if (!shrink) {
    p.extension = "png";
    p.bytes = detail::encode_png(rgb.data(), image.width, image.height, 3, path);
    return p;
  }
  // As torchvision's Resize(N): the short side to N, the long side int(N * long / short).
  const int64_t w = image.width <= image.height ? options.resize : image.width * options.resize / image.height;
  const int64_t h = image.width <= image.height ? image.height * options.resize / image.width : options.resize;
  std::vector<uint8_t> small(static_cast<size_t>(w * h * 3));
  const ResampleGeometry geometry{image.width, image.height, w, h, Window{0, 0, w, h}};
  resample_u8(rgb.data(), image.width * 3, 3, geometry, Filter::bicubic, small.data(), w * 3);
  p.extension = "jpg";
  p.bytes = detail::encode_jpeg(small.data(), w, h, options.jpeg_quality, path);
  p.width = w;
  p.height = h;
  p.resized = true;
  return p;
}

}  // namespace

struct ShardWriter::Impl {
  std::string pattern;
  int64_t per_shard = 0;
  bool overwrite = false;
  time_t mtime = std::time(nullptr);
  ArchiveWriteHandle archive;
  std::string path, temp;
  int64_t index = -1, in_shard = 0;
  std::vector<std::pair<std::string, int64_t>> written;  // path, samples

  std::string error_text() const {
    const char* e = archive ? archive_error_string(archive.get()) : nullptr;
    return e ? e : "unknown error";
  }

  void open_next() {
    path = shard_path(pattern, ++index);
    if (!overwrite && fs::exists(path)) fail(path, ": exists; pass --overwrite to replace it, or write elsewhere");
    const fs::path dir = fs::path(path).parent_path();
    std::error_code ec;
    if (!dir.empty()) fs::create_directories(dir, ec);
    if (ec) fail(dir.string(), ": cannot create the output folder (", ec.message(), ")");
    temp = path + ".tmp" + std::to_string(::getpid());
    archive.reset(archive_write_new());
    if (!archive) fail(path, ": libarchive could not allocate a writer");
    archive_write_set_format_pax_restricted(archive.get());
    if (archive_write_open_filename(archive.get(), temp.c_str()) != ARCHIVE_OK) {
      fail(temp, ": cannot write: ", error_text());
    }
    in_shard = 0;
  }

  void close_current() {
    if (archive_write_close(archive.get()) != ARCHIVE_OK) fail(temp, ": cannot finish the shard: ", error_text());
    archive.reset();
    std::error_code ec;
    fs::rename(temp, path, ec);
    if (ec) fail(temp, ": cannot rename to ", path, " (", ec.message(), ")");
    written.emplace_back(path, in_shard);
  }

  void discard() {
    if (!archive) return;
    archive.reset();
    std::error_code ec;
    fs::remove(temp, ec);
  }

  void write_sizes() const {
    std::map<std::string, std::vector<std::pair<std::string, int64_t>>> by_folder;
    for (const auto& [p, n] : written) {
      by_folder[fs::path(p).parent_path().string()].emplace_back(fs::path(p).filename().string(), n);
    }
    for (const auto& [dir, entries] : by_folder) {
      const std::string sizes = (fs::path(dir) / "sizes.json").string();
      nlohmann::json j = nlohmann::json::object();
      std::error_code ec;
      if (fs::is_regular_file(sizes, ec)) {
        j = parse_json_or_discarded(read_file(sizes));
        if (!j.is_object()) j = nlohmann::json::object();
      }
      for (const auto& [name, n] : entries) j[name] = n;
      const std::string text = dump_json(j, 1) + "\n";
      AtomicFile file(sizes);
      file.write(text.data(), text.size());
      file.commit();
    }
  }
};

ShardWriter::ShardWriter(std::string pattern, int64_t samples_per_shard, bool overwrite)
    : impl_(std::make_unique<Impl>()) {
  if (samples_per_shard < 1) fail("--samples-per-shard ", samples_per_shard, ": expected at least 1");
  impl_->pattern = std::move(pattern);
  impl_->per_shard = samples_per_shard;
  impl_->overwrite = overwrite;
  shard_path(impl_->pattern, 0);  // checks the pattern now
}

ShardWriter::~ShardWriter() { impl_->discard(); }

void ShardWriter::write(const std::string& key, const std::vector<ShardMember>& members) {
  Impl& s = *impl_;
  if (s.archive && s.in_shard == s.per_shard) s.close_current();
  if (!s.archive) s.open_next();
  for (const ShardMember& m : members) {
    std::unique_ptr<archive_entry, EntryDeleter> entry(archive_entry_new());
    const std::string name = key + "." + m.extension;
    archive_entry_set_pathname_utf8(entry.get(), name.c_str());
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(m.data.size()));
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    archive_entry_set_mtime(entry.get(), s.mtime, 0);
    if (archive_write_header(s.archive.get(), entry.get()) < ARCHIVE_WARN ||
        (!m.data.empty() && archive_write_data(s.archive.get(), m.data.data(), m.data.size()) !=
                                static_cast<la_ssize_t>(m.data.size()))) {
      fail(s.temp, ": cannot write ", name, ": ", s.error_text());
    }
  }
  ++s.in_shard;
}

std::vector<std::string> ShardWriter::finish() {
  Impl& s = *impl_;
  if (s.archive) s.close_current();
  s.write_sizes();
  std::vector<std::string> out;
  for (const auto& w : s.written) out.push_back(w.first);
  return out;
}

ShardWriteSummary write_shards(const CaptionDataset& data, const ShardWriteOptions& options) {
  if (data.size() == 0) fail(data.source, ": no samples to write");
  if (options.resize < 0) fail("--resize ", options.resize, ": expected a positive size (or 0 to keep sizes)");
  if (options.jpeg_quality < 1 || options.jpeg_quality > 100) fail("--quality ", options.jpeg_quality, ": expected 1-100");
  ShardWriter writer(options.output, options.samples_per_shard, options.overwrite);
  const int threads = options.threads > 0 ? options.threads : std::max(1, int(std::thread::hardware_concurrency()));
  const size_t total = data.size();
  const size_t width = std::max<size_t>(9, std::to_string(total - 1).size());
  ShardWriteSummary summary;
  std::optional<Progress> progress;
  if (options.progress) progress.emplace("shards", static_cast<int64_t>(total), "img");

  // Images are prepared in parallel, a chunk at a time, and written in input order.
  const size_t chunk = static_cast<size_t>(threads) * 32;
  std::vector<Prepared> prepared;
  for (size_t start = 0; start < total; start += chunk) {
    const size_t end = std::min(total, start + chunk);
    prepared.assign(end - start, Prepared{});
    std::atomic<size_t> next{start};
    auto work = [&] {
      for (size_t i = next++; i < end; i = next++) {
        try {
          prepared[i - start] = prepare(data.paths[i], options);
        } catch (const std::exception& e) {
          prepared[i - start].error = error_message(e);
        }
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads && size_t(t) < end - start; ++t) pool.emplace_back(work);
    work();
    for (std::thread& t : pool) t.join();

    for (size_t i = start; i < end; ++i) {
      Prepared& p = prepared[i - start];
      if (!p.error.empty()) {
        ++summary.failed;
        if (progress) log_info("skipped ", p.error);
        summary.errors.push_back(std::move(p.error));
        continue;
      }
      std::string key = std::to_string(i);
      key.insert(0, width - key.size(), '0');
      const std::string caption = data.caption(i, options.seed);
      nlohmann::json meta = {{"key", key}, {"caption", caption}, {"source", data.paths[i]},
                             {"width", p.width}, {"height", p.height}};
      if (!data.labels.empty()) {
        meta["label"] = data.labels[i];
        meta["class"] = data.classes.at(static_cast<size_t>(data.labels[i]));
      }
      writer.write(key, {{p.extension, std::move(p.bytes)}, {"txt", caption}, {"json", dump_json(meta)}});
      ++summary.samples;
      summary.resized += p.resized ? 1 : 0;
    }
    if (progress) progress->advance(static_cast<int64_t>(end - start));
  }
  if (summary.samples == 0) {
    fail(data.source, ": none of the ", total, " images could be read; the first: ", summary.errors.front());
  }
  summary.shards = writer.finish();
  if (progress) {
    progress->finish(str(summary.samples, " samples in ", summary.shards.size(), " shards"));
  }
  return summary;
}

}  // namespace clip
