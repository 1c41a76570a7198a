#pragma once
/// SHA-256 (FIPS 180-4) of files and buffers, for verifying released checkpoints.
///
///   std::string hex = clip::sha256_file("ViT-B-32.pt");   // 64 lowercase hex digits
#include <cstddef>
#include <cstdint>
#include <string>

namespace clip {

/// Incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  /// The digest as 64 lowercase hex digits; the object must not be updated afterwards.
  std::string hex_digest();

 private:
  void block(const uint8_t* p);
  uint32_t state_[8];
  uint64_t length_ = 0;  // bytes hashed so far
  uint8_t buffer_[64];
  size_t buffered_ = 0;
};

/// SHA-256 of a whole file (streamed); throws clip::Error naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace clip
