#pragma once
/// What this build of libclip can do: the optional dependencies it was configured with (CMake's CLIP_WITH_*
/// options, docs/building.md). A build without one still has every function; those that need it throw
/// clip::Error saying which option it takes.
///
///   if (!clip::features().shards) std::cerr << "no shards here: " << clip::features_summary() << "\n";
#include <string>

namespace clip {

struct Features {
  bool jpeg = false;        ///< JPEG decoding and encoding (libjpeg)
  bool png = false;         ///< PNG decoding and encoding (libpng)
  bool libdeflate = false;  ///< PNG image data inflated by libdeflate (else zlib; same pixels)
  bool opencv = false;      ///< BMP, WebP, TIFF and PNM decoding (OpenCV)
  bool shards = false;      ///< WebDataset shards: reading, writing, training from them (libarchive)
  bool gloo = false;        ///< c10d's Gloo backend (CPU collectives)
  bool nccl = false;        ///< c10d's NCCL backend (GPU collectives)
  bool faiss = false;       ///< the image index (clip::ImageIndex, clip_index, clip_search)
  bool http = false;        ///< the HTTP server (clip::Server, clip_serve; cpp-httplib)
  bool hub = false;         ///< downloads from the Hugging Face hub (clip::fetch_hub_file; libcurl)
};

/// This build's features.
const Features& features();

/// One line: "with JPEG PNG ...; without OPENCV ..." in the configure's own words.
std::string features_summary();

}  // namespace clip
