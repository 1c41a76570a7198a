// A webdataset shard (tar, or tar.gz) through the shard reader: member names grouped into samples by key, the
// caption from txt or json, images decoded; bad members are counted and named, never fatal.
#include "clip/data/shards.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = clip::fuzz::temp_file(data, size, ".tar");
  clip::fuzz::expect_clip_errors([&] {
    clip::ShardReadOptions options;
    options.max_member_bytes = 1 << 20;
    clip::ShardReader reader(path, options);
    for (int i = 0; i < 64 && reader.next(); ++i) {
    }
    reader.take_errors();
  });
  return 0;
}
