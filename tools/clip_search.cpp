// clip_search: search an index made by clip_index by text, by image or both, or list its near-duplicate images.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "clip/embed.h"
#include "clip/index/image_index.h"
#include "clip/index/results.h"
#include "clip/model/model_tokenizer.h"
#include "clip/text/prompts.h"
#include "clip/util/error.h"
#include "clip/util/threads.h"
#include "cli.h"
#include "index_model.h"
#include "model_flags.h"
#include "tool_main.h"

namespace {

struct Params {
  std::string index, checkpoint, text, image, queries, templates, output, html;
  clip::tools::ModelFlags model;
  double text_weight = 0.5;
  int64_t topk = 10, depth = 0, neighbours = 32;
  bool duplicates = false;
  double threshold = 0.95;
  std::string device = "auto";
  int threads = 0;
};

int search(const Params& p) {
  const clip::ImageIndex index = clip::ImageIndex::load(p.index);
  clip::CLIP model = clip::tools::load_index_model(p.index, index.info(), p.checkpoint, p.model, p.device);
  index.check_model(*model);
  std::vector<std::string> templates;
  if (!p.templates.empty()) templates = clip::load_prompt_set(p.templates).templates;

  std::vector<clip::QueryResults> queries;
  at::Tensor q;
  if (!p.queries.empty()) {
    const auto tokenizer = clip::load_tokenizer(model->config().text);
    const std::vector<std::string> texts = clip::read_texts(p.queries);
    q = index.text_queries(*model, *tokenizer, texts, templates);
    for (const std::string& t : texts) queries.push_back({t, "", {}});
  } else {
    at::Tensor t, i;
    if (!p.text.empty()) {
      const auto tokenizer = clip::load_tokenizer(model->config().text);
      t = index.text_queries(*model, *tokenizer, {p.text}, templates);
    }
    if (!p.image.empty()) i = index.image_queries(*model, {p.image});
    if (t.defined() && i.defined()) {
      q = p.text_weight * t + (1 - p.text_weight) * i;  // normalized by the search
    } else {
      q = t.defined() ? t : i;
    }
    queries.push_back({p.text, p.image, {}});
  }
  auto hits = index.search(q, p.topk, p.depth);
  for (size_t j = 0; j < queries.size(); ++j) queries[j].hits = std::move(hits[j]);

  if (!p.output.empty()) {
    clip::write_search_results(p.output, queries);
  } else {
    for (const clip::QueryResults& qu : queries) {
      std::printf("%s\n", clip::describe_query(qu).c_str());
      for (size_t r = 0; r < qu.hits.size(); ++r) {
        std::printf("%4zu  %.4f  %s\n", r + 1, double(qu.hits[r].score), qu.hits[r].path.c_str());
      }
    }
  }
  if (!p.html.empty()) {
    clip::write_results_html(p.html, "clip_search: " + p.index, clip::sections_of(queries));
    std::fprintf(stderr, "clip_search: results page %s\n", p.html.c_str());
  }
  return 0;
}

int duplicates(const Params& p) {
  const clip::ImageIndex index = clip::ImageIndex::load(p.index);
  const std::vector<clip::DuplicateGroup> groups = index.duplicates(float(p.threshold), p.neighbours);
  size_t images = 0;
  for (const auto& g : groups) images += g.members.size();
  std::fprintf(stderr, "clip_search: %zu groups of near-duplicates (similarity >= %.3f), %zu images of %lld\n",
               groups.size(), p.threshold, images, (long long)index.size());
  if (!p.output.empty()) {
    clip::write_duplicate_groups(p.output, float(p.threshold), groups);
  } else {
    for (size_t g = 0; g < groups.size(); ++g) {
      std::printf("group %zu (%zu images)\n", g + 1, groups[g].members.size());
      for (const clip::IndexHit& m : groups[g].members) std::printf("  %.4f  %s\n", double(m.score), m.path.c_str());
    }
  }
  if (!p.html.empty()) {
    clip::write_results_html(p.html, "clip_search --duplicates: " + p.index, clip::sections_of(groups));
    std::fprintf(stderr, "clip_search: results page %s\n", p.html.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Params p;
  CLI::App app{"clip_search: search an image index made by clip_index, by text, by image or both; or list its\n"
               "near-duplicate images. Results go to stdout, or to --output (.json or .csv) and --html."};
  app.add_option("--index", p.index, "the index folder (clip_index build)")->required()->check(CLI::ExistingDirectory);
  auto* text = app.add_option("--text", p.text, "a text query");
  auto* image = app.add_option("--image", p.image, "an image query (a file)")->check(CLI::ExistingFile);
  auto* queries = app.add_option("--queries", p.queries, "many text queries: a file, one a line (or JSONL \"text\")")
                      ->check(CLI::ExistingFile)
                      ->excludes(text)
                      ->excludes(image);
  auto* dups = app.add_flag("--duplicates", p.duplicates, "list groups of near-duplicate images instead of searching")
                   ->excludes(text)
                   ->excludes(image)
                   ->excludes(queries);
  app.add_option("--threshold", p.threshold, "--duplicates: the least cosine similarity of near-duplicates")
      ->capture_default_str()
      ->check(clip::tools::number_range(-1, 1))
      ->needs(dups);
  app.add_option("--neighbours", p.neighbours, "--duplicates: each image is compared with its N nearest")
      ->capture_default_str()
      ->check(clip::tools::positive_int())
      ->needs(dups);
  app.add_option("--text-weight", p.text_weight, "with --text and --image: the text's share of the query")
      ->capture_default_str()
      ->check(clip::tools::number_range(0, 1));
  app.add_option("--templates", p.templates,
                 "embed text queries through a prompt template set (e.g. openai_imagenet) and average");
  app.add_option("--topk", p.topk, "results per query")->capture_default_str()->check(clip::tools::positive_int());
  app.add_option("--depth", p.depth, "IVF nprobe / HNSW efSearch (0: the index's default, tuned at build)")
      ->capture_default_str()
      ->check(clip::tools::non_negative_int());
  app.add_option("--output", p.output, "write the results: .json, or .csv by extension");
  app.add_option("--html", p.html, "write a self-contained page with thumbnails and scores");
  app.add_option("--checkpoint,--pretrained", p.checkpoint, "the model (default: the one the index was made with)")
      ->check(clip::tools::kCheckpointPath);
  p.model.add_to(app, /*with_verify=*/false);
  p.model.add_precision(app);
  app.add_option("--device", p.device, "auto (CUDA when visible, else the CPU), cpu, cuda or cuda:N")
      ->capture_default_str();
  app.add_option("--threads", p.threads, "LibTorch CPU threads (0: one per core)")
      ->capture_default_str()
      ->check(clip::tools::non_negative_int());
  if (const auto done = clip::tools::parse_flags(app, argc, argv, "clip_search")) return *done;
  if (!p.duplicates && p.text.empty() && p.image.empty() && p.queries.empty()) {
    std::cerr << "clip_search: error: nothing to search for: give --text, --image, --queries or --duplicates "
                 "(clip_search --help lists every flag)\n";
    return 2;
  }
  return clip::tools::run_tool("clip_search", [&] {
    clip::set_cpu_threads(p.threads);
    return p.duplicates ? duplicates(p) : search(p);
  });
}
