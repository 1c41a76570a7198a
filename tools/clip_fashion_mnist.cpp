// clip_fashion_mnist: Debian's Fashion-MNIST idx files -> train/test image folders and a captions CSV.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "clip/data/fashion_mnist.h"
#include "clip/util/error.h"
#include "tool_main.h"
#include "cli.h"

int main(int argc, char** argv) {
  clip::FashionMnistOptions o;
  CLI::App app{"clip_fashion_mnist: prepare Fashion-MNIST for clip_train and clip_zeroshot.\n"
               "Writes OUTPUT/train/<class>/*.png, OUTPUT/test/<class>/*.png and OUTPUT/train.csv (filepath<TAB>title,\n"
               "captions that vary the wording of the class names). A complete earlier output is reused."};
  app.add_option("--output", o.output, "folder to write into")->required();
  app.add_option("--source", o.source, "folder of the four idx .gz files (Debian: dataset-fashion-mnist)")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the caption wording")->capture_default_str();
  if (const auto done = clip::tools::parse_flags(app, argc, argv, "clip_fashion_mnist")) return *done;
  return clip::tools::run_tool("clip_fashion_mnist", [&] {
    const clip::FashionMnistFiles f = clip::prepare_fashion_mnist(o);
    std::printf("%s %lld training images (%s, captions in %s) and %lld test images (%s)\n",
                f.reused ? "reused" : "wrote", static_cast<long long>(f.train_images), f.train_dir.c_str(),
                f.train_csv.c_str(), static_cast<long long>(f.test_images), f.test_dir.c_str());
    return 0;
  });
}
