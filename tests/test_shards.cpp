// WebDataset shards: names (brace expansion, sources, output patterns), the reader (grouping, captions, a
// truncated shard, a sample without caption, hostile member names), the plan and streams (no sample lost or
// duplicated across 2 ranks x 3 threads, resampling, exact resume), the trainer's batch source and clip_shards.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "clip/data/shard_stream.h"
#include "clip/data/shard_writer.h"
#include "clip/data/shards.h"
#include "clip/image/decode.h"
#include "clip/model/config.h"
#include "clip/model/model_tokenizer.h"
#include "clip/train/train_config.h"
#include "clip/train/train_state.h"
#include "clip/train/trainer.h"
#include "clip/util/error.h"
#include "test_util.h"
#include "train/shard_source.h"

namespace fs = std::filesystem;

namespace {

using clip::test::TempDir;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The fixture images that decode (all but truncated.jpg).
// The fixture images this build decodes (WebP needs OpenCV; truncated.jpg is left out).
std::vector<fs::path> fixture_images() {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(clip::test::data("preprocess/images"))) {
    if (entry.path().filename() == "truncated.jpg") continue;
    if (!clip::test::decodes(entry.path().string())) continue;
    out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A CSV of `count` fixture images (reused in turn) with unique captions "photo number <i>".
std::string write_csv(const TempDir& tmp, int count) {
  const std::vector<fs::path> images = fixture_images();
  const std::string csv = tmp / "data.csv";
  std::ofstream out(csv);
  out << "filepath\ttitle\n";
  for (int i = 0; i < count; ++i) out << images[size_t(i) % images.size()].string() << "\tphoto number " << i << "\n";
  return csv;
}

clip::ShardWriteOptions write_options(const std::string& pattern, int64_t per_shard) {
  clip::ShardWriteOptions o;
  o.output = pattern;
  o.samples_per_shard = per_shard;
  o.resize = 48;  // small images: decoding in the tests stays fast
  o.threads = 2;
  o.progress = false;
  return o;
}

std::string jpeg_bytes() { return read_bytes(clip::test::data("preprocess/images/chelsea_q85.jpg")); }

std::vector<clip::ShardSample> read_all(const std::string& shard, clip::ShardCounts* counts = nullptr,
                                        std::vector<std::string>* errors = nullptr) {
  clip::ShardReader reader(shard);
  std::vector<clip::ShardSample> out;
  while (std::optional<clip::ShardSample> s = reader.next()) out.push_back(std::move(*s));
  if (counts) *counts = reader.counts();
  if (errors) *errors = reader.take_errors();
  return out;
}

TEST(ShardNames, BraceExpansion) {
  EXPECT_EQ(clip::expand_braces("d/{00000..00003}.tar"),
            (std::vector<std::string>{"d/00000.tar", "d/00001.tar", "d/00002.tar", "d/00003.tar"}));
  EXPECT_EQ(clip::expand_braces("{a,b}-{1..2}"), (std::vector<std::string>{"a-1", "a-2", "b-1", "b-2"}));
  EXPECT_EQ(clip::expand_braces("x{9..11}"), (std::vector<std::string>{"x9", "x10", "x11"}));
  EXPECT_EQ(clip::expand_braces("{3..1}"), (std::vector<std::string>{"3", "2", "1"}));
  EXPECT_EQ(clip::expand_braces("{a,{b,c}0}"), (std::vector<std::string>{"a", "b0", "c0"}));
  EXPECT_EQ(clip::expand_braces("plain.tar"), (std::vector<std::string>{"plain.tar"}));
  EXPECT_EQ(clip::expand_braces("s/{000000..001023}.tar").size(), 1024u);
  EXPECT_EQ(clip::expand_braces("s/{000000..001023}.tar").back(), "s/001023.tar");
  for (const char* bad : {"a{1..2", "a}b", "{1..x}", "{00000..}"}) {
    EXPECT_THROW(clip::expand_braces(bad), clip::Error) << bad;
  }

  const std::vector<clip::ShardSource> sources = clip::parse_shard_sources("a/{0..3}.tar::b/{0..1}.tar", "1::3");
  ASSERT_EQ(sources.size(), 2u);
  EXPECT_EQ(sources[0].shards.size(), 4u);
  EXPECT_DOUBLE_EQ(sources[1].weight, 3);
  EXPECT_DOUBLE_EQ(clip::parse_shard_sources("a/{0..3}.tar::b.tar")[0].weight, 4);  // unweighted: shard counts
  EXPECT_THROW(clip::parse_shard_sources("a.tar::b.tar", "1"), clip::Error);
  EXPECT_THROW(clip::parse_shard_sources("a.tar", "-1"), clip::Error);
  EXPECT_THROW(clip::parse_shard_sources("a.tar::::b.tar"), clip::Error);

  EXPECT_TRUE(clip::looks_like_shards("d/{00000..00099}.tar"));
  EXPECT_TRUE(clip::looks_like_shards("a/{0..3}.tar::b/x.tar"));
  EXPECT_FALSE(clip::looks_like_shards("train.csv"));
  EXPECT_FALSE(clip::looks_like_shards("a.tar::b.csv"));
  EXPECT_FALSE(clip::looks_like_shards("synthetic"));

  EXPECT_EQ(clip::shard_path("out/{00000..}.tar", 42), "out/00042.tar");
  EXPECT_EQ(clip::shard_path("out/s-{7..}.tar", 5), "out/s-12.tar");
  EXPECT_EQ(clip::shard_path("out/{000..010}.tar", 10), "out/010.tar");
  EXPECT_THROW(clip::shard_path("out/{000..010}.tar", 11), clip::Error);
  EXPECT_THROW(clip::shard_path("out/shard.tar", 0), clip::Error);
  EXPECT_THROW(clip::shard_path("{0..}/{0..}.tar", 0), clip::Error);
}

// Folder -> shards -> samples: every sample comes back once, with its caption, across 2 ranks x 3 threads.
TEST(ShardRoundTrip, NoneLostOrDuplicatedAcrossRanksAndThreads) {
  CLIP_REQUIRE_FEATURE(shards);
  TempDir tmp;
  const std::vector<fs::path> images = fixture_images();
  const char* classes[] = {"cat", "dog", "bird"};
  for (int copy = 0; copy < 2; ++copy) {
    for (size_t i = 0; i < images.size(); ++i) {
      const fs::path dir = tmp.path() / "folder" / classes[(i + size_t(copy)) % 3];
      fs::create_directories(dir);
      fs::copy_file(images[i], dir / (std::to_string(copy) + "_" + images[i].filename().string()));
    }
  }
  const clip::CaptionDataset data = clip::caption_folder(tmp / "folder", {"a photo of a {}.", "a {} picture"});
  clip::ShardWriteOptions o = write_options(tmp / "shards/{00000..}.tar", 4);
  o.seed = 5;
  const clip::ShardWriteSummary summary = clip::write_shards(data, o);
  ASSERT_EQ(summary.samples, static_cast<int64_t>(data.size()));
  EXPECT_EQ(summary.failed, 0);
  EXPECT_EQ(summary.shards.size(), (data.size() + 3) / 4);
  EXPECT_EQ(clip::count_from_sizes_json(summary.shards), static_cast<int64_t>(data.size()));

  const auto sources = clip::parse_shard_sources(tmp / "shards/{00000..00007}.tar");
  ASSERT_EQ(sources[0].shards.size(), summary.shards.size());
  for (int64_t epoch : {0, 1}) {
    std::map<std::string, int> seen;
    std::vector<std::string> order;
    for (int rank = 0; rank < 2; ++rank) {
      const clip::ShardPlan plan(sources, {false, 11, rank, 2, 3});
      ASSERT_EQ(plan.workers(), 3);
      for (int worker = 0; worker < 3; ++worker) {
        clip::ShardStreamOptions so;
        so.shuffle_buffer = 3;
        so.max_passes = 1;
        clip::ShardStream stream(plan, worker, epoch, so);
        while (std::optional<clip::ShardSample> s = stream.next()) {
          const size_t index = std::stoul(s->key);
          EXPECT_EQ(s->caption, data.caption(index, o.seed)) << s->name();
          ++seen[s->key];
          order.push_back(s->key);
        }
        EXPECT_EQ(stream.counts().failed(), 0);
      }
    }
    EXPECT_EQ(seen.size(), data.size()) << "epoch " << epoch;
    for (const auto& [key, times] : seen) EXPECT_EQ(times, 1) << key;
    std::printf("[ measured ] epoch %lld: %zu samples from %zu shards over 2 ranks x 3 threads, each once; first keys %s %s %s\n",
                static_cast<long long>(epoch), seen.size(), summary.shards.size(), order[0].c_str(), order[1].c_str(),
                order[2].c_str());
  }

  // Every sample decodes; the json member carries the class.
  clip::ShardImageOptions io;
  io.preprocess.size = 32;
  at::Tensor out = at::empty({3, 32, 32}, at::kFloat);
  for (const std::string& shard : summary.shards) {
    for (const clip::ShardSample& s : read_all(shard)) EXPECT_NO_THROW(clip::load_shard_image(s, io, 0, out)) << s.name();
  }
}

TEST(ShardReader, SampleWithoutCaptionIsCountedAndSkipped) {
  CLIP_REQUIRE_FEATURE(shards);
  TempDir tmp;
  const std::string jpg = jpeg_bytes();
  {
    clip::ShardWriter w(tmp / "{0..}.tar", 100);
    w.write("a", {{"jpg", jpg}, {"txt", "a cat"}});
    w.write("b", {{"jpg", jpg}});                                   // no caption at all
    w.write("c", {{"json", R"({"caption": "from json"})"}, {"jpg", jpg}});
    w.write("d", {{"jpg", jpg}, {"json", R"({"other": 1})"}});      // json without the field
    w.write("e", {{"txt", "no image here"}});
    w.write("f", {{"jpg", jpg}, {"txt", "  \n"}});                 // blank caption
    w.write("g", {{"png", read_bytes(clip::test::data("preprocess/images/horse.png"))}, {"JPG", jpg}, {"txt", "two"}});
    w.write("h", {{"jpg", jpg}, {"json", "{not json"}});
    w.finish();
  }
  clip::ShardCounts counts;
  std::vector<std::string> errors;
  const std::vector<clip::ShardSample> samples = read_all(tmp / "0.tar", &counts, &errors);
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[0].key, "a");
  EXPECT_EQ(samples[1].caption, "from json");
  EXPECT_EQ(samples[2].key, "g");
  EXPECT_EQ(samples[2].image_format, "jpg") << "jpg comes before png whatever the member order";
  EXPECT_EQ(samples[2].image.size(), jpg.size());
  EXPECT_EQ(counts.samples, 3);
  EXPECT_EQ(counts.no_caption, 3);
  EXPECT_EQ(counts.no_image, 1);
  EXPECT_EQ(counts.corrupt, 1);
  ASSERT_EQ(errors.size(), 5u);
  for (const std::string& e : errors) std::printf("[ message  ] %s\n", e.c_str());
  EXPECT_NE(errors[0].find("0.tar:b: no caption"), std::string::npos) << errors[0];
}

// Member names are keys, nothing else: nothing is written, whatever the names say.
TEST(ShardReader, HostileMemberNamesAreOnlyKeys) {
  CLIP_REQUIRE_FEATURE(shards);
  TempDir tmp;
  const std::string jpg = jpeg_bytes();
  {
    clip::ShardWriter w(tmp / "{0..}.tar", 100);
    w.write("../../etc/passwd", {{"jpg", jpg}, {"txt", "dot dot"}});
    w.write("/abs", {{"jpg", jpg}, {"txt", "absolute"}});
    w.write("dir/../../x", {{"jpg", jpg}, {"txt", "inner dots"}});
    w.finish();
  }
  const fs::path empty = tmp.path() / "cwd";
  fs::create_directories(empty);
  const fs::path before = fs::current_path();
  fs::current_path(empty);
  const std::vector<clip::ShardSample> samples = read_all(tmp / "0.tar");
  fs::current_path(before);
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[0].key, "../../etc/passwd");
  EXPECT_EQ(samples[0].caption, "dot dot");
  EXPECT_EQ(samples[1].key, "/abs");
  EXPECT_EQ(samples[2].key, "dir/../../x");
  EXPECT_TRUE(fs::is_empty(empty)) << "reading wrote files";
  EXPECT_FALSE(fs::exists("/abs.txt"));
  EXPECT_FALSE(fs::exists(tmp.path().parent_path() / "etc"));
}

TEST(ShardReader, TruncatedAndUnreadableShardsAreCountedNotThrown) {
  CLIP_REQUIRE_FEATURE(shards);
  TempDir tmp;
  const std::string jpg = jpeg_bytes();
  {
    clip::ShardWriter w(tmp / "{0..}.tar", 100);
    for (int i = 0; i < 6; ++i) w.write("s" + std::to_string(i), {{"jpg", jpg}, {"txt", "caption " + std::to_string(i)}});
    w.finish();
  }
  const std::string shard = tmp / "0.tar";
  fs::resize_file(shard, fs::file_size(shard) * 6 / 10);  // inside the 4th sample
  clip::ShardCounts counts;
  std::vector<std::string> errors;
  const std::vector<clip::ShardSample> samples = read_all(shard, &counts, &errors);
  EXPECT_EQ(samples.size(), 3u);
  EXPECT_EQ(counts.shards_truncated, 1);
  EXPECT_EQ(counts.corrupt, 1);
  ASSERT_EQ(errors.size(), 1u);
  std::printf("[ message  ] %s\n", errors[0].c_str());
  EXPECT_NE(errors[0].find("shard ends early"), std::string::npos);

  std::ofstream(tmp / "text.tar") << "this is not a tar file at all, just some words to fill a block or two\n";
  for (const std::string& bad : {tmp / "text.tar", tmp / "missing.tar"}) {
    read_all(bad, &counts, &errors);
    EXPECT_EQ(counts.shards_failed, 1) << bad;
    ASSERT_EQ(errors.size(), 1u);
    std::printf("[ message  ] %s\n", errors[0].c_str());
  }
}

TEST(ShardPlan, ResamplingFollowsTheWeightsAndNeedsNoShardPerRank) {
  std::vector<clip::ShardSource> sources = clip::parse_shard_sources("a/{0..3}.tar::b/{0..1}.tar", "1::3");
  const clip::ShardPlan plan(sources, {true, 3, 0, 1, 2});
  int from_b = 0;
  const int draws = 8000;
  std::set<std::string> distinct;
  for (int i = 0; i < draws; ++i) {
    const std::string& s = plan.draw(0, 0, i);
    from_b += s[0] == 'b';
    distinct.insert(s);
  }
  const double share = double(from_b) / draws;
  std::printf("[ measured ] weights 1::3: %.3f of %d draws from the second source (expected 0.75)\n", share, draws);
  EXPECT_NEAR(share, 0.75, 0.02);
  EXPECT_EQ(distinct.size(), 6u);
  EXPECT_EQ(plan.draw(0, 0, 17), plan.draw(0, 0, 17));
  int same = 0;
  for (int i = 0; i < 100; ++i) same += plan.draw(0, 0, i) == plan.draw(0, 1, i) && plan.draw(0, 0, i) == plan.draw(1, 0, i);
  EXPECT_LT(same, 30) << "threads and epochs draw differently";

  const clip::ShardPlan unweighted(clip::parse_shard_sources("a/{0..3}.tar::b/{0..1}.tar"), {true, 3, 0, 1, 1});
  int from_a = 0;
  for (int i = 0; i < draws; ++i) from_a += unweighted.draw(0, 0, i)[0] == 'a';
  EXPECT_NEAR(double(from_a) / draws, 4.0 / 6.0, 0.02);

  // 5 ranks over 2 shards: only with resampling.
  try {
    clip::ShardPlan(clip::parse_shard_sources("x/{0..1}.tar"), {false, 0, 4, 5, 1});
    ADD_FAILURE() << "2 shards for 5 ranks must be refused without resampling";
  } catch (const clip::Error& e) {
    std::printf("[ message  ] %s\n", e.what());
    EXPECT_NE(std::string(e.what()).find("--dataset-resampled"), std::string::npos);
  }
  EXPECT_NO_THROW(clip::ShardPlan(clip::parse_shard_sources("x/{0..1}.tar"), {true, 0, 4, 5, 1}));
}

// A stream stopped anywhere and restarted from its position() hands out exactly the rest.
TEST(ShardStream, ResumesExactlyFromAnyPosition) {
  CLIP_REQUIRE_FEATURE(shards);
  TempDir tmp;
  const clip::CaptionDataset data = clip::read_caption_csv(write_csv(tmp, 23), "filepath", "title", "\t");
  clip::write_shards(data, write_options(tmp / "s/{00000..}.tar", 4));
  for (bool resampled : {false, true}) {
    const clip::ShardPlan plan(clip::parse_shard_sources(tmp / "s/{00000..00005}.tar"), {resampled, 1, 0, 1, 2});
    clip::ShardStreamOptions so;
    so.shuffle_buffer = 5;
    so.max_passes = resampled ? 0 : 2;
    auto keys = [&](clip::ShardStream& stream, size_t limit) {
      std::vector<std::string> out;
      while (out.size() < limit) {
        std::optional<clip::ShardSample> s = stream.next();
        if (!s) break;
        out.push_back(s->key);
      }
      return out;
    };
    const size_t total = 40;
    clip::ShardStream straight(plan, 1, 3, so);
    const std::vector<std::string> all = keys(straight, total);
    ASSERT_GE(all.size(), 20u);
    for (size_t cut : {size_t(0), size_t(3), size_t(5), size_t(9), size_t(17), all.size() - 1}) {
      clip::ShardStream first(plan, 1, 3, so);
      EXPECT_EQ(keys(first, cut).size(), cut);
      const clip::ShardPosition p = first.position();
      EXPECT_EQ(p.emitted, static_cast<int64_t>(cut));
      clip::ShardStream resumed(plan, 1, 3, so, p);
      EXPECT_EQ(resumed.position().emitted, p.emitted);
      const std::vector<std::string> rest = keys(resumed, all.size() - cut);
      EXPECT_EQ(rest, std::vector<std::string>(all.begin() + std::ptrdiff_t(cut), all.end()))
          << "resampled " << resampled << ", cut at " << cut;
    }
    clip::ShardStream other_epoch(plan, 1, 4, so);
    EXPECT_NE(keys(other_epoch, all.size()), all) << "each epoch reshuffles";
  }
}

clip::TrainConfig source_config(const std::string& pattern) {
  clip::TrainConfig c;
  c.data.train_data = pattern;
  c.data.batch_size = 4;
  c.data.workers = 3;
  c.data.shuffle_buffer = 3;
  c.runtime.seed = 2;
  return c;
}

// The token rows of a batch, to compare with the tokenized captions.
std::vector<std::vector<int64_t>> rows_of(const at::Tensor& texts) {
  std::vector<std::vector<int64_t>> out;
  const at::Tensor t = texts.contiguous();
  for (int64_t r = 0; r < t.size(0); ++r) {
    const int64_t* row = t[r].data_ptr<int64_t>();
    out.emplace_back(row, row + t.size(1));
  }
  return out;
}

// The trainer's source: 2 ranks x 3 threads deliver every sample once per epoch, in full batches.
TEST(ShardSource, EpochCoversEverySampleOnceAcrossRanks) {
  CLIP_REQUIRE_FEATURE(shards);
  TempDir tmp;
  const clip::CaptionDataset data = clip::read_caption_csv(write_csv(tmp, 24), "filepath", "title", "\t");
  clip::write_shards(data, write_options(tmp / "s/{00000..}.tar", 2));
  const clip::ModelConfig model = clip::load_model_config(clip::test::data("vit_tiny_bpe.json"));
  std::shared_ptr<const clip::Tokenizer> tok(clip::load_tokenizer(model.text));
  clip::TrainConfig c = source_config(tmp / "s/{00000..00011}.tar");  // train_num_samples from sizes.json
  std::multiset<std::vector<int64_t>> seen;
  for (int rank = 0; rank < 2; ++rank) {
    auto source = clip::make_shard_source(model, c, tok, rank, 2);
    EXPECT_EQ(source->batches_per_epoch(), 3);
    source->start_epoch(0, 0);
    int batches = 0;
    while (std::optional<clip::TrainBatch> b = source->next()) {
      ++batches;
      EXPECT_EQ(b->images.sizes(), at::IntArrayRef({4, 3, model.vision.image_size, model.vision.image_size}));
      EXPECT_EQ(b->skipped, 0);
      for (auto& row : rows_of(b->texts)) seen.insert(std::move(row));
    }
    EXPECT_EQ(batches, 3);
  }
  ASSERT_EQ(seen.size(), 24u);
  for (int i = 0; i < 24; ++i) {
    const at::Tensor expected = tok->tokenize({"photo number " + std::to_string(i)}, model.text.context_length, true);
    EXPECT_EQ(seen.count(rows_of(expected)[0]), 1u) << "photo number " << i;
  }

  // Resampled, five ranks over the same twelve shards.
  c.data.dataset_resampled = true;
  c.data.train_num_samples = 40;
  auto source = clip::make_shard_source(model, c, tok, 4, 5);
  source->start_epoch(0, 0);
  EXPECT_EQ(source->batches_per_epoch(), 2);
  int batches = 0;
  while (source->next()) ++batches;
  EXPECT_EQ(batches, 2);
  c.data.dataset_resampled = false;
  EXPECT_THROW(clip::make_shard_source(model, c, tok, 4, 13), clip::Error);
}

// Stopped after two batches and continued from the recorded position: the same batches as a straight epoch.
TEST(ShardSource, ResumesFromTheRecordedPosition) {
  CLIP_REQUIRE_FEATURE(shards);
  TempDir tmp;
  const clip::CaptionDataset data = clip::read_caption_csv(write_csv(tmp, 30), "filepath", "title", "\t");
  clip::write_shards(data, write_options(tmp / "s/{00000..}.tar", 3));
  const clip::ModelConfig model = clip::load_model_config(clip::test::data("vit_tiny_bpe.json"));
  std::shared_ptr<const clip::Tokenizer> tok(clip::load_tokenizer(model.text));
  clip::TrainConfig c = source_config(tmp / "s/{00000..00009}.tar");
  c.data.workers = 2;
  c.data.train_num_samples = 28;  // 7 batches: the streams wrap into a second pass
  auto straight = clip::make_shard_source(model, c, tok, 0, 1);
  straight->start_epoch(1, 0);
  std::vector<clip::TrainBatch> all;
  while (std::optional<clip::TrainBatch> b = straight->next()) all.push_back(std::move(*b));
  ASSERT_EQ(all.size(), 7u);

  for (int64_t cut : {2, 5}) {
    auto first = clip::make_shard_source(model, c, tok, 0, 1);
    first->start_epoch(1, 0);
    for (int64_t i = 0; i < cut; ++i) ASSERT_TRUE(first->next());
    const std::string position = first->position();
    first.reset();
    auto resumed = clip::make_shard_source(model, c, tok, 0, 1);
    resumed->restore_position(position);
    resumed->start_epoch(1, cut);
    for (size_t i = size_t(cut); i < all.size(); ++i) {
      std::optional<clip::TrainBatch> b = resumed->next();
      ASSERT_TRUE(b) << i;
      EXPECT_TRUE(at::equal(b->images, all[i].images)) << "batch " << i << " after a resume at " << cut;
      EXPECT_TRUE(at::equal(b->texts, all[i].texts)) << "batch " << i;
    }
    EXPECT_FALSE(resumed->next());
  }
}

TEST(ShardSource, FailuresAreCountedUntilTheyPassTheLimit) {
  CLIP_REQUIRE_FEATURE(shards);
  TempDir tmp;
  const std::string jpg = jpeg_bytes();
  {
    clip::ShardWriter w(tmp / "s/{0..}.tar", 10);
    for (int i = 0; i < 20; ++i) {
      const bool bad = i % 4 == 1;  // a quarter: text called .jpg
      w.write("k" + std::to_string(i), {{"jpg", bad ? std::string("not an image, just text") : jpg}, {"txt", "sample " + std::to_string(i)}});
    }
    w.finish();
  }
  const clip::ModelConfig model = clip::load_model_config(clip::test::data("vit_tiny_bpe.json"));
  std::shared_ptr<const clip::Tokenizer> tok(clip::load_tokenizer(model.text));
  clip::TrainConfig c = source_config(tmp / "s/{0..1}.tar");
  c.data.workers = 1;
  c.data.max_failure_fraction = 0.5;
  auto tolerant = clip::make_shard_source(model, c, tok, 0, 1);
  tolerant->start_epoch(0, 0);
  int64_t skipped = 0, rows = 0;
  while (std::optional<clip::TrainBatch> b = tolerant->next()) {
    skipped += b->skipped;
    rows += b->images.size(0);
    for (const std::string& e : b->errors) EXPECT_NE(e.find("not an image"), std::string::npos) << e;
  }
  EXPECT_EQ(rows, 20);  // full batches: failed samples are replaced by the next ones
  EXPECT_GE(skipped, 5);
  std::printf("[ measured ] %lld of the samples read were skipped; the batches stayed full\n", static_cast<long long>(skipped));

  c.data.max_failure_fraction = 0.1;
  c.data.train_num_samples = 400;  // long enough for the limit to be judged
  auto strict = clip::make_shard_source(model, c, tok, 0, 1);
  strict->start_epoch(0, 0);
  try {
    while (strict->next()) {
    }
    ADD_FAILURE() << "a quarter of the samples failing must pass a limit of 0.1";
  } catch (const clip::Error& e) {
    std::printf("[ message  ] %s\n", e.what());
    EXPECT_NE(std::string(e.what()).find("--max-failure-fraction 0.1"), std::string::npos);
  }
}

// clip_train on shards: 3 steps + resume + 3 steps == 6 steps straight (the data position is in the checkpoint).
TEST(ShardTraining, ResumedRunEqualsStraightRun) {
  CLIP_REQUIRE_FEATURE(shards);
  TempDir tmp;
  const clip::CaptionDataset data = clip::read_caption_csv(write_csv(tmp, 24), "filepath", "title", "\t");
  clip::write_shards(data, write_options(tmp / "s/{00000..}.tar", 4));
  auto config = [&](const std::string& out) {
    clip::TrainConfig c;
    c.model.config = clip::test::data("vit_tiny_bpe.json");
    c.data.train_data = tmp / "s/{00000..00005}.tar";
    c.data.batch_size = 4;
    c.data.workers = 2;
    c.data.shuffle_buffer = 5;
    c.optimizer.epochs = 1;
    c.optimizer.warmup = 2;
    c.optimizer.lr = 1e-3;
    c.checkpoint.log_every = 1;
    c.checkpoint.report = false;
    c.checkpoint.output_dir = out;
    c.checkpoint.save_every = 1;
    return c;
  };
  const clip::TrainResult a = clip::train(config(tmp / "straight"));
  clip::TrainConfig first = config(tmp / "resumed");
  first.checkpoint.stop_after = 3;
  clip::train(first);
  const std::string position = clip::load_train_checkpoint(clip::checkpoint_path(tmp / "resumed", 3)).progress.data_position;
  EXPECT_NE(position.find("\"streams\""), std::string::npos) << position;
  clip::TrainConfig second = config(tmp / "resumed");
  second.checkpoint.resume = "latest";
  const clip::TrainResult b = clip::train(second);
  ASSERT_EQ(a.steps, 6);
  ASSERT_EQ(b.steps, 6);
  const clip::TrainCheckpoint ca = clip::load_train_checkpoint(a.last_checkpoint);
  const clip::TrainCheckpoint cb = clip::load_train_checkpoint(b.last_checkpoint);
  double worst = 0;
  for (const auto& [name, t] : ca.model) worst = std::max(worst, (t - cb.model.at(name)).abs().max().item<double>());
  std::printf("[ measured ] shards, 3 + resume + 3 vs 6 steps: worst weight difference %.3g\n", worst);
  EXPECT_LE(worst, 1e-6);
}

int run_shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Two processes (clip_train --nproc-per-node 2), 3 steps + resume + 3 steps vs 6 straight steps. Returns the worst
// weight difference; `position` gets the data position recorded at step 3.
double two_rank_resume_difference(const TempDir& tmp, const std::string& train_data, std::string& position) {
  const std::string common = clip::test::tool("clip_train") + " --nproc-per-node 2 --model-config " +
                             clip::test::data("vit_tiny_bpe.json") + " --train-data '" + train_data +
                             "' --batch-size 2 --workers 2 --shuffle-buffer 5 --epochs 1 --warmup 2 --lr 1e-3 "
                             "--log-every 1 --report false --save-every 1 --threads 1 --output-dir ";
  const std::string quiet = " > " + (tmp / "log.txt") + " 2>&1";
  EXPECT_EQ(run_shell(common + tmp / "straight" + quiet), 0) << read_bytes(tmp / "log.txt");
  EXPECT_EQ(run_shell(common + tmp / "resumed" + " --stop-after 3" + quiet), 0) << read_bytes(tmp / "log.txt");
  position = clip::load_train_checkpoint(clip::checkpoint_path(tmp / "resumed", 3)).progress.data_position;
  EXPECT_EQ(run_shell(common + tmp / "resumed" + " --resume latest" + quiet), 0) << read_bytes(tmp / "log.txt");
  const std::string log = read_bytes(tmp / "log.txt");
  EXPECT_EQ(log.find("no shard position recorded"), std::string::npos) << log;
  const clip::TrainCheckpoint a = clip::load_train_checkpoint(clip::checkpoint_path(tmp / "straight", 6));
  const clip::TrainCheckpoint b = clip::load_train_checkpoint(clip::checkpoint_path(tmp / "resumed", 6));
  double worst = 0;
  for (const auto& [name, t] : a.model) worst = std::max(worst, (t - b.model.at(name)).abs().max().item<double>());
  return worst;
}

// Each rank's stream position reaches the checkpoint, and a resumed run continues each rank where it stood.
TEST(ShardTraining, TwoRankResumeEqualsStraightRun) {
  CLIP_REQUIRE_FEATURE(shards);
  TempDir tmp;
  const clip::CaptionDataset data = clip::read_caption_csv(write_csv(tmp, 24), "filepath", "title", "\t");
  clip::write_shards(data, write_options(tmp / "s/{00000..}.tar", 3));
  std::string position;
  const double worst = two_rank_resume_difference(tmp, tmp / "s/{00000..00007}.tar", position);
  std::printf("[ measured ] shards, 2 ranks, 3 + resume + 3 vs 6 steps: worst weight difference %.3g\n", worst);
  EXPECT_LE(worst, 1e-6);
  const nlohmann::json ranks = nlohmann::json::parse(position);
  ASSERT_TRUE(ranks.is_array()) << position;
  ASSERT_EQ(ranks.size(), 2u) << position;
  EXPECT_EQ(ranks[0].value("rank", -1), 0);
  EXPECT_EQ(ranks[1].value("rank", -1), 1);
}

// The same for a CSV: its order, crops and captions follow from (seed, epoch, step), so nothing else is recorded.
TEST(CsvTraining, TwoRankResumeEqualsStraightRun) {
  TempDir tmp;
  std::string position;
  const double worst = two_rank_resume_difference(tmp, write_csv(tmp, 24), position);
  std::printf("[ measured ] CSV, 2 ranks, 3 + resume + 3 vs 6 steps: worst weight difference %.3g\n", worst);
  EXPECT_LE(worst, 1e-6);
}

// Checkpoints do not depend on the number of ranks or on --shard-optimizer (the optimizer state is gathered
// whole), and a run resumes on another number of ranks. "The same" here: with the same global batch (2 ranks x 2
// <-> 1 rank x 4) the resumed run takes exactly the batches, crops and learning rates of the straight run, so its
// weights and optimizer state equal the straight run's up to float summation order (two half-batch gradients
// averaged vs one batch; AdamW eps 1e-3 keeps float-noise gradients from being amplified, as in test_dist). Another
// global batch continues at the same sample of the epoch when a whole number of new batches precedes it, and is
// refused, saying which --batch-size keeps the global batch, when not.
TEST(CsvTraining, ResumesOnAnotherNumberOfRanks) {
  TempDir tmp;
  const std::string csv = write_csv(tmp, 24);
  const std::string common = clip::test::tool("clip_train") + " --model-config " + clip::test::data("vit_tiny_bpe.json") +
                             " --train-data '" + csv + "' --workers 2 --epochs 1 --warmup 2 --lr 1e-3 --eps 1e-3 "
                             "--log-every 1 --report false --save-every 1 --keep-checkpoints 10 --threads 1 ";
  const std::string two = common + "--nproc-per-node 2 --batch-size 2 --shard-optimizer ", one = common + "--batch-size 4 ";
  const std::string quiet = " > " + (tmp / "log.txt") + " 2>&1";
  ASSERT_EQ(run_shell(two + "--output-dir " + tmp / "straight" + quiet), 0) << read_bytes(tmp / "log.txt");
  // 2 ranks (sharded optimizer) -> 1 rank, and 1 rank -> 2 ranks (sharded).
  ASSERT_EQ(run_shell(two + "--output-dir " + tmp / "down" + " --stop-after 3" + quiet), 0) << read_bytes(tmp / "log.txt");
  ASSERT_EQ(run_shell(one + "--output-dir " + tmp / "down" + " --resume latest" + quiet), 0) << read_bytes(tmp / "log.txt");
  EXPECT_CONTAINS(read_bytes(tmp / "log.txt"), "the same batches follow");
  ASSERT_EQ(run_shell(one + "--output-dir " + tmp / "up" + " --stop-after 3" + quiet), 0) << read_bytes(tmp / "log.txt");
  ASSERT_EQ(run_shell(two + "--output-dir " + tmp / "up" + " --resume latest" + quiet), 0) << read_bytes(tmp / "log.txt");
  const clip::TrainCheckpoint straight = clip::load_train_checkpoint(clip::checkpoint_path(tmp / "straight", 6));
  for (const char* run : {"down", "up"}) {
    const clip::TrainCheckpoint c = clip::load_train_checkpoint(clip::checkpoint_path(tmp / run, 6));
    double weights = 0, state = 0;
    for (const auto& [name, t] : straight.model) weights = std::max(weights, (t - c.model.at(name)).abs().max().item<double>());
    for (const auto& [name, t] : straight.optimizer) {
      state = std::max(state, (t.to(at::kDouble) - c.optimizer.at(name).to(at::kDouble)).abs().max().item<double>());
    }
    std::printf("[ measured ] 3 steps on %s + resume on %s + 3 vs 6 straight on 2 ranks (sharded optimizer): worst "
                "weight difference %.3g, optimizer state %.3g\n",
                std::string(run) == "down" ? "2 ranks" : "1 rank", std::string(run) == "down" ? "1 rank" : "2 ranks",
                weights, state);
    EXPECT_LE(weights, 1e-5) << run;
    EXPECT_LE(state, 1e-5) << run;
    EXPECT_EQ(c.progress.step, 6);
    EXPECT_EQ(c.progress.samples_seen, 24);
  }
  // Another global batch: 12 samples in, batches of 6 continue at batch 2; batches of 5 cannot.
  ASSERT_EQ(run_shell(common + "--batch-size 6 --output-dir " + tmp / "six" + " --resume " +
                      clip::checkpoint_path(tmp / "down", 3) + quiet), 0) << read_bytes(tmp / "log.txt");
  EXPECT_CONTAINS(read_bytes(tmp / "log.txt"), "from sample 12 of epoch 0 (batch 2)");
  EXPECT_NE(run_shell(common + "--batch-size 5 --output-dir " + tmp / "five" + " --resume " +
                      clip::checkpoint_path(tmp / "down", 3) + quiet), 0);
  EXPECT_CONTAINS(read_bytes(tmp / "log.txt"), "--batch-size 4 keeps it");
  std::printf("[ message  ] %s", read_bytes(tmp / "log.txt").c_str());
}

// Unreadable samples leave one rank fewer rows than another: every rank then trains on the fewest (the gathers
// and the ring exchange need equal shapes), rank 0 says so, the other rank reports
// its own failures, and samples_seen counts what was trained on. With --accum-freq 2 a batch of 1 still steps.
TEST(CsvTraining, UnreadableSamplesKeepTheRanksBatchesEqual) {
  TempDir tmp;
  const std::vector<fs::path> images = fixture_images();
  std::ofstream(tmp / "notes.png") << "not an image";
  std::ofstream out(tmp / "data.csv");
  out << "filepath\ttitle\n";
  for (int i = 0; i < 16; ++i) {
    out << (i % 4 == 1 ? fs::path(tmp / "notes.png") : images[size_t(i) % images.size()]).string() << "\tphoto number " << i << "\n";
  }
  out.close();
  const std::string log = tmp / "log.txt";
  const std::string command = clip::test::tool("clip_train") + " --model-config " + clip::test::data("vit_tiny_bpe.json") +
                              " --train-data " + (tmp / "data.csv") + " --nproc-per-node 2 --batch-size 2 --accum-freq 2"
                              " --workers 1 --epochs 1 --warmup 1 --log-every 1 --report false --threads 1 --output-dir " +
                              (tmp / "run") + " > " + log + " 2>&1";
  ASSERT_EQ(run_shell(command), 0) << read_bytes(log);
  const std::string text = read_bytes(log);
  EXPECT_CONTAINS(text, "rank 0 skipped");
  EXPECT_CONTAINS(text, "rank 1 skipped");
  EXPECT_CONTAINS(text, "readable samples left out, so that the ranks' batches stay equal");
  const clip::TrainCheckpoint c = clip::load_train_checkpoint(clip::checkpoint_path(tmp / "run", 4));
  // 4 unreadable of 16: each step trains on the fewest rows of the two ranks, times 2.
  std::printf("[ measured ] 16 samples, 4 unreadable, 2 ranks x 2, 4 steps: samples_seen %lld\n",
              static_cast<long long>(c.progress.samples_seen));
  EXPECT_EQ(c.progress.step, 4);
  EXPECT_LT(c.progress.samples_seen, 16 - 4);
  EXPECT_GE(c.progress.samples_seen, 4);
  for (const auto& [name, t] : c.model) EXPECT_TRUE(t.isfinite().all().item<bool>()) << name;
}

// Preemption: a 2-rank run (clip_train --nproc-per-node 2, which passes signals on to its workers) gets SIGUSR1
// mid-epoch and SIGTERM while it stops (a second signal during the save). Every rank finishes its step, they agree
// on one step, rank 0 checkpoints, and the job exits 75 (EX_TEMPFAIL: requeue me), having run `scontrol requeue`
// (a stand-in on PATH) for --requeue-on-preempt under SLURM_JOB_ID. `--resume auto` then finishes the run, and its
// weights equal an uninterrupted run's.
TEST(CsvTraining, PreemptedRunCheckpointsAndResumesExactly) {
  TempDir tmp;
  const std::string csv = write_csv(tmp, 48);
  fs::create_directories(tmp / "bin");
  {
    std::ofstream fake(tmp / "bin/scontrol");
    fake << "#!/bin/sh\necho \"$@\" > " << (tmp / "scontrol_args.txt") << "\n";
  }
  fs::permissions(tmp / "bin/scontrol", fs::perms::owner_all);
  const std::string common = clip::test::tool("clip_train") + " --nproc-per-node 2 --model-config " +
                             clip::test::data("vit_tiny_bpe.json") + " --train-data " + csv +
                             " --batch-size 2 --workers 1 --epochs 1 --warmup 2 --lr 1e-3 --log-every 1 --report false"
                             " --threads 1 --resume auto --output-dir ";
  ASSERT_EQ(run_shell(common + tmp / "straight" + " > " + (tmp / "straight.txt") + " 2>&1"), 0)
      << read_bytes(tmp / "straight.txt");

  const std::string log = tmp / "preempted.txt";
  const pid_t pid = clip::test::start_command("env PATH=" + (tmp / "bin") + ":$PATH SLURM_JOB_ID=4242 " + common + tmp / "run" +
                                " --requeue-on-preempt > " + log + " 2>&1");
  ASSERT_GT(pid, 0);
  const std::string metrics = tmp / "run/metrics.jsonl";
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (clip::test::logged_train_steps(metrics) < 3 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGUSR1);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ::kill(pid, SIGTERM);
  const int code = clip::test::wait_exit_code(pid);
  const std::string text = read_bytes(log);
  ASSERT_EQ(code, 75) << text;
  EXPECT_CONTAINS(text, "on SIGUSR1; checkpoint ");
  EXPECT_CONTAINS(read_bytes(tmp / "scontrol_args.txt"), "requeue 4242") << text;
  const std::string latest = clip::latest_checkpoint(tmp / "run");
  ASSERT_FALSE(latest.empty()) << text;
  const int64_t stopped_at = clip::load_train_checkpoint(latest).progress.step;
  EXPECT_GE(stopped_at, 3);
  EXPECT_LT(stopped_at, 12) << "the signal came after the run had ended: the test says nothing";

  ASSERT_EQ(run_shell(common + tmp / "run" + " > " + log + " 2>&1"), 0) << read_bytes(log);
  EXPECT_CONTAINS(read_bytes(log), "resumed from");
  const clip::TrainCheckpoint a = clip::load_train_checkpoint(clip::checkpoint_path(tmp / "straight", 12));
  const clip::TrainCheckpoint b = clip::load_train_checkpoint(clip::checkpoint_path(tmp / "run", 12));
  double worst = 0;
  for (const auto& [name, t] : a.model) worst = std::max(worst, (t - b.model.at(name)).abs().max().item<double>());
  std::printf("[ measured ] 2 ranks, SIGUSR1 + SIGTERM at step %lld of 12, exit 75, resume --resume auto: worst "
              "weight difference to an uninterrupted run %.3g\n", static_cast<long long>(stopped_at), worst);
  EXPECT_LE(worst, 1e-6);
}

TEST(ClipShardsTool, PacksACsvAndRefusesToOverwrite) {
  CLIP_REQUIRE_FEATURE(shards);
  TempDir tmp;
  const std::string csv = write_csv(tmp, 7);
  const std::string tool = std::string(CLIP_BIN_DIR) + "/clip_shards";
  const std::string pack = tool + " --csv " + csv + " --output '" + (tmp / "out/{00000..}.tar") +
                           "' --samples-per-shard 3 --resize 64 > " + (tmp / "log.txt") + " 2>&1";
  ASSERT_EQ(run_shell(pack), 0) << read_bytes(tmp / "log.txt");
  const nlohmann::json sizes = nlohmann::json::parse(read_bytes(tmp / "out/sizes.json"));
  EXPECT_EQ(sizes, nlohmann::json::parse(R"({"00000.tar": 3, "00001.tar": 3, "00002.tar": 1})"));
  EXPECT_NE(run_shell(pack), 0);
  EXPECT_NE(read_bytes(tmp / "log.txt").find("exists; pass --overwrite"), std::string::npos) << read_bytes(tmp / "log.txt");
  EXPECT_NE(run_shell(tool + " --csv " + csv + " --output " + (tmp / "x.tar") + " > " + (tmp / "log.txt") + " 2>&1"), 0);
  std::printf("[ message  ] %s", read_bytes(tmp / "log.txt").c_str());
  EXPECT_NE(read_bytes(tmp / "log.txt").find("no shard number"), std::string::npos);
}

// DCT-domain scaling is off by default (the exact path) and, when on, close to the exact result.
TEST(ShardImage, JpegDctScalingIsCloseAndOptional) {
  CLIP_REQUIRE_FEATURE(shards);
  clip::ShardSample s;
  s.shard = "test.tar";
  s.key = "fruits";
  s.image_format = "jpg";
  const std::string bytes = read_bytes(clip::test::data("preprocess/images/fruits.jpg"));  // 512 x 480
  s.image.assign(bytes.begin(), bytes.end());
  clip::ShardImageOptions o;
  o.preprocess.size = 112;
  at::Tensor exact = at::empty({3, 112, 112}, at::kFloat), fast = at::empty({3, 112, 112}, at::kFloat);
  clip::load_shard_image(s, o, 0, exact);
  const at::Tensor reference =
      clip::preprocess(clip::decode_image(clip::test::data("preprocess/images/fruits.jpg")), o.preprocess);
  EXPECT_TRUE(at::equal(exact, reference)) << "without the option the path is the exact one";
  o.jpeg_dct_scaling = true;
  clip::load_shard_image(s, o, 0, fast);  // 480 / 4 = 120 >= 112: decoded at a quarter of the size
  const double mean = (fast - exact).abs().mean().item<double>() * 0.27;  // in units of [0, 1] pixel values
  std::printf("[ measured ] DCT scaling 1/4 vs exact at 112 px: mean |difference| %.4f of the pixel range\n", mean);
  EXPECT_LT(mean, 0.03);
  EXPECT_FALSE(at::equal(fast, exact));
}

// A build without shards has every entry point, and each says which option brings shards (the trainer included).
TEST(ShardsLeftOut, EveryEntryPointRefusesSayingWhy) {
  if (clip::features().shards) GTEST_SKIP() << "this build has shards (" << clip::features_summary() << ")";
  TempDir tmp;
  const std::string why = "built without WebDataset shards (CLIP_WITH_SHARDS";
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::ShardReader reader(tmp / "0.tar"); }), why);
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::ShardWriter writer(tmp / "{0..}.tar", 10); }), why);
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::write_shards(clip::read_caption_csv(write_csv(tmp, 2), "filepath",
                                                                                          "title", "\t"),
                                                                  write_options(tmp / "{0..}.tar", 10)); }),
                  why);
  clip::ShardSample sample;
  sample.shard = "a.tar";
  sample.key = "k";
  at::Tensor out;
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::load_shard_image(sample, {}, 0, out); }), "a.tar:k: this libclip");
  // Shard names still parse, so the trainer recognizes a shard pattern and says what it lacks.
  EXPECT_EQ(clip::shard_path(tmp / "{00000..}.tar", 3), tmp / "00003.tar");
  const clip::test::CommandResult r = clip::test::run_command(
      clip::test::tool("clip_train") + " --model-config " + clip::test::data("vit_tiny_bpe.json") + " --train-data '" + (tmp / "{00000..00003}.tar") +
      "' --train-num-samples 8 --batch-size 2 --output-dir " + (tmp / "run") + " 2>&1");
  std::printf("[ message  ] %s", r.output.c_str());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.output, "CLIP_WITH_SHARDS");
}

}  // namespace
