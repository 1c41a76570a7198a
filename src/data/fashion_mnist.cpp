#include "clip/data/fashion_mnist.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>

#include "clip/image/transform.h"
#include "clip/util/error.h"
#include "clip/util/progress.h"
#include "image/encode.h"
#include "util/atomic_file.h"

namespace fs = std::filesystem;

namespace clip {
namespace {

// Several wordings per class, so that training captions do not repeat one phrase.
const std::vector<std::vector<std::string>>& synonyms() {
  static const std::vector<std::vector<std::string>> s = {
      {"t-shirt", "tee", "t-shirt or top", "short-sleeved top"},
      {"trouser", "pair of trousers", "pair of pants", "pair of slacks"},
      {"pullover", "sweater", "jumper", "knitted pullover"},
      {"dress", "summer dress", "gown", "frock"},
      {"coat", "jacket", "winter coat", "overcoat"},
      {"sandal", "pair of sandals", "summer sandal", "open sandal"},
      {"shirt", "button-up shirt", "collared shirt", "long-sleeved shirt"},
      {"sneaker", "running shoe", "trainer", "athletic shoe"},
      {"bag", "handbag", "purse", "tote bag"},
      {"ankle boot", "boot", "short boot", "leather ankle boot"},
  };
  return s;
}

const std::vector<std::string>& caption_templates() {
  static const std::vector<std::string> t = {
      "a photo of a {}.",       "a picture of a {}.",         "a black and white photo of a {}.",
      "an image of a {}.",      "a {} on a plain background.", "product photo of a {}.",
      "a small photo of a {}.", "this is a {}.",              "a grayscale picture showing a {}.",
      "a low resolution photo of a {}.",
  };
  return t;
}

struct Idx {
  std::vector<uint8_t> data;
  std::vector<int64_t> dims;
};

Idx read_idx(const std::string& path, uint8_t expected_rank) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> gz(gzopen(path.c_str(), "rb"), gzclose);
  if (!gz) fail(path, ": cannot open (install Debian's dataset-fashion-mnist, or pass the folder of the idx files)");
  auto read = [&](void* out, size_t n) {
    if (gzread(gz.get(), out, static_cast<unsigned>(n)) != static_cast<int>(n)) fail(path, ": truncated idx file");
  };
  uint8_t magic[4];
  read(magic, 4);
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] != expected_rank) {
    fail(path, ": not an idx file of unsigned bytes with ", int(expected_rank), " dimensions");
  }
  Idx idx;
  int64_t count = 1;
  for (int i = 0; i < expected_rank; ++i) {
    uint8_t b[4];
    read(b, 4);
    idx.dims.push_back(int64_t(b[0]) << 24 | int64_t(b[1]) << 16 | int64_t(b[2]) << 8 | int64_t(b[3]));
    count *= idx.dims.back();
  }
  if (count <= 0 || count > (int64_t(1) << 31)) fail(path, ": implausible dimensions");
  idx.data.resize(static_cast<size_t>(count));
  read(idx.data.data(), idx.data.size());
  return idx;
}

void write_png(const std::string& path, const uint8_t* gray, int64_t width, int64_t height) {
  const std::string bytes = detail::encode_png(gray, width, height, 1, path);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) fail(path, ": cannot write");
}

// Writes one split; returns its sample count. Captions are appended to `csv` when given.
int64_t write_split(const std::string& images_file, const std::string& labels_file, const fs::path& dir,
                    const std::string& split, std::string* csv, uint64_t seed) {
  const Idx images = read_idx(images_file, 3), labels = read_idx(labels_file, 1);
  const int64_t n = images.dims[0], h = images.dims[1], w = images.dims[2];
  if (labels.dims[0] != n) fail(labels_file, ": ", labels.dims[0], " labels for ", n, " images in ", images_file);
  const auto& classes = fashion_mnist_classes();
  for (const auto& c : classes) fs::create_directories(dir / c);
  Progress progress("prepare " + split, n, "img");
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t label = labels.data[size_t(i)];
    if (label >= classes.size()) fail(labels_file, ": label ", int(label), " of sample ", i, " is not in 0..9");
    char name[32];
    std::snprintf(name, sizeof name, "%05lld.png", static_cast<long long>(i));
    const fs::path relative = fs::path(split) / classes[label] / name;
    write_png((dir / classes[label] / name).string(), images.data.data() + i * h * w, w, h);
    if (csv) {
      const uint64_t r = item_seed(seed, uint64_t(i));
      const auto& words = synonyms()[label];
      const auto& templ = caption_templates()[r % caption_templates().size()];
      const std::string word = words[(r >> 16) % words.size()];
      std::string caption = templ;
      caption.replace(caption.find("{}"), 2, word);
      *csv += relative.string() + "\t" + caption + "\n";
    }
    if (i % 1000 == 999 || i == n - 1) progress.advance(i % 1000 + 1);
  }
  progress.finish();
  return n;
}

}  // namespace

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> classes = {"t-shirt", "trouser", "pullover", "dress",   "coat",
                                                   "sandal",  "shirt",   "sneaker",  "bag",     "ankle boot"};
  return classes;
}

FashionMnistSplit read_fashion_mnist(const std::string& source, bool train) {
  const fs::path src = source;
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_file = (src / (prefix + "-images-idx3-ubyte.gz")).string();
  const std::string labels_file = (src / (prefix + "-labels-idx1-ubyte.gz")).string();
  const Idx images = read_idx(images_file, 3), labels = read_idx(labels_file, 1);
  const int64_t n = images.dims[0];
  if (labels.dims[0] != n) fail(labels_file, ": ", labels.dims[0], " labels for ", n, " images in ", images_file);
  FashionMnistSplit split;
  split.images = at::empty({n, images.dims[1], images.dims[2]}, at::kByte);
  std::memcpy(split.images.data_ptr<uint8_t>(), images.data.data(), images.data.size());
  split.labels = at::empty({n}, at::kLong);
  auto* label = split.labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    label[i] = labels.data[size_t(i)];
    if (label[i] >= int64_t(fashion_mnist_classes().size())) {
      fail(labels_file, ": label ", label[i], " of sample ", i, " is not in 0..9");
    }
  }
  return split;
}

FashionMnistFiles prepare_fashion_mnist(const FashionMnistOptions& o) {
  if (o.output.empty()) fail("prepare_fashion_mnist: no output folder");
  const fs::path out = o.output;
  FashionMnistFiles f;
  f.train_dir = (out / "train").string();
  f.test_dir = (out / "test").string();
  f.train_csv = (out / "train.csv").string();
  const fs::path done = out / ".complete";
  if (fs::exists(done)) {
    std::ifstream in(done);
    in >> f.train_images >> f.test_images;
    if (f.train_images > 0 && f.test_images > 0 && fs::exists(f.train_csv)) {
      f.reused = true;
      return f;
    }
  }
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) fail(out.string(), ": cannot create (", ec.message(), ")");
  const fs::path src = o.source;
  std::string csv = "filepath\ttitle\n";
  f.train_images = write_split((src / "train-images-idx3-ubyte.gz").string(), (src / "train-labels-idx1-ubyte.gz").string(),
                               out / "train", "train", &csv, o.seed);
  f.test_images = write_split((src / "t10k-images-idx3-ubyte.gz").string(), (src / "t10k-labels-idx1-ubyte.gz").string(),
                              out / "test", "test", nullptr, o.seed);
  AtomicFile file(f.train_csv);
  file.write(csv.data(), csv.size());
  file.commit();
  std::ofstream(done) << f.train_images << " " << f.test_images << "\n";
  return f;
}

}  // namespace clip
