// clip_zeroshot: classify a folder of images with class names x prompt templates; accuracy when labeled.
#include <ATen/Parallel.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "clip/data/image_folder.h"
#include "clip/model/checkpoint.h"
#include "clip/model/model_tokenizer.h"
#include "clip/text/tokenizer.h"
#include "clip/util/blas.h"
#include "clip/util/error.h"
#include "clip/util/threads.h"
#include "clip/zeroshot/evaluate.h"
#include "clip/text/prompts.h"
#include "tool_main.h"
#include "model_flags.h"
#include "cli.h"

namespace {

struct Params {
  std::string checkpoint, images;
  clip::tools::ModelFlags model;
  std::string classes, classes_file, class_names;
  std::string templates = "openai_imagenet";
  std::string device = "cpu";
  std::string save_classifier, load_classifier;
  clip::ZeroShotRunOptions run;
  int threads = 0;
};

int run(Params p) {
  clip::warn_if_reference_blas();
  clip::set_cpu_threads(p.threads);
  clip::CLIP model =
      clip::load_model(p.checkpoint, p.model.options().strict(p.run.strict).device(p.device));

  // Labeled mode unless class names are given: the sorted subfolders are the classes.
  const bool given = !p.classes.empty() || !p.classes_file.empty();
  const bool labeled = !given && clip::looks_labeled(p.images);
  clip::ImageFolder folder = labeled ? clip::scan_labeled_folder(p.images) : clip::scan_images(p.images);

  std::unique_ptr<clip::ZeroShotClassifier> classifier;
  if (!p.load_classifier.empty()) {
    classifier = std::make_unique<clip::ZeroShotClassifier>(clip::ZeroShotClassifier::load(p.load_classifier));
  } else {
    const clip::PromptSet prompts = clip::load_prompt_set(p.templates);
    std::vector<std::string> classes;
    if (!p.classes.empty()) {
      classes = clip::parse_class_list(p.classes);
    } else if (!p.classes_file.empty()) {
      classes = clip::read_class_names(p.classes_file);
    } else if (labeled) {
      classes = p.class_names.empty() ? folder.classes : clip::map_class_names(folder.classes, p.class_names);
    } else if (!prompts.classes.empty()) {
      classes = prompts.classes;
    } else {
      clip::fail(p.images, ": has no class subfolders; name the classes with --classes a,b,c or --classes-file F");
    }
    const auto tokenizer = clip::load_tokenizer(model->config().text);
    std::cerr << "clip_zeroshot: embedding " << classes.size() << " classes x " << prompts.templates.size()
              << " templates (" << prompts.source << ")\n";
    classifier = std::make_unique<clip::ZeroShotClassifier>(
        clip::ZeroShotClassifier::build(*model, *tokenizer, classes, prompts.templates));
  }
  if (!p.save_classifier.empty()) classifier->save(p.save_classifier);

  const clip::ZeroShotSummary s = clip::classify_folder(*model, *classifier, folder, p.run);
  std::printf("images: %lld classified, %lld skipped (unreadable)\n", static_cast<long long>(s.images),
              static_cast<long long>(s.skipped));
  if (s.labeled) {
    std::printf("top-1 accuracy: %.2f%%\ntop-%lld accuracy: %.2f%%\nmean per-class accuracy: %.2f%%\n", 100 * s.top1,
                static_cast<long long>(s.k), 100 * s.topk, 100 * s.mean_per_class);
  }
  std::printf("speed: %.1f images/s end to end; model %.1f s, waiting for decoding %.1f s of %.1f s\n",
              double(s.images + s.skipped) / s.seconds, s.model_seconds, s.wait_seconds, s.seconds);
  std::printf("cpu: %s\n", clip::describe(s.cpu).c_str());
  if (!p.run.output.empty()) std::printf("predictions: %s\n", p.run.output.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Params p;
  CLI::App app{"clip_zeroshot: zero-shot classification of a folder of images.\n"
               "A folder of class subfolders is labeled (accuracy is printed); otherwise it is searched recursively\n"
               "and needs class names (--classes, --classes-file, or a template set that has them)."};
  app.add_option("--checkpoint,--pretrained", p.checkpoint, "model: OpenAI .pt, open_clip .pt, safetensors, HF/open_clip folder, or hf-hub:org/name")
      ->required()
      ->check(clip::tools::kCheckpointPath);
  p.model.add_to(app, /*with_verify=*/false, /*with_strict=*/false);
  p.model.add_precision(app);
  app.add_option("--images", p.images, "folder of images (class subfolders for a labeled run)")->required();
  auto* classes = app.add_option("--classes", p.classes, "comma-separated class names (unlabeled folders)");
  app.add_option("--classes-file", p.classes_file, "class names, one a line or a JSON list (unlabeled folders)")
      ->excludes(classes)
      ->check(CLI::ExistingFile);
  app.add_option("--class-names", p.class_names,
                 "display names of a labeled folder's subfolders: folder<TAB>name lines, JSON, or one name a line in "
                 "sorted-folder order (configs/classes/imagenet.txt for an ImageNet val folder)")
      ->check(CLI::ExistingFile);
  app.add_option("--templates", p.templates, "template set name (configs/templates) or file")->capture_default_str();
  app.add_option("--topk", p.run.topk, "predictions per image")->capture_default_str()->check(clip::tools::positive_int());
  app.add_option("--batch-size", p.run.batch_size, "images per forward pass")
      ->capture_default_str()
      ->check(clip::tools::positive_int());
  app.add_option("--threads", p.threads, "LibTorch CPU threads (0: one per core)")->capture_default_str()
      ->check(clip::tools::non_negative_int());
  app.add_option("--workers", p.run.threads, "image decoding threads (0: one per core)")->capture_default_str()
      ->check(clip::tools::non_negative_int());
  app.add_option("--device", p.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--output", p.run.output, "per-image predictions: .csv or .jsonl");
  app.add_option("--confusion", p.run.confusion, "confusion matrix CSV (labeled folders)");
  auto* save = app.add_option("--save-classifier", p.save_classifier, "write the class embeddings (safetensors)");
  app.add_option("--load-classifier", p.load_classifier, "use saved class embeddings instead of embedding prompts")
      ->excludes(save)
      ->check(CLI::ExistingFile);
  app.add_flag("--strict", p.run.strict,
               "stop at the first unreadable image instead of skipping it, and refuse weights that hold NaN or infinity");
  if (const auto done = clip::tools::parse_flags(app, argc, argv, "clip_zeroshot")) return *done;
  return clip::tools::run_tool("clip_zeroshot", [&] { return run(p); });
}
