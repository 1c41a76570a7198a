#pragma once
// A small JPEG of an image file, for pages people look at (search results, the training report). Internal.
#include <string>

namespace clip::detail {

/// The file decoded (EXIF orientation applied, as viewers show it), converted to RGB, shrunk (bicubic, never
/// enlarged) so that its longer side is at most `size` pixels, and encoded as JPEG. Throws clip::Error naming the
/// file when it cannot be read, or when this build has no JPEG encoder.
std::string jpeg_thumbnail(const std::string& path, int size, int quality = 85);

}  // namespace clip::detail
