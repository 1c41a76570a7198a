#pragma once
// Reading files that a user names: only regular files (a FIFO called x.jpg is refused at once, never waited on;
// /dev/zero is refused, never read without end), within a size bound, with one-line errors naming the path.
#include <cstddef>
#include <cstdint>
#include <string>

namespace clip {

/// Default bound of read_file: 1 GiB (configs, captions, images, vocabularies are far smaller; checkpoints are
/// mapped or streamed, not read whole).
constexpr uint64_t kMaxReadBytes = uint64_t(1) << 30;

/// A regular file open for reading (RAII). Opening never blocks, whatever the path is.
class RegularFile {
 public:
  /// Throws clip::Error: "<path>: no such <what>", ": is a directory, not a <what>", ": is a FIFO (named pipe),
  /// not a regular file", ": is a device, ..." or ": cannot open: <reason>". `what`: "model config file", ...
  explicit RegularFile(const std::string& path, const std::string& what = "file");
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;
  ~RegularFile();

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
};

/// The whole of a regular file. Throws as RegularFile does, and when it holds more than `max_bytes` (naming the
/// size and the bound).
std::string read_file(const std::string& path, const std::string& what = "file", uint64_t max_bytes = kMaxReadBytes);

/// Throws as RegularFile does unless `path` is a regular file: for readers that open the file themselves (zlib,
/// libarchive, LibTorch's zip reader).
void require_regular_file(const std::string& path, const std::string& what = "file");

}  // namespace clip
