// The threaded loader: a thousand small generated images give the same tensors with one thread and with many,
// ordered or as-ready, with and without the random crop; bad files are per-item errors in their batch's report.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "clip/data/image_folder.h"
#include "clip/image/loader.h"
#include "clip/util/log.h"
#include "image/encode.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

// A folder of n small images (PNG and binary PPM, random sizes and pixels; only PNG in builds without OpenCV);
// every 97th file is text.
class ImageFolder {
 public:
  explicit ImageFolder(int n) {
    dir_ = fs::temp_directory_path() / ("clip_loader_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::mt19937 rng(2024);
    for (int i = 0; i < n; ++i) {
      const int w = 8 + static_cast<int>(rng() % 41), h = 8 + static_cast<int>(rng() % 41);
      std::string pixels(static_cast<size_t>(w * h * 3), '\0');
      for (char& c : pixels) c = static_cast<char>(rng());
      std::string name = "img" + std::to_string(i);
      std::string bytes;
      if (i % 97 == 13) {
        name += ".jpg";
        bytes = "not really a picture\n";
        bad_.push_back(i);
      } else if (i % 2 == 0 || !clip::features().opencv) {
        name += ".png";
        bytes = clip::detail::encode_png(reinterpret_cast<const uint8_t*>(pixels.data()), w, h, 3, name);
      } else {
        name += ".ppm";
        bytes = "P6\n" + std::to_string(w) + " " + std::to_string(h) + "\n255\n" + pixels;
      }
      paths_.push_back((dir_ / name).string());
      std::ofstream(paths_.back(), std::ios::binary) << bytes;
    }
  }
  ~ImageFolder() { fs::remove_all(dir_); }
  const std::vector<std::string>& paths() const { return paths_; }
  const std::vector<int64_t>& bad() const { return bad_; }

 private:
  fs::path dir_;
  std::vector<std::string> paths_;
  std::vector<int64_t> bad_;
};

const ImageFolder& folder() {
  static const ImageFolder f(1000);
  return f;
}

struct Loaded {
  at::Tensor images;                     // [items read, 3, N, N] in input order
  std::vector<int64_t> indices;
  std::map<int64_t, std::string> errors;
  int64_t batches = 0;
  double seconds = 0;
};

Loaded load_all(clip::ImageLoaderOptions options) {
  const std::vector<std::string>& paths = folder().paths();  // written on first use, before the clock starts
  const auto start = std::chrono::steady_clock::now();
  clip::ImageLoader loader(paths, options);
  std::map<int64_t, at::Tensor> rows;
  Loaded out;
  int64_t previous = -1;
  while (std::optional<clip::ImageBatch> batch = loader.next()) {
    if (options.ordered) {
      EXPECT_EQ(batch->batch_index, previous + 1);
    }
    previous = batch->batch_index;
    EXPECT_EQ(batch->images.size(0), static_cast<int64_t>(batch->indices.size()));
    for (size_t r = 0; r < batch->indices.size(); ++r) rows[batch->indices[r]] = batch->images[r];
    for (const clip::ItemError& e : batch->errors) out.errors[e.index] = e.message;
    ++out.batches;
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<at::Tensor> stacked;
  for (const auto& [index, row] : rows) {
    out.indices.push_back(index);
    stacked.push_back(row);
  }
  out.images = at::stack(stacked);
  return out;
}

clip::ImageLoaderOptions small(int threads, bool ordered) {
  clip::ImageLoaderOptions o;
  o.preprocess.size = 24;
  o.batch_size = 64;
  o.threads = threads;
  o.ordered = ordered;
  return o;
}

TEST(ImageLoader, SameTensorsWithOneThreadAndWithMany) {
  CLIP_REQUIRE_FEATURE(png);  // the generated images
  const Loaded one = load_all(small(1, true));
  const Loaded many = load_all(small(8, true));
  const Loaded as_ready = load_all(small(8, false));
  std::printf("[ measured ] 1000 images: 1 thread %.0f images/s, 8 threads %.0f images/s (ordered), %.0f (as ready)\n",
              1000 / one.seconds, 1000 / many.seconds, 1000 / as_ready.seconds);
  EXPECT_EQ(one.batches, 16);
  EXPECT_EQ(one.images.size(0), 1000 - static_cast<int64_t>(folder().bad().size()));
  EXPECT_EQ(one.indices, many.indices);
  EXPECT_EQ(one.indices, as_ready.indices);
  EXPECT_TRUE(at::equal(one.images, many.images));
  EXPECT_TRUE(at::equal(one.images, as_ready.images));
  // Each image is its own preprocess() result.
  for (int64_t i : {int64_t{0}, int64_t{1}, int64_t{999}}) {
    const auto row = std::find(one.indices.begin(), one.indices.end(), i) - one.indices.begin();
    EXPECT_TRUE(at::equal(one.images[row], clip::preprocess(clip::decode_image(folder().paths()[i]), small(1, true).preprocess)));
  }
}

TEST(ImageLoader, BadFilesArePerItemErrors) {
  CLIP_REQUIRE_FEATURE(png);  // the generated images
  const Loaded loaded = load_all(small(4, true));
  ASSERT_EQ(loaded.errors.size(), folder().bad().size());
  for (int64_t i : folder().bad()) {
    ASSERT_TRUE(loaded.errors.count(i)) << i;
    const std::string& message = loaded.errors.at(i);
    EXPECT_EQ(message.rfind(folder().paths()[i], 0), 0u) << message;
    EXPECT_NE(message.find("not an image file"), std::string::npos) << message;
    EXPECT_EQ(std::find(loaded.indices.begin(), loaded.indices.end(), i), loaded.indices.end());
  }
  std::printf("[ message  ] %s\n", loaded.errors.begin()->second.c_str());
}

TEST(ImageLoader, RandomResizedCropDependsOnSeedAndIndexOnly) {
  CLIP_REQUIRE_FEATURE(png);  // the generated images
  clip::ImageLoaderOptions o = small(1, true);
  o.random_resized_crop = clip::RandomResizedCropOptions{};
  o.seed = 7;
  const Loaded one = load_all(o);
  o.threads = 8;
  o.ordered = false;
  const Loaded many = load_all(o);
  EXPECT_TRUE(at::equal(one.images, many.images));
  o.seed = 8;
  const Loaded other = load_all(o);
  EXPECT_FALSE(at::equal(one.images, other.images));
  EXPECT_FALSE(at::equal(one.images, load_all(small(8, true)).images));  // differs from the centre crop
}

TEST(ImageLoader, Uint8BatchesNormalizeToTheFloatOnes) {
  CLIP_REQUIRE_FEATURE(png);  // the generated images
  clip::ImageLoaderOptions o = small(4, true);
  o.format = clip::BatchFormat::uint8;
  const Loaded bytes = load_all(o);
  ASSERT_EQ(bytes.images.scalar_type(), at::kByte);
  const Loaded floats = load_all(small(4, true));
  const clip::PreprocessOptions& p = o.preprocess;
  const at::Tensor mean = at::tensor({p.mean[0], p.mean[1], p.mean[2]}, at::kFloat).view({1, 3, 1, 1});
  const at::Tensor std = at::tensor({p.std[0], p.std[1], p.std[2]}, at::kFloat).view({1, 3, 1, 1});
  EXPECT_TRUE(at::equal((bytes.images.to(at::kFloat).div(255) - mean) / std, floats.images));
}

TEST(ImageLoader, StopsEarlyAndHandlesEmptyInput) {
  CLIP_REQUIRE_FEATURE(png);  // the generated images
  {
    clip::ImageLoaderOptions o = small(4, true);
    o.prefetch_batches = 1;
    clip::ImageLoader loader(folder().paths(), o);
    ASSERT_TRUE(loader.next().has_value());
  }  // destroyed with batches pending: joins without hanging
  clip::ImageLoader empty({}, small(2, true));
  EXPECT_EQ(empty.num_batches(), 0);
  EXPECT_FALSE(empty.next().has_value());
}

// Folder walks visit each real file once: a symlink loop (`self -> .`) and a second link to a folder or file add
// nothing, and the loop is reported once (it used to list 2 files 82 times).
TEST(ImageFolderWalk, EachRealFileOnceAndLoopsReported) {
  clip::test::TempDir dir;
  fs::create_directories(dir.path() / "a");
  const std::string png = clip::detail::encode_png(reinterpret_cast<const uint8_t*>("\x01\x02\x03"), 1, 1, 3, "p");
  dir.write("a/x.png", png);
  dir.write("y.png", png);
  fs::create_directory_symlink(".", dir.path() / "self");
  fs::create_directory_symlink("a", dir.path() / "b");
  fs::create_symlink("y.png", dir.path() / "z.png");
  std::vector<std::string> notes;
  clip::set_log_sink([&](clip::LogLevel, const std::string& line) { notes.push_back(line); });
  const clip::ImageFolder folder = clip::scan_images(dir.path().string());
  clip::set_log_sink(nullptr);
  for (const std::string& p : folder.paths) std::printf("[ listed   ] %s\n", p.c_str());
  EXPECT_EQ(folder.paths.size(), 2u);
  ASSERT_EQ(notes.size(), 1u);
  std::printf("[ message  ] %s\n", notes[0].c_str());
  EXPECT_CONTAINS(notes[0], "a symlink to a folder already listed, not followed again");
}

}  // namespace
