#pragma once
// A read-only memory mapping of a whole regular file (RAII).
#include <cstddef>
#include <cstdint>
#include <string>

namespace clip {

class MappedFile {
 public:
  enum class Mode {
    read_only,      ///< PROT_READ: a write is a crash
    copy_on_write,  ///< PROT_READ | PROT_WRITE, MAP_PRIVATE: a written page becomes the process's own copy
  };
  /// Maps `path`; throws clip::Error naming it when it is missing, unreadable, a directory or not a regular file.
  explicit MappedFile(const std::string& path, Mode mode = Mode::read_only);
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  /// The mapping's bytes, writable in copy_on_write mode.
  uint8_t* mutable_data() const { return const_cast<uint8_t*>(data_); }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace clip
