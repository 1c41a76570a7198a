#pragma once
// A file that appears complete or not at all: written to PATH.tmp.<pid> beside PATH, fsync'd, renamed over PATH.
#include <cstddef>
#include <string>

namespace clip {

class AtomicFile {
 public:
  /// Opens the temporary file; throws clip::Error naming `path` when its folder is not writable.
  explicit AtomicFile(std::string path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  /// Removes the temporary file unless commit() succeeded.
  ~AtomicFile();

  void write(const void* data, size_t size);
  /// Flushes to disk and renames into place (then syncs the folder, so the rename survives a crash).
  void commit();

 private:
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

/// Writes `bytes` to `path` through an AtomicFile: the whole of it, or nothing.
void write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace clip
