// clip_index: embed a folder of images into a search index (build), keep it up to date (update), describe it (info).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "clip/index/image_index.h"
#include "clip/model/checkpoint.h"
#include "clip/util/blas.h"
#include "clip/util/error.h"
#include "clip/util/threads.h"
#include "cli.h"
#include "index_model.h"
#include "model_flags.h"
#include "tool_main.h"

namespace {

struct Params {
  std::string checkpoint, images, index;
  clip::tools::ModelFlags model;
  clip::IndexOptions options;
  int64_t ivf = -1, hnsw = -1;
  bool flat = false, quiet = false;
  std::string device = "auto";
  int threads = 0;
};

void print_report(const clip::IndexBuildReport& r, const clip::ImageIndex& index, const std::string& dir) {
  std::printf("images: %lld found; %lld embedded, %lld kept (%lld from an interrupted run), %lld removed, %lld "
              "skipped (unreadable)\n",
              (long long)r.files, (long long)r.embedded, (long long)r.reused, (long long)r.resumed,
              (long long)r.removed, (long long)r.skipped.size());
  if (r.embedded > 0) {
    const double busy = r.model_seconds + r.wait_seconds;
    std::printf("speed: %.1f images/s embedding; model %.1f s, waiting for decoding %.1f s (%.0f%% of the embedding "
                "time); %.1f s in all\n",
                double(r.embedded) / std::max(busy, 1e-9), r.model_seconds, r.wait_seconds,
                100 * r.wait_seconds / std::max(busy, 1e-9), r.seconds);
    if (r.cpu) std::printf("cpu: %s\n", clip::describe(*r.cpu).c_str());
  } else {
    std::printf("time: %.1f s (no image needed the model)\n", r.seconds);
  }
  const clip::IndexInfo& info = index.info();
  if (r.recall) {
    const clip::IndexRecall& rc = *r.recall;
    const char* depth = info.kind == "ivf" ? "nprobe" : "efSearch";
    std::printf("recall@%lld against exact search (%lld held-out images, %lld text queries):\n", (long long)rc.k,
                (long long)rc.image_queries, (long long)rc.text_queries);
    std::printf("  %8s  %6s  %6s\n", depth, "images", "texts");
    for (const auto& p : rc.points) {
      std::printf("  %8lld  %6.3f  %6.3f%s\n", (long long)p.depth, p.image_recall, p.text_recall,
                  p.depth == rc.chosen_depth ? "  <- default" : "");
    }
    std::printf("  (clip_search --depth N overrides the default)\n");
  }
  std::printf("index: %s (%s", dir.c_str(), info.kind.c_str());
  if (info.kind == "ivf") std::printf(", %lld lists", (long long)info.ivf_lists);
  if (info.kind == "hnsw") std::printf(", M %lld", (long long)info.hnsw_m);
  std::printf(", %lld rows of %lld-d, generation %lld)\n", (long long)index.size(), (long long)info.dim,
              (long long)info.generation);
  if (!r.skipped.empty()) {
    std::printf("skipped files: %lld, listed in %s/skipped.%lld.tsv\n", (long long)r.skipped.size(), dir.c_str(),
                (long long)info.generation);
  }
}

clip::IndexOptions options_of(Params& p) {
  clip::IndexOptions o = p.options;
  if (p.ivf >= 0) {
    o.kind = "ivf";
    o.ivf_lists = p.ivf;
  } else if (p.hnsw >= 0) {
    o.kind = "hnsw";
    o.hnsw_m = p.hnsw;
  } else if (p.flat) {
    o.kind = "flat";
  }
  o.progress = !p.quiet;
  return o;
}

int build(Params p) {
  clip::warn_if_reference_blas();
  clip::set_cpu_threads(p.threads);
  clip::CLIP model = clip::load_model(p.checkpoint, p.model.options().device(clip::tools::resolve_device(p.device, p.model.precision)));
  clip::IndexOptions o = options_of(p);
  o.model_checkpoint = clip::tools::recorded_checkpoint(p.checkpoint);
  o.model_config = p.model.config.empty() ? p.model.model : std::filesystem::absolute(p.model.config).string();
  clip::IndexBuildReport report;
  const clip::ImageIndex index = clip::ImageIndex::build(*model, p.images, p.index, o, &report);
  print_report(report, index, p.index);
  return 0;
}

int update(Params p) {
  clip::warn_if_reference_blas();
  clip::set_cpu_threads(p.threads);
  const clip::IndexInfo info = clip::ImageIndex::read_info(p.index);
  clip::IndexOptions o = options_of(p);
  if (p.checkpoint.empty()) {
    std::cerr << "clip_index: the index's model: " << info.model_checkpoint << "\n";
  } else {
    o.model_checkpoint = clip::tools::recorded_checkpoint(p.checkpoint);
  }
  clip::CLIP model = clip::tools::load_index_model(p.index, info, p.checkpoint, p.model, p.device);
  clip::IndexBuildReport report;
  const clip::ImageIndex index = clip::ImageIndex::update(*model, p.index, o, p.images, &report);
  print_report(report, index, p.index);
  return 0;
}

int info(const Params& p) {
  const clip::ImageIndex index = clip::ImageIndex::load(p.index);
  const clip::IndexInfo& i = index.info();
  std::printf("index: %s, generation %lld\nimages: %s\nrows: %lld of %lld-d; %lld files skipped as unreadable\n",
              p.index.c_str(), (long long)i.generation, i.images_root.c_str(), (long long)index.size(),
              (long long)i.dim, (long long)index.skipped().size());
  std::printf("kind: %s", i.kind.c_str());
  if (i.kind == "ivf") std::printf(", %lld lists, default nprobe %lld", (long long)i.ivf_lists, (long long)i.default_depth);
  if (i.kind == "hnsw") std::printf(", M %lld, default efSearch %lld", (long long)i.hnsw_m, (long long)i.default_depth);
  std::printf("\nmodel: %s from %s%s%s (weights fingerprint %s), embedded in %s\n", i.model_name.c_str(),
              i.model_checkpoint.c_str(), i.model_config.empty() ? "" : ", config ", i.model_config.c_str(),
              i.model_fingerprint.c_str(), i.model_precision.c_str());
  return 0;
}

void add_embedding_flags(CLI::App& app, Params& p) {
  p.model.add_to(app, /*with_verify=*/false);
  p.model.add_precision(app);
  app.add_option("--batch-size", p.options.batch_size, "images per forward pass")
      ->capture_default_str()
      ->check(clip::tools::positive_int());
  app.add_option("--workers", p.options.workers, "image decoding threads (0: one per core)")
      ->capture_default_str()
      ->check(clip::tools::non_negative_int());
  app.add_option("--threads", p.threads, "LibTorch CPU threads (0: one per core)")
      ->capture_default_str()
      ->check(clip::tools::non_negative_int());
  app.add_option("--device", p.device, "auto (CUDA when one is visible, else the CPU), cpu, cuda or cuda:N")
      ->capture_default_str();
  app.add_option("--checkpoint-every", p.options.checkpoint_every,
                 "save the embeddings made so far every N images; an interrupted run, run again, continues there")
      ->capture_default_str()
      ->check(clip::tools::positive_int());
  auto* ivf = app.add_option("--ivf", p.ivf, "an IVF index with N lists (0: 4 * sqrt(images)); for large folders")
                  ->check(clip::tools::non_negative_int());
  auto* hnsw = app.add_option("--hnsw", p.hnsw, "an HNSW graph index with M neighbours per node (32 is usual)")
                   ->check(clip::tools::positive_int())
                   ->excludes(ivf);
  app.add_flag("--flat", p.flat, "the exact index (the default for build)")->excludes(ivf)->excludes(hnsw);
  app.add_option("--target-recall", p.options.target_recall,
                 "IVF/HNSW: the default search depth is the smallest whose recall@10 reaches this")
      ->capture_default_str()
      ->check(clip::tools::number_range(0, 1));
  app.add_option("--recall-queries", p.options.recall_queries, "IVF/HNSW: held-out queries for the recall")
      ->capture_default_str()
      ->check(clip::tools::positive_int());
  app.add_flag("--quiet", p.quiet, "no progress bar");
}

}  // namespace

int main(int argc, char** argv) {
  Params p;
  CLI::App app{"clip_index: embed a folder of images once into a search index (faiss), and keep it up to date.\n"
               "Search it with clip_search."};
  app.require_subcommand(1);
  CLI::App* b = app.add_subcommand("build", "embed every image of a folder into a new index");
  b->add_option("--checkpoint,--pretrained", p.checkpoint, "model: OpenAI .pt, open_clip .pt, safetensors, HF/open_clip folder, or hf-hub:org/name")
      ->required()
      ->check(clip::tools::kCheckpointPath);
  b->add_option("--images", p.images, "the folder of images (searched recursively)")->required();
  b->add_option("--index", p.index, "the index folder to write")->required();
  add_embedding_flags(*b, p);

  CLI::App* u = app.add_subcommand(
      "update", "embed new and changed files, drop deleted ones, keep the rest (equals a fresh build)");
  u->add_option("--index", p.index, "the index folder")->required()->check(CLI::ExistingDirectory);
  u->add_option("--checkpoint,--pretrained", p.checkpoint, "model (default: the one the index was made with)")
      ->check(clip::tools::kCheckpointPath);
  u->add_option("--images", p.images, "the folder of images (default: the index's, as it was built)");
  add_embedding_flags(*u, p);

  CLI::App* i = app.add_subcommand("info", "describe an index");
  i->add_option("--index", p.index, "the index folder")->required()->check(CLI::ExistingDirectory);

  if (const auto done = clip::tools::parse_flags(app, argc, argv, "clip_index")) return *done;
  return clip::tools::run_tool("clip_index", [&] {
    if (b->parsed()) return build(p);
    if (u->parsed()) return update(p);
    return info(p);
  });
}
