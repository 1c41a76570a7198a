#pragma once
/// Fashion-MNIST (Debian's dataset-fashion-mnist: 70,000 28x28 grayscale photos of clothing, 10 classes) as
/// image folders and a captions CSV, for the end-to-end demo.
///
///   clip::FashionMnistFiles f = clip::prepare_fashion_mnist({.output = "data/fashion_mnist"});
///   // f.train_csv: filepath<TAB>title, captions that vary the wording of the class names
///   // f.test_dir: test/<class name>/<n>.png, a labeled folder for clip_zeroshot
///   clip::FashionMnistSplit test = clip::read_fashion_mnist(clip::FashionMnistOptions().source, /*train=*/false);
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace clip {

/// Options of prepare_fashion_mnist.
struct FashionMnistOptions {
  std::string source = "/usr/share/datasets/fashion-mnist";  ///< the four idx .gz files
  std::string output;                                         ///< folder to write into
  uint64_t seed = 0;                                          ///< of the caption wording
};

/// What prepare_fashion_mnist wrote.
struct FashionMnistFiles {
  std::string train_dir, test_dir, train_csv;
  int64_t train_images = 0, test_images = 0;
  bool reused = false;  ///< an earlier complete run was found and kept
};

/// The ten class names, in label order ("t-shirt", "trouser", ..., "ankle boot"); also the folder names.
const std::vector<std::string>& fashion_mnist_classes();

/// One split in memory.
struct FashionMnistSplit {
  at::Tensor images;  ///< [N, 28, 28] uint8, white clothing on black, as stored
  at::Tensor labels;  ///< [N] int64 in 0..9, indices into fashion_mnist_classes()
};

/// Reads the training (60,000) or test (10,000) split from the idx files in `source`. Errors name the missing or
/// malformed file.
FashionMnistSplit read_fashion_mnist(const std::string& source, bool train);

/// Writes train/ and test/ labeled folders of PNGs and train.csv. Idempotent: a complete earlier output is
/// reused. Errors name the missing or malformed idx file.
FashionMnistFiles prepare_fashion_mnist(const FashionMnistOptions& options);

}  // namespace clip
