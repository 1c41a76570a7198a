// decode_image in a build without image decoding (CLIP_WITH_OPENCV=OFF): every call says so. Preprocessing of
// pixels that come from elsewhere (transform.h) works in every build.
#include "clip/image/decode.h"

#include "clip/util/error.h"

namespace clip {

bool image_decoding_available() { return false; }

Image decode_image_bytes(const uint8_t*, size_t, const std::string& source, const DecodeOptions&) {
  fail(source, ": cannot decode images: libclip was built with CLIP_WITH_OPENCV=OFF");
}

Image decode_image(const std::string& path, const DecodeOptions& options) {
  return decode_image_bytes(nullptr, 0, path, options);
}

}  // namespace clip
