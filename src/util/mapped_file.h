#pragma once
// A read-only memory mapping of a whole regular file (RAII).
#include <cstddef>
#include <cstdint>
#include <string>

namespace clip {

class MappedFile {
 public:
  /// Maps `path`; throws clip::Error naming it when it is missing, unreadable, a directory or not a regular file.
  explicit MappedFile(const std::string& path);
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace clip
