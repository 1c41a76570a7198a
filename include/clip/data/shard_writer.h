#pragma once
/// Writing WebDataset shards: numbered tar files of a fixed number of samples, `KEY.jpg` + `KEY.txt` +
/// `KEY.json` per sample (the layout img2dataset writes and ShardReader reads), and a `sizes.json` beside them.
///
///   clip::ShardWriteOptions o;
///   o.output = "shards/{00000..}.tar";   // 00000.tar, 00001.tar, ...
///   o.resize = 384;                      // shorter side to 384 when larger, so training decodes small images
///   clip::ShardWriteSummary s = clip::write_shards(clip::read_caption_csv("train.csv", "filepath", "title", "\t"), o);
///
/// Each shard is written to a temporary name and renamed when complete, so a shard that exists is whole.
/// Needs a build with shards (CLIP_WITH_SHARDS, clip::features().shards); in others every call throws saying so.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "clip/data/caption_dataset.h"
#include "clip/data/shards.h"

namespace clip {

/// One member of a sample: `KEY.<extension>`.
struct ShardMember {
  std::string extension;  ///< jpg, txt, json, ...
  std::string data;
};

/// Writes samples into shards of `samples_per_shard` samples each.
class ShardWriter {
 public:
  /// Throws clip::Error when the first shard exists (unless `overwrite`) or its folder cannot be made.
  ShardWriter(std::string pattern, int64_t samples_per_shard, bool overwrite = false);
  ~ShardWriter();  ///< without finish(), the shard being written is discarded (closed ones stay)
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  /// Appends a sample: members `key.<extension>` in the given order. Names are written as given.
  void write(const std::string& key, const std::vector<ShardMember>& members);
  /// Closes the last shard and records every shard's sample count in `sizes.json` in its folder (entries of
  /// other shards there are kept). Returns the shards written.
  std::vector<std::string> finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// How a dataset is packed.
struct ShardWriteOptions {
  std::string output;                ///< pattern, e.g. "shards/{00000..}.tar"
  int64_t samples_per_shard = 10000;
  int64_t resize = 0;                ///< shorter side to this when larger (Pillow-exact bicubic), as JPEG; 0: keep
  int jpeg_quality = 95;             ///< for images that are re-encoded
  int threads = 0;                   ///< image threads (0: one per core)
  uint64_t seed = 0;                 ///< labeled folders: which caption template each sample gets
  bool overwrite = false;
  bool progress = true;              ///< a progress line on stderr
};

/// What write_shards did.
struct ShardWriteSummary {
  int64_t samples = 0;   ///< written
  int64_t failed = 0;    ///< images that could not be read (skipped)
  int64_t resized = 0;   ///< images re-encoded smaller
  std::vector<std::string> shards;
  std::vector<std::string> errors;  ///< one line per skipped image
};

/// Packs a dataset (read_caption_csv, caption_folder) into shards: sample i has key "%09d" of i, its image (the
/// original bytes when JPEG, PNG or WebP and not resized; other formats re-encoded as PNG), its caption as txt
/// and a json with key, caption, source path, width, height (and label and class in a labeled folder).
/// Images that fail to decode are skipped and listed. Throws clip::Error when no image could be written.
ShardWriteSummary write_shards(const CaptionDataset& data, const ShardWriteOptions& options);

}  // namespace clip
