#pragma once
// JPEG frame-header parsing and JPEG decoding at a reduced size in the DCT domain (libjpeg-turbo's scale_denom,
// what PIL's Image.draft does). Training only, behind ShardImageOptions::jpeg_dct_scaling: the pixels differ from
// a full decode followed by the bicubic resize, so the exact preprocessing path (decode.h, transform.h) never
// comes here.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "clip/image/decode.h"
#include "clip/image/image.h"

namespace clip::detail {

/// Width and height from a JPEG's frame header (SOFn marker), without decoding; nullopt when none is found.
std::optional<std::pair<int64_t, int64_t>> jpeg_dimensions(const uint8_t* data, size_t size);

/// Decodes a JPEG at 1/`denominator` (2, 4 or 8) of its size, each side rounded up. nullopt for the files this
/// path leaves to the exact decoder (CMYK and other component counts). Throws clip::Error naming `source` for
/// corrupt or truncated data and for images over options.max_pixels (checked on the full size). Defined in
/// image/decode_jpeg.cpp.
std::optional<Image> decode_jpeg_reduced(const uint8_t* data, size_t size, int denominator, const std::string& source,
                                         const DecodeOptions& options);

}  // namespace clip::detail
