// clip_shards: a CSV or a labeled image folder -> WebDataset shards; --bench SHARD: decode + augment images/s.
#include <CLI/CLI.hpp>

#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <ctime>

#include "clip/data/shard_stream.h"
#include "clip/data/shard_writer.h"
#include "clip/util/error.h"
#include "clip/text/prompts.h"
#include "tool_main.h"
#include "cli.h"

namespace {

struct Params {
  std::string csv, images;
  std::string csv_img_key = "filepath", csv_caption_key = "title", csv_separator = "\t";
  std::string templates = "simple", class_names;
  clip::ShardWriteOptions write;
  std::string bench;
  int64_t size = 224;
  bool augment = true;
  bool jpeg_dct_scaling = false;
  double seconds = 3;
};

int pack(Params p) {
  if (p.csv.empty() == p.images.empty()) clip::fail("give one of --csv FILE or --images DIR");
  if (p.write.output.empty()) clip::fail("--output is required, e.g. --output 'shards/{00000..}.tar'");
  const clip::CaptionDataset data =
      p.csv.empty() ? clip::caption_folder(p.images, clip::load_prompt_set(p.templates).templates, p.class_names)
                    : clip::read_caption_csv(p.csv, p.csv_img_key, p.csv_caption_key, p.csv_separator);
  const clip::ShardWriteSummary s = clip::write_shards(data, p.write);
  std::printf("wrote %lld samples in %zu shards (%s ... %s)", static_cast<long long>(s.samples), s.shards.size(),
              s.shards.front().c_str(), s.shards.back().c_str());
  if (s.resized > 0) std::printf(", %lld resized", static_cast<long long>(s.resized));
  if (s.failed > 0) std::printf(", %lld images skipped (listed above)", static_cast<long long>(s.failed));
  std::printf("\n");
  return 0;
}

// Decode + augment on this thread alone: the per-core rate a loader thread reaches.
int bench(const Params& p) {
  std::vector<clip::ShardSample> samples;
  const auto read_start = std::chrono::steady_clock::now();
  clip::ShardReader reader(p.bench);
  size_t bytes = 0;
  while (std::optional<clip::ShardSample> s = reader.next()) {
    bytes += s->image.size() + s->caption.size();
    samples.push_back(std::move(*s));
  }
  const double read_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - read_start).count();
  for (const std::string& e : reader.take_errors()) std::fprintf(stderr, "clip_shards: %s\n", e.c_str());
  if (samples.empty()) clip::fail(p.bench, ": no sample to decode");

  clip::ShardImageOptions o;
  o.preprocess.size = p.size;
  if (p.augment) o.random_resized_crop = clip::RandomResizedCropOptions{};
  o.jpeg_dct_scaling = p.jpeg_dct_scaling;
  at::Tensor out = at::empty({3, p.size, p.size}, at::kFloat);
  int64_t done = 0;
  // CPU time of this thread alone, so that other work on a shared machine does not lower the per-core rate.
  const std::clock_t cpu_start = std::clock();
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < p.seconds || done < static_cast<int64_t>(samples.size())) {
    const clip::ShardSample& s = samples[size_t(done) % samples.size()];
    clip::load_shard_image(s, o, clip::item_seed(0, uint64_t(done)), out);
    ++done;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  const double cpu = double(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  std::printf("%s: %zu samples, %.1f MB, read at %.0f samples/s\n", p.bench.c_str(), samples.size(), double(bytes) / 1e6,
              double(samples.size()) / read_s);
  std::printf("decode + %s to %lld + normalize%s: %.1f images/s per core (CPU time; %.1f/s wall, %lld images)\n",
              p.augment ? "RandomResizedCrop" : "resize + centre crop", static_cast<long long>(p.size),
              p.jpeg_dct_scaling ? ", JPEG DCT scaling" : "", double(done) / cpu, double(done) / elapsed,
              static_cast<long long>(done));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Params p;
  CLI::App app{"clip_shards: pack a CSV (image path + caption) or a labeled image folder into WebDataset shards\n"
               "(KEY.jpg + KEY.txt + KEY.json per sample, sizes.json beside them), or measure decoding from a shard."};
  app.add_option("--csv", p.csv, "CSV/TSV with a header row: image paths and captions")->check(CLI::ExistingFile);
  app.add_option("--csv-img-key", p.csv_img_key, "CSV column of the image paths")->capture_default_str();
  app.add_option("--csv-caption-key", p.csv_caption_key, "CSV column of the captions")->capture_default_str();
  app.add_option("--csv-separator", p.csv_separator, "CSV separator (a tab by default)");
  app.add_option("--images", p.images, "labeled folder: one subfolder per class")->check(CLI::ExistingDirectory);
  app.add_option("--templates", p.templates, "labeled folder: caption templates (set name or file)")->capture_default_str();
  app.add_option("--class-names", p.class_names, "labeled folder: display names of the subfolders");
  app.add_option("--output", p.write.output, "shard pattern, e.g. 'shards/{00000..}.tar'");
  app.add_option("--samples-per-shard", p.write.samples_per_shard, "samples per shard")
      ->capture_default_str()
      ->check(clip::tools::positive_int());
  app.add_option("--resize", p.write.resize, "shorter side to N when larger, re-encoded as JPEG (0: keep)")
      ->capture_default_str()
      ->check(clip::tools::non_negative_int());
  app.add_option("--quality", p.write.jpeg_quality, "JPEG quality of resized images")->capture_default_str()->check(clip::tools::int_range(1, 100));
  app.add_option("--threads", p.write.threads, "image threads (0: one per core)")->capture_default_str()
      ->check(clip::tools::non_negative_int());
  app.add_option("--seed", p.write.seed, "labeled folder: seed of the template drawn per image")->capture_default_str();
  app.add_flag("--overwrite", p.write.overwrite, "replace existing shards");
  app.add_option("--bench", p.bench, "instead: decode + augment every sample of this shard on one core, report images/s")
      ->check(CLI::ExistingFile);
  app.add_option("--size", p.size, "--bench: output size")->capture_default_str()->check(clip::tools::positive_int());
  app.add_option("--augment", p.augment, "--bench: RandomResizedCrop (else resize + centre crop)")->capture_default_str();
  app.add_flag("--jpeg-dct-scaling", p.jpeg_dct_scaling, "--bench: decode large JPEGs at 1/2-1/8 size (not exact)");
  app.add_option("--seconds", p.seconds, "--bench: run at least this long (0: one pass)")->capture_default_str()
      ->check(clip::tools::non_negative_number());
  if (const auto done = clip::tools::parse_flags(app, argc, argv, "clip_shards")) return *done;
  return clip::tools::run_tool("clip_shards", [&] { return p.bench.empty() ? pack(p) : bench(p); });
}
