#pragma once
// A small JPEG of an image file, for pages people look at (search results, the training report). Internal.
#include <string>
#include <vector>

namespace clip::detail {

/// The file decoded (EXIF orientation applied, as viewers show it), converted to RGB, shrunk (bicubic, never
/// enlarged) so that its longer side is at most `size` pixels, and encoded as JPEG. Throws clip::Error naming the
/// file when it cannot be read, or when this build has no JPEG encoder.
std::string jpeg_thumbnail(const std::string& path, int size, int quality = 85);

/// A thumbnail made (`jpeg` set, with its size in pixels), or why not (`problem`: the error's one line).
struct Thumbnail {
  std::string jpeg;
  int width = 0, height = 0;
  std::string problem;
};

/// jpeg_thumbnail of every file, on every core (decoding full-size photos is a page's whole cost); a file that
/// cannot be read gets its problem instead of throwing.
std::vector<Thumbnail> jpeg_thumbnails(const std::vector<std::string>& paths, int size, int quality = 85);

}  // namespace clip::detail
