// Image bytes of any format through the decoder, as the loader and the shard reader decode them: the format sniffed
// from the content, header sizes checked against the pixel limit before any allocation, then the pixels.
#include "clip/image/decode.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  clip::DecodeOptions options;
  options.max_pixels = 1 << 22;  // 4 Mpixel: large enough for every seed, small enough to keep each input fast
  options.apply_exif_orientation = size % 2 == 1;
  clip::fuzz::expect_clip_errors([&] { clip::decode_image_bytes(data, size, "fuzz.img", options); });
  return 0;
}
