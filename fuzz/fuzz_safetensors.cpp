// A safetensors file: the 8-byte header length, the JSON header (dtypes, shapes, offsets) and the tensor bytes.
#include "clip/io/safetensors.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  clip::fuzz::expect_clip_errors([&] { clip::parse_safetensors(data, size, "fuzz.safetensors"); });
  return 0;
}
