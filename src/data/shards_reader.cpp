// ShardReader: one tar file streamed through libarchive, members grouped into samples by key.
//
// Member names are split into key and extension and never used otherwise: no path is opened, joined or
// normalized from them, so '..' or a leading '/' only make unusual keys. Only regular members count (links,
// folders and devices are passed over). Image members are read (or skipped, with load_images off) only when they
// beat the image already held; txt and json are read; everything else is skipped without reading its data.
#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <array>
#include <cctype>

#include <nlohmann/json.hpp>

#include "clip/data/shards.h"
#include "clip/util/error.h"
#include "util/json.h"

namespace clip {
namespace {

struct ArchiveReadDeleter {
  void operator()(archive* a) const noexcept { archive_read_free(a); }
};
using ArchiveReadHandle = std::unique_ptr<archive, ArchiveReadDeleter>;

// Image extensions in the order of preference (webdataset's "jpg;jpeg;png;webp").
constexpr std::array<const char*, 4> kImageFormats{"jpg", "jpeg", "png", "webp"};

int image_rank(const std::string& extension) {
  for (size_t i = 0; i < kImageFormats.size(); ++i) {
    if (extension == kImageFormats[i]) return static_cast<int>(i);
  }
  return -1;
}

bool blank(const std::string& text) {
  return std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c) != 0; });
}

struct Group {
  std::string key;
  std::vector<std::string> extensions;  // as seen, for messages
  int image_rank = -1;                  // of the image held (-1: none)
  std::vector<uint8_t> image;
  std::optional<std::string> txt, json;
  std::string corrupt;  // why the group is unusable, if it is
};

}  // namespace

struct ShardReader::Impl {
  std::string path;
  ShardReadOptions options;
  ArchiveReadHandle archive;
  ShardCounts counts;
  std::vector<std::string> errors;
  std::optional<Group> group;
  bool done = false;
  int64_t members = 0;
  int retries = 0;

  std::string error_text() const {
    const char* e = archive ? archive_error_string(archive.get()) : nullptr;
    return e ? e : "unknown error";
  }

  // A read error ends the shard; the group being read is lost with it.
  void end_with_error(const std::string& what) {
    done = true;
    if (members == 0) {
      ++counts.shards_failed;
      errors.push_back(str(path, ": cannot read as tar: ", what));
      return;
    }
    ++counts.shards_truncated;
    if (group) {
      ++counts.corrupt;
      errors.push_back(str(path, ":", group->key, ": shard ends early (", what, "); the rest of the shard is lost"));
      group.reset();
    } else {
      errors.push_back(str(path, ": shard ends early (", what, "); the rest of the shard is lost"));
    }
  }

  bool skip_data() {
    if (archive_read_data_skip(archive.get()) < ARCHIVE_WARN) {
      end_with_error(error_text());
      return false;
    }
    return true;
  }

  // Reads the current member's data into `out`; false (the shard ended) on a read error.
  template <typename Buffer>
  bool read_data(int64_t size, Buffer& out) {
    out.clear();
    if (size >= 0) out.resize(static_cast<size_t>(size));
    size_t used = 0;
    for (;;) {
      if (used == out.size()) {
        if (size >= 0) break;
        out.resize(std::max<size_t>(out.size() * 2, 4096));
      }
      const la_ssize_t got = archive_read_data(archive.get(), &out[used], out.size() - used);
      if (got < 0) {
        end_with_error(error_text());
        return false;
      }
      if (got == 0) break;
      used += static_cast<size_t>(got);
      if (size < 0 && static_cast<int64_t>(used) > options.max_member_bytes) break;
    }
    if (size >= 0 && used != out.size()) {
      end_with_error(str("member data ends after ", used, " of ", size, " bytes"));
      return false;
    }
    out.resize(used);
    return true;
  }

  void add_member(archive_entry* entry, const std::string& extension) {
    Group& g = *group;
    g.extensions.push_back(extension);
    const int64_t size = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : -1;
    const int rank = image_rank(extension);
    const bool better_image = rank >= 0 && (g.image_rank < 0 || rank < g.image_rank);
    const bool wanted = (better_image && options.load_images) || (extension == "txt" && !g.txt) ||
                        (extension == "json" && !g.json);
    if (better_image) g.image_rank = rank;
    if (!wanted) {
      if (better_image) g.image.clear();
      skip_data();
      return;
    }
    if (size > options.max_member_bytes) {
      g.corrupt = str("member ", g.key, ".", extension, " has ", size, " bytes, over the limit of ",
                      options.max_member_bytes);
      skip_data();
      return;
    }
    if (rank >= 0) {
      read_data(size, g.image);
    } else {
      std::string text;
      if (!read_data(size, text)) return;
      (extension == "txt" ? g.txt : g.json) = std::move(text);
    }
  }

  std::optional<ShardSample> finish_group() {
    Group g = std::move(*group);
    group.reset();
    const std::string name = path + ":" + g.key;
    auto members = [&] {
      std::string list;
      for (const std::string& e : g.extensions) list += (list.empty() ? "" : ", ") + e;
      return list;
    };
    if (!g.corrupt.empty()) {
      ++counts.corrupt;
      errors.push_back(name + ": " + g.corrupt);
      return std::nullopt;
    }
    if (g.image_rank < 0) {
      ++counts.no_image;
      errors.push_back(str(name, ": no jpg, jpeg, png or webp member (has ", members(), ")"));
      return std::nullopt;
    }
    std::optional<std::string> caption;
    if (g.txt) {
      caption = std::move(*g.txt);
    } else if (g.json) {
      const nlohmann::json j = parse_json_or_discarded(*g.json);
      if (j.is_discarded()) {
        ++counts.corrupt;
        errors.push_back(name + ".json: not valid JSON");
        return std::nullopt;
      }
      if (j.is_object() && j.contains(options.json_caption_key) && j[options.json_caption_key].is_string()) {
        caption = j[options.json_caption_key].get<std::string>();
      }
    }
    if (!caption || blank(*caption)) {
      ++counts.no_caption;
      errors.push_back(str(name, ": no caption (no txt member", g.json ? ", and no string field '" + options.json_caption_key + "' in its json" : "",
                           "; has ", members(), ")"));
      return std::nullopt;
    }
    ++counts.samples;
    ShardSample s;
    s.shard = path;
    s.key = std::move(g.key);
    s.image_format = kImageFormats[static_cast<size_t>(g.image_rank)];
    s.image = std::move(g.image);
    s.caption = std::move(*caption);
    return s;
  }
};

ShardReader::ShardReader(std::string path, ShardReadOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.path = std::move(path);
  s.options = std::move(options);
  s.counts.shards = 1;
  s.archive.reset(archive_read_new());
  if (!s.archive) fail(s.path, ": libarchive could not allocate a reader");
  archive_read_support_format_tar(s.archive.get());
  archive_read_support_filter_gzip(s.archive.get());
  if (archive_read_open_filename(s.archive.get(), s.path.c_str(), size_t(1) << 20) != ARCHIVE_OK) {
    s.end_with_error(s.error_text());
  }
}

ShardReader::~ShardReader() = default;

std::optional<ShardSample> ShardReader::next() {
  Impl& s = *impl_;
  for (;;) {
    if (s.done) {
      if (!s.group) return std::nullopt;
      if (std::optional<ShardSample> out = s.finish_group()) return out;
      continue;
    }
    archive_entry* entry = nullptr;
    const int r = archive_read_next_header(s.archive.get(), &entry);
    if (r == ARCHIVE_EOF) {
      s.done = true;
      continue;
    }
    if (r == ARCHIVE_RETRY && ++s.retries < 100) continue;  // a damaged header that libarchive stepped over
    if (r == ARCHIVE_RETRY || r < ARCHIVE_WARN) {
      s.end_with_error(s.error_text());
      continue;
    }
    ++s.members;
    if (archive_entry_filetype(entry) != AE_IFREG || archive_entry_hardlink(entry) != nullptr) continue;
    const char* utf8 = archive_entry_pathname_utf8(entry);
    const char* raw = utf8 ? utf8 : archive_entry_pathname(entry);
    if (raw == nullptr) continue;
    const std::string name(raw);
    // The key: everything before the first dot of the file name (webdataset's rule); names without one, and
    // hidden files, belong to no sample.
    const size_t slash = name.rfind('/');
    const size_t base = slash == std::string::npos ? 0 : slash + 1;
    const size_t dot = name.find('.', base);
    if (dot == std::string::npos || dot == base) continue;
    const std::string key = name.substr(0, dot);
    std::string extension = name.substr(dot + 1);
    for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));

    std::optional<ShardSample> out;
    if (s.group && s.group->key != key) out = s.finish_group();
    if (!s.group) {
      s.group.emplace();
      s.group->key = key;
    }
    s.add_member(entry, extension);
    if (out) return out;
  }
}

int64_t ShardReader::skip(int64_t count) {
  Impl& s = *impl_;
  const bool load = s.options.load_images;
  s.options.load_images = false;
  int64_t skipped = 0;
  while (skipped < count && next()) ++skipped;
  s.options.load_images = load;
  return skipped;
}

const ShardCounts& ShardReader::counts() const { return impl_->counts; }

std::vector<std::string> ShardReader::take_errors() {
  std::vector<std::string> out;
  out.swap(impl_->errors);
  return out;
}

}  // namespace clip
