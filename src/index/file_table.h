#pragma once
// The files table of an image index (files.<gen>.tsv) and its unreadable files (skipped.<gen>.tsv): text that
// index.json's CRC-32 guards, parsed strictly all the same (fuzz/fuzz_index_table.cpp). Internal.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "clip/image/loader.h"

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

/// Bytes as lowercase hexadecimal, and back (false on anything else): names that need not be UTF-8, in JSON.
std::string bytes_to_hex(const std::string& bytes);
bool hex_to_bytes(const std::string& hex, std::string& bytes);

/// Unreadable files as text (path, message per line; escaped as above) and back.
std::string format_skipped(const std::vector<ItemError>& skipped);
std::vector<ItemError> parse_skipped(const std::string& text, const std::string& source);

}  // namespace clip
