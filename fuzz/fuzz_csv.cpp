// A caption CSV/TSV as clip_train --train-data reads it: header, RFC 4180 quoting, the two columns, UTF-8 captions.
#include "clip/data/caption_dataset.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = clip::fuzz::temp_file(data, size, ".csv");
  const char* separator = size % 2 == 0 ? "\t" : ",";
  clip::fuzz::expect_clip_errors([&] { clip::read_caption_csv(path, "filepath", "title", separator); });
  return 0;
}
