#pragma once
// What an ImageIndex holds, and the table of its files; shared by image_index.cpp (load, save, search) and
// index_build.cpp (build, update). Internal.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clip/index/image_index.h"
#include "index/vectors.h"

namespace clip {

/// One indexed file: its row is its position in the table.
struct FileRecord {
  std::string path;  ///< relative to the index's images root
  int64_t size = 0;
  int64_t mtime_ns = 0;
  std::string sha256;  ///< of the content, 64 hex digits
};

/// A file's size and modification time, or nullopt when it is not a regular file any more.
std::optional<std::pair<int64_t, int64_t>> stat_file(const std::string& path);

/// The files table as text: a header line, then one tab-separated line per record (path, size, mtime_ns, sha256;
/// in paths, backslash, tab, newline and carriage return are escaped as \\, \t, \n, \r).
std::string format_records(const std::vector<FileRecord>& records);
/// Parses format_records' text; throws clip::Error naming `source` and the line on anything else.
std::vector<FileRecord> parse_records(const std::string& text, const std::string& source);

/// Unreadable files as text (path, message per line; escaped as above) and back.
std::string format_skipped(const std::vector<ItemError>& skipped);
std::vector<ItemError> parse_skipped(const std::string& text, const std::string& source);

struct ImageIndex::State {
  IndexInfo info;
  int64_t ivf_lists_requested = 0;  // 0: chosen from N when the index is (re)built
  std::vector<FileRecord> files;
  std::vector<ItemError> skipped;
  std::unique_ptr<detail::Vectors> vectors;
  std::optional<IndexRecall> recall;
};

/// The state behind an ImageIndex, for libclip's own code above the index (the search benchmark).
struct IndexAccess {
  static const ImageIndex::State& state(const ImageIndex& index) { return *index.state_; }
};

}  // namespace clip
