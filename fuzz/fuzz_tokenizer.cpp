// Any bytes as a caption through openai/CLIP's tokenizer (the cleaning, the split pattern, the BPE), and the ids
// back through decode.
#include "clip/text/clip_bpe.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const clip::ClipBpeTokenizer tokenizer;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  clip::fuzz::expect_clip_errors([&] { tokenizer.decode(tokenizer.encode(text)); });
  return 0;
}
