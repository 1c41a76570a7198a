// The image index (issue 21): exact search equals brute force, update equals a fresh build, a killed build resumes
// to the same index, damage and another model are refused with one line, approximate kinds report recall, and the
// results page shows its thumbnails in a real browser.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "clip/index/image_index.h"
#include "clip/model/precision.h"
#include "clip/embed.h"
#include "clip/index/results.h"
#include "clip/model/checkpoint.h"
#include "clip/model/model_tokenizer.h"
#include "image/encode.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

// A small model with the CLIP BPE vocabulary (text queries work), random weights drawn from `seed`.
clip::CLIP make_model(uint64_t seed, int64_t embed_dim = 64) {
  clip::ModelConfig config = clip::load_model_config(clip::test::data("vit_tiny_bpe.json"));
  config.embed_dim = embed_dim;
  at::manual_seed(seed);
  clip::CLIP model(config);
  model->eval();
  return model;
}

// A PNG of random blocks, different for every seed.
std::string random_png(uint64_t seed, int64_t w = 48, int64_t h = 40) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> pixels(size_t(w * h * 3));
  const int64_t block = 8;
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      std::mt19937_64 cell(seed * 7919 + uint64_t((y / block) * 97 + x / block));
      for (int c = 0; c < 3; ++c) pixels[size_t((y * w + x) * 3 + c)] = uint8_t(cell() + rng() % 16);
    }
  }
  return clip::detail::encode_png(pixels.data(), w, h, 3, "random");
}

// `count` distinct images in `folder` (img_000.png ...), one unreadable file among them when `broken`.
void make_images(const fs::path& folder, int count, bool broken = false, uint64_t first_seed = 1) {
  fs::create_directories(folder);
  for (int i = 0; i < count; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "img_%03d.png", i);
    std::ofstream(folder / name, std::ios::binary) << random_png(first_seed + uint64_t(i));
  }
  if (broken) std::ofstream(folder / "broken.png", std::ios::binary) << "\x89PNG\r\n\x1a\n not really";
}

clip::IndexOptions quiet(clip::IndexOptions o = {}) {
  o.progress = false;
  o.report_skipped = false;
  o.batch_size = 4;
  return o;
}

std::vector<std::string> table_of(const clip::ImageIndex& index) {
  std::vector<std::string> rows;
  for (int64_t r = 0; r < index.size(); ++r) rows.push_back(index.path(r));
  return rows;
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string generation_file(const std::string& dir, const std::string& stem) {
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(stem + ".", 0) == 0) return e.path().string();
  }
  return "";
}

}  // namespace

TEST(ImageIndex, FlatSearchEqualsBruteForceOverTheStoredEmbeddings) {
  CLIP_REQUIRE_FEATURE(faiss);
  clip::test::TempDir dir;
  make_images(dir.path() / "images", 24, /*broken=*/true);
  clip::CLIP model = make_model(1);
  clip::IndexBuildReport report;
  const clip::ImageIndex index =
      clip::ImageIndex::build(*model, dir / "images", dir / "index", quiet(), &report);
  EXPECT_EQ(report.files, 25);
  EXPECT_EQ(report.embedded, 24);
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_CONTAINS(report.skipped[0].path, "broken.png");
  ASSERT_EQ(index.size(), 24);

  // The stored embeddings are the model's, unit length.
  const at::Tensor stored = index.embeddings();
  const clip::ImageEmbeddings direct = clip::embed_image_files(*model, table_of(index), {});
  const double embed_diff = (stored - direct.embeddings).abs().max().item<double>();
  std::printf("[ measured ] stored vs embed_image_files: max |diff| %.3g (tolerance 1e-6)\n", embed_diff);
  EXPECT_LE(embed_diff, 1e-6);

  // Every stored row and 40 random directions as queries: the same rows as a brute-force top-k, best first.
  at::manual_seed(7);
  const at::Tensor queries = at::cat({stored, at::randn({40, stored.size(1)})});
  const int64_t k = 7;
  const auto hits = index.search(queries, k);
  const at::Tensor scores = at::matmul(clip::l2_normalize(queries), stored.t());
  const auto [best, rows] = scores.topk(k, 1);
  double score_diff = 0;
  int64_t row_mismatches = 0;
  for (int64_t q = 0; q < queries.size(0); ++q) {
    ASSERT_EQ(int64_t(hits[size_t(q)].size()), k);
    for (int64_t j = 0; j < k; ++j) {
      row_mismatches += hits[size_t(q)][size_t(j)].row != rows[q][j].item<int64_t>();
      score_diff = std::max(score_diff, std::abs(double(hits[size_t(q)][size_t(j)].score) - best[q][j].item<double>()));
    }
    EXPECT_EQ(hits[size_t(q)][0].path, index.path(hits[size_t(q)][0].row));
  }
  std::printf("[ measured ] %lld queries x top-%lld: %lld rows differ from brute force; max score diff %.3g "
              "(tolerance 1e-5)\n",
              (long long)queries.size(0), (long long)k, (long long)row_mismatches, score_diff);
  EXPECT_EQ(row_mismatches, 0);
  EXPECT_LE(score_diff, 1e-5);

  // Loaded again, it is the same index; text and image queries go through the model.
  const clip::ImageIndex loaded = clip::ImageIndex::load(dir / "index");
  EXPECT_EQ(table_of(loaded), table_of(index));
  EXPECT_TRUE(at::equal(loaded.embeddings(), stored));
  ASSERT_EQ(loaded.skipped().size(), 1u);
  const auto image_hits = loaded.search_image(*model, {loaded.path(5)}, 3);
  EXPECT_EQ(image_hits[0][0].row, 5);
  EXPECT_NEAR(image_hits[0][0].score, 1.0, 1e-5);
  const auto tokenizer = clip::load_tokenizer(model->config().text);
  const auto text_hits = loaded.search_text(*model, *tokenizer, {"a photo of noise"}, 5, {"{}", "a picture of {}"});
  EXPECT_EQ(text_hits[0].size(), 5u);
}

TEST(ImageIndex, UpdateAfterAddModifyTouchRenameDeleteEqualsAFreshBuild) {
  CLIP_REQUIRE_FEATURE(faiss);
  clip::test::TempDir dir;
  const fs::path images = dir.path() / "images";
  make_images(images, 24);
  clip::CLIP model = make_model(2);
  clip::ImageIndex::build(*model, images.string(), dir / "index", quiet());

  std::ofstream(images / "new.png", std::ios::binary) << random_png(1000);                  // added
  fs::remove(images / "img_003.png");                                                       // deleted
  std::ofstream(images / "img_005.png", std::ios::binary) << random_png(2000, 40, 48);      // changed
  fs::last_write_time(images / "img_007.png", fs::file_time_type::clock::now() + std::chrono::hours(1));  // touched
  fs::create_directories(images / "sub");
  fs::rename(images / "img_009.png", images / "sub" / "renamed.png");                       // renamed

  clip::IndexBuildReport report;
  const clip::ImageIndex updated = clip::ImageIndex::update(*model, dir / "index", quiet(), "", &report);
  std::printf("[ measured ] update: %lld embedded, %lld kept, %lld removed\n", (long long)report.embedded,
              (long long)report.reused, (long long)report.removed);
  EXPECT_EQ(report.files, 24);
  EXPECT_EQ(report.embedded, 2);   // new.png and the changed img_005.png; the touched and the renamed file are kept
  EXPECT_EQ(report.reused, 22);
  EXPECT_EQ(report.removed, 2);    // img_003.png, and img_009.png under its old name
  EXPECT_EQ(updated.info().generation, 2);
  EXPECT_FALSE(fs::exists(dir / "index/vectors.1.faiss"));  // the old generation is gone

  const clip::ImageIndex fresh = clip::ImageIndex::build(*model, images.string(), dir / "fresh", quiet());
  EXPECT_EQ(table_of(updated), table_of(fresh));
  EXPECT_EQ(read(generation_file(dir / "index", "files")), read(generation_file(dir / "fresh", "files")))
      << "the files tables (path, size, mtime, SHA-256) differ";
  const double diff = (updated.embeddings() - fresh.embeddings()).abs().max().item<double>();
  std::printf("[ measured ] updated vs fresh build: max |embedding diff| %.3g (tolerance 1e-6)\n", diff);
  EXPECT_LE(diff, 1e-6);
  const at::Tensor q = at::randn({10, 64});
  const auto a = updated.search(q, 5), b = fresh.search(q, 5);
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t j = 0; j < a[i].size(); ++j) EXPECT_EQ(a[i][j].path, b[i][j].path);
  }

  // Building over an existing index is refused; updating with nothing changed runs no image through the model.
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::ImageIndex::build(*model, images.string(), dir / "index", quiet()); }),
                  "already holds an index");
  const clip::ImageIndex again = clip::ImageIndex::update(*model, dir / "index", quiet(), "", &report);
  EXPECT_EQ(report.embedded, 0);
  EXPECT_EQ(report.reused, 24);
  EXPECT_EQ(again.info().generation, 2) << "an update that changed nothing wrote the index again";
  EXPECT_EQ(again.info().model_precision, "fp32");

  // The precision the rows were embedded in is recorded; an update that adds rows in another one says "mixed".
  if (clip::int8_available()) {
    model->set_inference_precision(clip::InferencePrecision::int8);
    std::ofstream(images / "newer.png", std::ios::binary) << random_png(3000);
    const clip::ImageIndex mixed = clip::ImageIndex::update(*model, dir / "index", quiet(), "", &report);
    EXPECT_EQ(report.embedded, 1);
    EXPECT_EQ(mixed.info().model_precision, "mixed");
    EXPECT_EQ(clip::ImageIndex::load(dir / "index").info().model_precision, "mixed") << "kept in the manifest";
    const clip::ImageIndex int8 = clip::ImageIndex::build(*model, images.string(), dir / "int8", quiet());
    EXPECT_EQ(clip::ImageIndex::load(dir / "int8").info().model_precision, "int8");
  }
}

TEST(ImageIndex, ARewriteThatKeepsSizeAndMtimeIsStillNoticed) {
  CLIP_REQUIRE_FEATURE(faiss);
  clip::test::TempDir dir;
  const fs::path images = dir.path() / "images";
  make_images(images, 6);
  clip::CLIP model = make_model(11);
  clip::ImageIndex::build(*model, images.string(), dir / "index", quiet());
  // Rewritten within the file system's timestamp resolution: same size, same mtime, other bytes.
  const fs::path file = images / "img_002.png";
  const auto mtime = fs::last_write_time(file);
  std::string bytes = read(file.string());
  bytes[bytes.size() / 2] ^= 0x5a;
  std::ofstream(file, std::ios::binary) << bytes;
  fs::last_write_time(file, mtime);
  clip::IndexBuildReport report;
  clip::ImageIndex::update(*model, dir / "index", quiet(), "", &report);
  std::printf("[ measured ] after the rewrite: %lld embedded, %zu unreadable, %lld kept\n", (long long)report.embedded,
              report.skipped.size(), (long long)report.reused);
  EXPECT_EQ(report.embedded + int64_t(report.skipped.size()), 1) << "the old embedding of the rewritten file was kept";
  EXPECT_EQ(report.reused, 5);
}

TEST(ImageIndex, KilledBuildResumesToTheSameIndex) {
  CLIP_REQUIRE_FEATURE(faiss);
  clip::test::TempDir dir;
  make_images(dir.path() / "images", 400, /*broken=*/true);
  clip::CLIP model = make_model(3);
  clip::save_model(*model, dir / "model.safetensors");
  const std::string build = clip::test::tool("clip_index") + " build --checkpoint " + (dir / "model.safetensors") +
                            " --images " + (dir / "images") + " --batch-size 4 --checkpoint-every 8 --workers 1 "
                            "--threads 1 --device cpu --quiet";

  // Killed (SIGKILL: no handler, no cleanup) once a few chunks are on disk.
  const pid_t pid = clip::test::start_command(build + " --index " + (dir / "killed") + " >/dev/null 2>&1");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(dir / "killed/partial/chunk-000003.safetensors") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(pid, SIGKILL);
  EXPECT_EQ(clip::test::wait_exit_code(pid), 128 + SIGKILL) << "the build ended before it could be killed";
  ASSERT_FALSE(fs::exists(dir / "killed/index.json"));

  // Searching the half-made index says what to do.
  const auto half = clip::test::run_command(clip::test::tool("clip_search") + " --index " + (dir / "killed") +
                                            " --duplicates 2>&1");
  EXPECT_EQ(half.exit_code, 1);
  EXPECT_CONTAINS(half.output, "unfinished build");

  const auto resumed = clip::test::run_command(build + " --index " + (dir / "killed") + " 2>&1");
  std::printf("%s", resumed.output.c_str());
  ASSERT_EQ(resumed.exit_code, 0);
  EXPECT_EQ(resumed.output.find("(0 from an interrupted run)"), std::string::npos) << "nothing was resumed";
  EXPECT_FALSE(fs::exists(dir / "killed/partial"));

  const auto whole = clip::test::run_command(build + " --index " + (dir / "whole") + " 2>&1");
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  const clip::ImageIndex a = clip::ImageIndex::load(dir / "killed"), b = clip::ImageIndex::load(dir / "whole");
  EXPECT_EQ(table_of(a), table_of(b));
  EXPECT_EQ(read(generation_file(dir / "killed", "files")), read(generation_file(dir / "whole", "files")));
  EXPECT_EQ(a.skipped().size(), 1u);
  const double diff = (a.embeddings() - b.embeddings()).abs().max().item<double>();
  std::printf("[ measured ] resumed vs uninterrupted build: max |embedding diff| %g (tolerance 0: the same batches)\n",
              diff);
  EXPECT_EQ(diff, 0.0);
}

TEST(ImageIndex, DamageAndAnotherModelAreRefusedWithOneLine) {
  CLIP_REQUIRE_FEATURE(faiss);
  clip::test::TempDir dir;
  make_images(dir.path() / "images", 12);
  clip::CLIP model = make_model(4);
  clip::save_model(*model, dir / "model.safetensors");
  clip::IndexOptions o = quiet();
  o.model_checkpoint = dir / "model.safetensors";
  clip::ImageIndex::build(*model, dir / "images", dir / "index", o);

  // Another model: other weights of the same shape, or another embedding width.
  clip::CLIP other = make_model(5);
  clip::save_model(*other, dir / "other.safetensors");
  const clip::ImageIndex index = clip::ImageIndex::load(dir / "index");
  EXPECT_CONTAINS(clip::test::error_of([&] { index.check_model(*other); }), "made with another model");
  clip::CLIP wider = make_model(4, 32);
  EXPECT_CONTAINS(clip::test::error_of([&] { index.check_model(*wider); }), "holds 64-d embeddings");
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::ImageIndex::update(*other, dir / "index", quiet()); }),
                  "made with another model");
  const std::string search = clip::test::tool("clip_search") + " --index " + (dir / "index") + " --text dog";
  const auto refused = clip::test::run_command(search + " --checkpoint " + (dir / "other.safetensors") + " 2>&1");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_CONTAINS(refused.output, "made with another model");
  EXPECT_EQ(clip::test::count_of(refused.output, "\n"), 1u) << refused.output;
  const auto own = clip::test::run_command(search + " 2>&1");  // the index's own model, found by itself
  EXPECT_EQ(own.exit_code, 0) << own.output;

  // Damage: every file is checked against the manifest before it is used.
  const std::string table = generation_file(dir / "index", "files"), vectors = generation_file(dir / "index", "vectors");
  const std::string manifest = dir / "index/index.json";
  const std::string good_table = read(table), good_vectors = read(vectors), good_manifest = read(manifest);
  const auto expect_refused = [&](const std::string& what, const std::string& needle) {
    const std::string message = clip::test::error_of([&] { clip::ImageIndex::load(dir / "index"); });
    EXPECT_CONTAINS(message, needle) << what;
    EXPECT_EQ(message.find('\n'), std::string::npos) << what;
  };
  std::string bad = good_table;
  bad[bad.size() / 2] ^= 1;
  std::ofstream(table, std::ios::binary) << bad;
  expect_refused("a flipped bit in the table", "damaged");
  std::ofstream(table, std::ios::binary) << good_table;
  std::ofstream(vectors, std::ios::binary) << good_vectors.substr(0, good_vectors.size() - 9);
  expect_refused("truncated vectors", "damaged");
  bad = good_vectors;
  bad[bad.size() - 20] ^= 0x40;
  std::ofstream(vectors, std::ios::binary) << bad;
  expect_refused("a flipped bit in the vectors", "checksum");
  std::ofstream(vectors, std::ios::binary) << good_vectors;
  std::ofstream(manifest, std::ios::binary) << good_manifest.substr(0, good_manifest.size() / 2);
  expect_refused("a cut manifest", "not valid JSON");
  std::ofstream(manifest, std::ios::binary) << "{\"format\": \"something else\"}";
  expect_refused("another file's JSON", "not a libclip image index");
  std::ofstream(manifest, std::ios::binary) << good_manifest;
  EXPECT_EQ(clip::ImageIndex::load(dir / "index").size(), 12);
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::ImageIndex::load(dir / "images"); }), "not an image index");
}

TEST(ImageIndex, ApproximateKindsMeasureRecallAndChooseTheirDepth) {
  CLIP_REQUIRE_FEATURE(faiss);
  clip::test::TempDir dir;
  make_images(dir.path() / "images", 160);
  clip::CLIP model = make_model(6);
  for (const std::string kind : {"ivf", "hnsw"}) {
    clip::IndexOptions o = quiet();
    o.kind = kind;
    o.ivf_lists = 8;
    o.hnsw_m = 8;
    o.recall_queries = 40;
    clip::IndexBuildReport report;
    const clip::ImageIndex index = clip::ImageIndex::build(*model, dir / "images", dir / kind, o, &report);
    ASSERT_TRUE(report.recall.has_value()) << kind;
    const clip::IndexRecall& r = *report.recall;
    EXPECT_EQ(r.image_queries, 40);
    EXPECT_GT(r.text_queries, 0);
    ASSERT_FALSE(r.points.empty());
    for (const auto& p : r.points) {
      std::printf("[ measured ] %s depth %lld: recall@%lld images %.3f, texts %.3f\n", kind.c_str(),
                  (long long)p.depth, (long long)r.k, p.image_recall, p.text_recall);
    }
    // The default depth is the first to reach the target on both query sets; when none does, the sweep ends where
    // a deeper search stopped helping, and the default is the shallowest of the best.
    const auto reaches = [](const clip::IndexRecallPoint& p) { return p.image_recall >= 0.95 && p.text_recall >= 0.95; };
    const auto& last = r.points.back();
    size_t chosen = 0;
    while (chosen < r.points.size() && r.points[chosen].depth != r.chosen_depth) ++chosen;
    ASSERT_LT(chosen, r.points.size()) << kind;
    for (size_t i = 0; i < chosen; ++i) EXPECT_FALSE(reaches(r.points[i])) << kind << " went deeper than needed";
    if (!reaches(r.points[chosen])) {
      EXPECT_EQ(r.points[chosen].image_recall, last.image_recall) << kind;
      EXPECT_EQ(r.points[chosen].text_recall, last.text_recall) << kind;
    }
    if (kind == "ivf") {  // visiting all 8 lists is exact
      EXPECT_EQ(last.depth, 8);
      EXPECT_EQ(last.image_recall, 1.0);
      EXPECT_EQ(last.text_recall, 1.0);
    }
    EXPECT_EQ(index.info().default_depth, r.chosen_depth);
    // IVF visiting every list is exact.
    if (kind == "ivf") {
      const at::Tensor q = at::randn({20, 64});
      const auto approx = index.search(q, 5, /*depth=*/8);
      const at::Tensor all = index.embeddings();
      const at::Tensor rows = std::get<1>(at::matmul(clip::l2_normalize(q), all.t()).topk(5, 1));
      for (int64_t i = 0; i < 20; ++i) {
        for (int64_t j = 0; j < 5; ++j) EXPECT_EQ(approx[size_t(i)][size_t(j)].row, rows[i][j].item<int64_t>());
      }
    }
    EXPECT_EQ(clip::ImageIndex::load(dir / kind).info().kind, kind);
  }
}

TEST(ImageIndex, NearDuplicatesAreGrouped) {
  CLIP_REQUIRE_FEATURE(faiss);
  clip::test::TempDir dir;
  const fs::path images = dir.path() / "images";
  make_images(images, 10);
  fs::copy_file(images / "img_002.png", images / "copy_of_2.png");
  fs::copy_file(images / "img_002.png", images / "another_copy_of_2.png");
  fs::copy_file(images / "img_006.png", images / "copy_of_6.png");
  clip::CLIP model = make_model(8);
  const clip::ImageIndex index = clip::ImageIndex::build(*model, images.string(), dir / "index", quiet());
  const auto groups = index.duplicates(0.99999f);
  ASSERT_EQ(groups.size(), 2u);
  ASSERT_EQ(groups[0].members.size(), 3u);
  EXPECT_CONTAINS(groups[0].members[0].path, "another_copy_of_2.png");
  ASSERT_EQ(groups[1].members.size(), 2u);
  EXPECT_CONTAINS(groups[1].members[0].path, "copy_of_6.png");
  EXPECT_CONTAINS(groups[1].members[1].path, "img_006.png");
}

TEST(ImageIndex, ResultsPageShowsItsThumbnailsInChromium) {
  CLIP_REQUIRE_FEATURE(faiss);
  clip::test::TempDir dir;
  make_images(dir.path() / "images", 12);
  std::ofstream(dir.path() / "images" / "odd name <&\">.png", std::ios::binary) << random_png(99);
  clip::CLIP model = make_model(9);
  clip::save_model(*model, dir / "model.safetensors");
  const auto built = clip::test::run_command(clip::test::tool("clip_index") + " build --quiet --checkpoint " +
                                             (dir / "model.safetensors") + " --images " + (dir / "images") +
                                             " --index " + (dir / "index") + " 2>&1");
  ASSERT_EQ(built.exit_code, 0) << built.output;
  const int k = 6;
  const auto searched = clip::test::run_command(
      clip::test::tool("clip_search") + " --index " + (dir / "index") + " --text 'a photo of a dog' --image " +
      (dir / "images/img_004.png") + " --topk " + std::to_string(k) + " --output " + (dir / "hits.json") + " --html " +
      (dir / "hits.html") + " 2>&1");
  ASSERT_EQ(searched.exit_code, 0) << searched.output;
  const std::string json = read(dir / "hits.json");
  EXPECT_EQ(clip::test::count_of(json, "\"rank\""), size_t(k));

  const auto page = clip::test::render_in_chromium(dir / "hits.html", dir / "hits.png");
  if (!page.ran) GTEST_SKIP() << "headless chromium could not run here (scripts/setup installs Debian's chromium)";
  EXPECT_CONTAINS(page.dom, "data-thumbnails-shown=\"" + std::to_string(k) + "\"");
  EXPECT_EQ(clip::test::count_of(page.dom, "<img class=\"thumb\""), size_t(k));
  EXPECT_TRUE(page.console.empty()) << page.console.front();
  EXPECT_TRUE(fs::exists(dir / "hits.png"));

  // A file whose name needs escaping, on a page of near-duplicate groups.
  const auto dups = clip::test::run_command(clip::test::tool("clip_search") + " --index " + (dir / "index") +
                                            " --duplicates --threshold -1 --html " + (dir / "dups.html") + " 2>&1");
  ASSERT_EQ(dups.exit_code, 0) << dups.output;
  const auto dup_page = clip::test::render_in_chromium(dir / "dups.html");
  EXPECT_CONTAINS(dup_page.dom, "data-thumbnails-shown=\"13\"");
  EXPECT_CONTAINS(dup_page.dom, "odd name &lt;&amp;\"&gt;.png");
  EXPECT_TRUE(dup_page.console.empty());
}

TEST(IndexLeftOut, EveryEntryPointRefusesSayingWhy) {
  if (clip::features().faiss) GTEST_SKIP() << "this libclip has faiss (the test is for builds without it)";
  clip::test::TempDir dir;
  make_images(dir.path() / "images", 3);
  clip::CLIP model = make_model(10);
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::ImageIndex::build(*model, dir / "images", dir / "index", quiet()); }),
                  "CLIP_WITH_FAISS");
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::ImageIndex::from_embeddings(at::randn({3, 8}), {"a", "b", "c"}); }),
                  "CLIP_WITH_FAISS");
  const auto bench = clip::test::run_command(clip::test::tool("clip_bench") + " --mode search --sizes 100 2>&1");
  EXPECT_EQ(bench.exit_code, 1);
  EXPECT_CONTAINS(bench.output, "CLIP_WITH_FAISS");
}
