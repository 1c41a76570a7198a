// clip_eval: the CLIP paper's evaluation protocols (zero-shot classification, image-text retrieval, linear probes),
// with results in LAION CLIP_benchmark's JSON schema.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>

#include <ATen/ATen.h>

#include "clip/data/image_folder.h"
#include "clip/eval/evaluate.h"
#include "clip/eval/linear_probe.h"
#include "clip/model/checkpoint.h"
#include "clip/model/model_tokenizer.h"
#include "clip/text/prompts.h"
#include "clip/util/error.h"
#include "clip/util/threads.h"
#include "clip/zeroshot/evaluate.h"
#include "cli.h"
#include "model_flags.h"
#include "tool_main.h"

namespace {

struct Common {
  std::string checkpoint, output, dataset, language = "en", device = "cpu";
  clip::tools::ModelFlags model;
  int threads = 0, workers = 0;
  int64_t batch_size = 64;
};

struct ZeroshotParams {
  std::string images, csv, image_key = "filepath", label_key = "label", separator = ",", templates = "openai_imagenet",
              class_names;
};

struct RetrievalParams {
  std::string csv, image_key = "filepath", caption_key = "title", separator = "\t";
  std::vector<int64_t> ks = {1, 5, 10};
};

struct ProbeParams {
  std::string train, val, test;
  double val_proportion = 0.2;
  uint64_t seed = 0;
  bool no_normalize = false;
  int64_t max_iter = 1000;
};

std::string stem(const std::string& path) {
  std::filesystem::path p(path);
  if (p.filename().empty()) p = p.parent_path();
  return p.stem().string();
}

void add_common(CLI::App& app, Common& c) {
  app.add_option("--checkpoint,--pretrained", c.checkpoint, "model: OpenAI .pt, open_clip .pt, safetensors, HF/open_clip folder, or hf-hub:org/name")
      ->required()
      ->check(clip::tools::kCheckpointPath);
  c.model.add_to(app, /*with_verify=*/false);
  c.model.add_precision(app);
  app.add_option("--output", c.output, "the result as CLIP_benchmark's JSON (also printed on stdout)");
  app.add_option("--dataset", c.dataset, "the result's dataset name (default: the folder's or file's name)");
  app.add_option("--language", c.language, "the result's language field")->capture_default_str();
  app.add_option("--device", c.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--batch-size", c.batch_size, "images per forward pass")
      ->capture_default_str()
      ->check(clip::tools::positive_int());
  app.add_option("--threads", c.threads, "LibTorch CPU threads (0: one per core)")
      ->capture_default_str()
      ->check(clip::tools::non_negative_int());
  app.add_option("--workers", c.workers, "image decoding threads (0: one per core)")
      ->capture_default_str()
      ->check(clip::tools::non_negative_int());
}

int finish(const Common& c, const clip::CLIP& model, const std::string& dataset, const std::string& task,
           std::vector<std::pair<std::string, double>> metrics) {
  clip::BenchmarkResult result;
  result.dataset = c.dataset.empty() ? dataset : c.dataset;
  result.model = model->config().name.empty() ? stem(c.checkpoint) : model->config().name;
  result.pretrained = c.checkpoint;
  result.task = task;
  result.metrics = std::move(metrics);
  result.language = c.language;
  for (const auto& [name, value] : result.metrics) std::fprintf(stderr, "clip_eval: %-28s %.4f\n", name.c_str(), value);
  std::printf("%s\n", clip::to_json(result).c_str());
  if (!c.output.empty()) {
    clip::write_benchmark_result(c.output, result);
    std::fprintf(stderr, "clip_eval: wrote %s\n", c.output.c_str());
  }
  return 0;
}

void report_skipped(const std::vector<clip::ItemError>& skipped) {
  for (const auto& e : skipped) std::fprintf(stderr, "clip_eval: skipped %s\n", e.message.c_str());
}

clip::CLIP load(const Common& c) {
  clip::set_cpu_threads(c.threads);
  return clip::load_model(c.checkpoint, c.model.options().device(c.device));
}

int zeroshot(const Common& c, const ZeroshotParams& p) {
  clip::CLIP model = load(c);
  clip::ImageFolder data = p.csv.empty() ? clip::scan_labeled_folder(p.images)
                                         : clip::read_labeled_csv(p.csv, p.image_key, p.label_key, p.separator);
  if (data.classes.empty()) clip::fail(p.csv.empty() ? p.images : p.csv, ": has no classes");
  const std::vector<std::string> classes =
      p.class_names.empty() ? data.classes : clip::map_class_names(data.classes, p.class_names);
  const clip::PromptSet prompts = clip::load_prompt_set(p.templates);
  const auto tokenizer = clip::load_tokenizer(model->config().text);
  std::fprintf(stderr, "clip_eval: %zu classes x %zu templates (%s)\n", classes.size(), prompts.templates.size(),
               prompts.source.c_str());
  const clip::ZeroShotClassifier classifier =
      clip::ZeroShotClassifier::build(*model, *tokenizer, classes, prompts.templates);
  clip::ZeroShotRunOptions run;
  run.batch_size = c.batch_size;
  run.threads = c.workers;
  const clip::ZeroShotSummary s = clip::classify_folder(*model, classifier, data, run);
  return finish(c, model, stem(p.csv.empty() ? p.images : p.csv), "zeroshot_classification",
                clip::classification_result_metrics(s.metrics));
}

int retrieval(const Common& c, const RetrievalParams& p) {
  clip::CLIP model = load(c);
  const clip::RetrievalSet set = clip::read_retrieval_csv(p.csv, p.image_key, p.caption_key, p.separator);
  std::fprintf(stderr, "clip_eval: %zu images, %zu captions, %zu matches\n", set.images.size(), set.texts.size(),
               set.matches.size());
  const auto tokenizer = clip::load_tokenizer(model->config().text);
  std::vector<clip::ItemError> skipped;
  const clip::CaptionRetrievalMetrics m =
      clip::evaluate_retrieval_set(*model, *tokenizer, set, p.ks, c.batch_size, c.workers, &skipped);
  report_skipped(skipped);
  return finish(c, model, stem(p.csv), "zeroshot_retrieval", clip::retrieval_result_metrics(m));
}

// The test folder's labels re-indexed to the training folder's classes (by name).
clip::ImageFolder aligned(clip::ImageFolder folder, const std::vector<std::string>& classes, const std::string& what) {
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < classes.size(); ++i) index[classes[i]] = static_cast<int64_t>(i);
  for (auto& label : folder.labels) {
    const std::string& name = folder.classes[size_t(label)];
    const auto it = index.find(name);
    if (it == index.end()) clip::fail(what, ": class folder '", name, "' is not one of the training folder's classes");
    label = it->second;
  }
  folder.classes = classes;
  return folder;
}

int linear_probe(const Common& c, const ProbeParams& p) {
  clip::CLIP model = load(c);
  const clip::ImageFolder train = clip::scan_labeled_folder(p.train);
  const auto classes = static_cast<int64_t>(train.classes.size());
  if (classes < 2) clip::fail(p.train, ": a linear probe needs at least 2 class folders");
  const bool normalize = !p.no_normalize;
  // The folders' classes first: a mismatch is refused before any image is embedded.
  const clip::ImageFolder test = aligned(clip::scan_labeled_folder(p.test), train.classes, p.test);
  const clip::ImageFolder validation =
      p.val.empty() ? clip::ImageFolder{} : aligned(clip::scan_labeled_folder(p.val), train.classes, p.val);
  std::fprintf(stderr, "clip_eval: image features of %s (%zu images)\n", p.train.c_str(), train.paths.size());
  clip::LabeledFeatures tr = clip::labeled_image_features(*model, train, normalize, c.batch_size, c.workers);
  report_skipped(tr.skipped);
  clip::LabeledFeatures va;
  if (!p.val.empty()) {
    va = clip::labeled_image_features(*model, validation, normalize, c.batch_size, c.workers);
    report_skipped(va.skipped);
  } else {
    // A seeded shuffle holds out val_proportion of the training images.
    const int64_t n = tr.features.size(0);
    const auto held = static_cast<int64_t>(std::llround(p.val_proportion * static_cast<double>(n)));
    if (held < 1 || held >= n) {
      clip::fail("--val-proportion ", p.val_proportion, " of ", n, " training images leaves no validation or no "
                 "training images");
    }
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937_64(p.seed));
    const at::Tensor perm = at::tensor(order, at::kLong);
    const at::Tensor v = perm.narrow(0, 0, held), t = perm.narrow(0, held, n - held);
    va.features = tr.features.index_select(0, v);
    va.labels = tr.labels.index_select(0, v);
    tr.features = tr.features.index_select(0, t);
    tr.labels = tr.labels.index_select(0, t);
  }
  const at::Tensor counts = at::bincount(tr.labels, {}, classes);
  for (int64_t k = 0; k < classes; ++k) {
    if (counts[k].item<int64_t>() == 0) {
      clip::fail(p.train, ": class '", train.classes[size_t(k)], "' has no training image",
                 p.val.empty() ? " after the validation hold-out (--val-proportion)" : "",
                 "; a linear probe needs every class in training");
    }
  }
  clip::LabeledFeatures te = clip::labeled_image_features(*model, test, normalize, c.batch_size, c.workers);
  report_skipped(te.skipped);
  std::fprintf(stderr, "clip_eval: %lld training, %lld validation, %lld test images; searching lambda\n",
               static_cast<long long>(tr.features.size(0)), static_cast<long long>(va.features.size(0)),
               static_cast<long long>(te.features.size(0)));
  const auto start = std::chrono::steady_clock::now();
  const auto progress = [&](const clip::LinearProbePoint& point) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "clip_eval:   lambda %-10.4g validation acc1 %.4f (%lld iterations; %.0f s so far)\n",
                 point.lambda, point.validation_acc1, static_cast<long long>(point.iterations), seconds);
  };
  const clip::LinearProbeResult r = clip::linear_probe(
      tr.features, tr.labels, va.features, va.labels, te.features, te.labels, classes,
      clip::LinearProbeOptions().max_iter(p.max_iter).on_point(progress));
  std::fprintf(stderr, "clip_eval: chosen lambda %.4g (C = %.4g)%s\n", r.lambda, r.c,
               r.model.converged ? "" : "; the final fit stopped at --max-iter before converging");
  auto metrics = clip::classification_result_metrics(r.test, "lp_");
  metrics.emplace_back("lambda", r.lambda);
  metrics.emplace_back("C", r.c);
  metrics.emplace_back("val_acc1", r.validation.acc1);
  metrics.emplace_back("normalized", normalize ? 1 : 0);
  return finish(c, model, stem(p.test), "linear_probe", std::move(metrics));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"clip_eval: the CLIP paper's evaluations, numbers comparable with LAION's CLIP_benchmark (its JSON result\n"
               "schema and metric definitions): zero-shot classification, image-text retrieval, linear probes."};
  app.require_subcommand(1);
  Common c;
  ZeroshotParams zp;
  RetrievalParams rp;
  ProbeParams pp;

  CLI::App* zs = app.add_subcommand("zeroshot", "zero-shot classification: top-1, top-5, mean per-class recall");
  add_common(*zs, c);
  auto* images = zs->add_option("--images", zp.images, "a labeled folder: one subfolder per class")
                     ->check(CLI::ExistingDirectory);
  auto* csv = zs->add_option("--csv", zp.csv, "or a CSV of images and class names (--csv-img-key, --csv-label-key)")
                  ->check(CLI::ExistingFile)
                  ->excludes(images);
  zs->add_option("--csv-img-key", zp.image_key, "the CSV's image column")->capture_default_str();
  zs->add_option("--csv-label-key", zp.label_key, "the CSV's class-name column")->capture_default_str();
  zs->add_option("--csv-separator", zp.separator, "the CSV's separator")->capture_default_str();
  zs->add_option("--templates", zp.templates, "template set (configs/templates) or file")->capture_default_str();
  zs->add_option("--class-names", zp.class_names, "display names of the classes (as clip_zeroshot --class-names)")
      ->check(CLI::ExistingFile);

  CLI::App* rt = app.add_subcommand("retrieval", "image-text retrieval: recall@k both ways");
  add_common(*rt, c);
  rt->add_option("--csv", rp.csv, "open_clip's caption CSV (as clip_train reads it; an image may have several rows)")
      ->required()
      ->check(CLI::ExistingFile);
  rt->add_option("--csv-img-key", rp.image_key, "the CSV's image column")->capture_default_str();
  rt->add_option("--csv-caption-key", rp.caption_key, "the CSV's caption column")->capture_default_str();
  rt->add_option("--csv-separator", rp.separator, "the CSV's separator (default: a tab)");
  rt->add_option("--recall-k", rp.ks, "the k of recall@k")->capture_default_str()->check(clip::tools::positive_int());

  CLI::App* lp = app.add_subcommand("linear-probe", "logistic regression on frozen image features (the paper's)");
  add_common(*lp, c);
  lp->add_option("--train", pp.train, "labeled training folder")->required()->check(CLI::ExistingDirectory);
  lp->add_option("--test", pp.test, "labeled test folder (the training folder's class names)")
      ->required()
      ->check(CLI::ExistingDirectory);
  auto* val = lp->add_option("--val", pp.val, "labeled validation folder (default: --val-proportion of --train)")
                  ->check(CLI::ExistingDirectory);
  lp->add_option("--val-proportion", pp.val_proportion, "training images held out to choose lambda")
      ->capture_default_str()
      ->check(clip::tools::number_range(0, 1))
      ->excludes(val);
  lp->add_option("--seed", pp.seed, "the hold-out's shuffle")->capture_default_str();
  lp->add_flag("--no-normalize", pp.no_normalize, "use the features as the tower gives them (default: L2-normalized)");
  lp->add_option("--max-iter", pp.max_iter, "L-BFGS iterations per fit, at most")
      ->capture_default_str()
      ->check(clip::tools::positive_int());

  if (argc > 1 && argv[1][0] != '-' && std::string(argv[1]) != "zeroshot" && std::string(argv[1]) != "retrieval" &&
      std::string(argv[1]) != "linear-probe") {
    std::cerr << "clip_eval: error: no subcommand '" << argv[1] << "': use zeroshot, retrieval or linear-probe "
              << "(clip_eval --help)\n";
    return 2;
  }
  if (const auto done = clip::tools::parse_flags(app, argc, argv, "clip_eval")) return *done;
  if (zs->parsed() && zp.images.empty() && zp.csv.empty()) {
    std::cerr << "clip_eval: error: zeroshot needs --images DIR or --csv FILE\n";
    return 2;
  }
  (void)csv;
  return clip::tools::run_tool("clip_eval", [&] {
    if (zs->parsed()) return zeroshot(c, zp);
    if (rt->parsed()) return retrieval(c, rp);
    return linear_probe(c, pp);
  });
}
