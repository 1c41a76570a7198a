#pragma once
/// WebDataset shards: tar files whose members are grouped into samples by key (`KEY.jpg`, `KEY.txt`,
/// `KEY.json`), the layout img2dataset writes.
///
///   for (const std::string& path : clip::expand_braces("data/{00000..00099}.tar")) {
///     clip::ShardReader reader(path);
///     while (std::optional<clip::ShardSample> s = reader.next()) use(s->key, s->image, s->caption);
///   }
///
/// A member's key is its name up to the first dot of the file name (`a/b.c.jpg`: key `a/b`, extension `c.jpg`);
/// consecutive members with the same key make one sample. The image is the first present of jpg, jpeg, png,
/// webp (extensions compared in lower case); the caption is the `txt` member, else a string field of the `json`
/// member. Shards are streamed with libarchive: nothing is extracted, and a member name is only ever a key (a
/// member called `../../etc/passwd.jpg` is the image of the sample keyed `../../etc/passwd`; no path is built
/// from it). A sample without image or caption, a member that cannot be read, a shard that ends early or cannot
/// be opened is counted in ShardCounts with a one-line message, never thrown. Reading needs a build with shards
/// (CLIP_WITH_SHARDS: libarchive, JPEG and PNG; clip::features().shards), where others throw saying so; the
/// parsing functions (brace expansion, sources, sizes.json, shard_path) are in every build.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace clip {

/// Bash-style brace expansion, as webdataset's: numeric ranges `{00000..01023}` (zero-padded to the wider bound
/// when either starts with a zero, as bash; descending ranges count down), lists `{a,b,c}`, nested; several
/// groups multiply out, left to right. Throws clip::Error for unbalanced braces or a malformed range.
std::vector<std::string> expand_braces(const std::string& pattern);

/// The path of shard `index` of an output pattern: "dir/{00000..}.tar" -> "dir/00042.tar" (the digits give the
/// first number and the width; a bound, as in {00000..00099}, is a limit). Throws clip::Error for a pattern
/// without one such group, or an index past its bound.
std::string shard_path(const std::string& pattern, int64_t index);

/// One data source of a training run: a shard pattern and its sampling weight.
struct ShardSource {
  std::string pattern;              ///< as given, before expansion
  std::vector<std::string> shards;  ///< the expanded shard paths
  double weight = 1;                ///< relative probability of drawing from this source (resampling)
};

/// Sources joined by "::" ("a/{00000..00099}.tar::b/{000..009}.tar"), with optional weights joined the same
/// way ("3::1"; empty: every shard equally likely). Throws clip::Error for an empty source, a count of weights
/// that differs from the count of sources, or a weight that is not a positive number.
std::vector<ShardSource> parse_shard_sources(const std::string& spec, const std::string& weights = "");

/// True when `train_data` names tar shards: every "::"-joined part ends in ".tar" (after its braces).
bool looks_like_shards(const std::string& train_data);

/// The total sample count of `shards` from `sizes.json` files in their folders (open_clip's convention: file
/// name -> count, as clip_shards writes it), or nullopt when a shard is missing from them.
std::optional<int64_t> count_from_sizes_json(const std::vector<std::string>& shards);

/// What reading shards met. A sample is a key group; the failure counts say why groups were dropped.
struct ShardCounts {
  int64_t shards = 0;            ///< shards opened (or tried)
  int64_t shards_failed = 0;     ///< could not be opened or read as tar at all
  int64_t shards_truncated = 0;  ///< ended by a read error after some members
  int64_t samples = 0;           ///< groups with an image and a caption, handed on
  int64_t no_image = 0;          ///< groups without a jpg, jpeg, png or webp member
  int64_t no_caption = 0;        ///< groups without a txt member or the json caption field
  int64_t corrupt = 0;           ///< groups with a member that could not be read (or too large, or bad json)
  int64_t undecodable = 0;       ///< samples whose image or caption then failed (counted by the consumer)

  /// Groups seen: samples + no_image + no_caption + corrupt.
  int64_t groups() const { return samples + no_image + no_caption + corrupt; }
  /// Groups that gave no training sample: no_image + no_caption + corrupt + undecodable.
  int64_t failed() const { return no_image + no_caption + corrupt + undecodable; }
  ShardCounts& operator+=(const ShardCounts& other);
};

/// One sample read from a shard.
struct ShardSample {
  std::string shard;           ///< the shard's path
  std::string key;             ///< the members' common name before the first dot of the file name
  std::string image_format;    ///< jpg, jpeg, png or webp (lower case)
  std::vector<uint8_t> image;  ///< the image member's bytes (empty when read with load_images off)
  std::string caption;         ///< the txt member, or the json field

  /// "shard.tar:key", how errors name the sample.
  std::string name() const { return shard + ":" + key; }
};

/// How shards are read.
struct ShardReadOptions {
  std::string json_caption_key = "caption";   ///< the json member's caption field (used when there is no txt)
  int64_t max_member_bytes = int64_t(64) << 20;  ///< larger members make their sample corrupt (not read)
  bool load_images = true;  ///< false: image members are skipped over (counting and seeking)
};

/// Streams the samples of one tar file (libarchive; a .tar.gz also reads).
class ShardReader {
 public:
  /// Opens `path`; a file that cannot be opened is counted (shards_failed) and next() returns nullopt.
  explicit ShardReader(std::string path, ShardReadOptions options = {});
  ~ShardReader();
  ShardReader(const ShardReader&) = delete;
  ShardReader& operator=(const ShardReader&) = delete;

  /// The next sample with an image and a caption, or nullopt at the end of the shard (or at a read error).
  std::optional<ShardSample> next();
  /// Reads over `count` samples without loading their images; returns how many there were.
  int64_t skip(int64_t count);

  const ShardCounts& counts() const;
  /// Messages of the failures counted since the last call, one line each, naming the shard and key.
  std::vector<std::string> take_errors();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clip
