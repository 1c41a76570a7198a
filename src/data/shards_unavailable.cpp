// Builds without WebDataset shards (CLIP_WITH_SHARDS off: no libarchive, or no JPEG or PNG to decode and re-encode
// with) compile this instead of shards_reader.cpp, shard_stream.cpp and shard_writer.cpp: every entry point throws
// saying so. The parsing functions (shards.cpp) and the shard plan (shards_plan.cpp) are in every build.
#include "clip/data/shard_stream.h"
#include "clip/data/shard_writer.h"
#include "clip/data/shards.h"
#include "clip/util/error.h"
#include "clip/util/features.h"

namespace clip {
namespace {

[[noreturn]] void no_shards(const std::string& what) {
  fail(what, ": this libclip was built without WebDataset shards (CLIP_WITH_SHARDS needs libarchive, JPEG and PNG; "
       "this build is ", features_summary(), ")");
}

}  // namespace

struct ShardReader::Impl {};
ShardReader::ShardReader(std::string path, ShardReadOptions) { no_shards(path); }
ShardReader::~ShardReader() = default;
std::optional<ShardSample> ShardReader::next() { no_shards("ShardReader"); }
int64_t ShardReader::skip(int64_t) { no_shards("ShardReader"); }
const ShardCounts& ShardReader::counts() const { no_shards("ShardReader"); }
std::vector<std::string> ShardReader::take_errors() { no_shards("ShardReader"); }

struct ShardStream::Impl {};
ShardStream::ShardStream(const ShardPlan&, int, int64_t, ShardStreamOptions, ShardPosition) { no_shards("ShardStream"); }
ShardStream::~ShardStream() = default;
std::optional<ShardSample> ShardStream::next() { no_shards("ShardStream"); }
ShardPosition ShardStream::position() const { no_shards("ShardStream"); }
ShardCounts ShardStream::counts() const { no_shards("ShardStream"); }
std::vector<std::string> ShardStream::take_errors() { no_shards("ShardStream"); }

void load_shard_image(const ShardSample& sample, const ShardImageOptions&, uint64_t, at::Tensor&) {
  no_shards(sample.name());
}

struct ShardWriter::Impl {};
ShardWriter::ShardWriter(std::string pattern, int64_t, bool) { no_shards(pattern); }
ShardWriter::~ShardWriter() = default;
void ShardWriter::write(const std::string& key, const std::vector<ShardMember>&) { no_shards(key); }
std::vector<std::string> ShardWriter::finish() { no_shards("ShardWriter"); }

ShardWriteSummary write_shards(const CaptionDataset&, const ShardWriteOptions& options) { no_shards(options.output); }

}  // namespace clip
