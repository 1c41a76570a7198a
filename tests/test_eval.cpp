// Evaluation protocols (clip/zeroshot/metrics.h, clip/train/evaluation.h, clip/eval/): every metric against a direct
// computation on small hand-made cases (ties, classes without samples, queries without matches), the logistic
// regression's optimality conditions, the lambda search's order, the CLIP_benchmark JSON, and clip_eval end to end.
// Against scikit-learn itself: tests/reference/test_linear_probe.py.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <random>

#include "clip/eval/evaluate.h"
#include "clip/eval/linear_probe.h"
#include "clip/model/checkpoint.h"
#include "clip/model/config.h"
#include "clip/train/evaluation.h"
#include "clip/zeroshot/metrics.h"
#include "test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The definition, by brute force: row i's columns ordered by (score descending, column ascending).
std::vector<int64_t> order_of(const std::vector<double>& row) {
  std::vector<int64_t> idx(row.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = int64_t(i);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return row[size_t(a)] > row[size_t(b)]; });
  return idx;
}

std::vector<double> row_of(const at::Tensor& t, int64_t i) {
  const at::Tensor r = t[i].to(at::kDouble).contiguous();
  return std::vector<double>(r.data_ptr<double>(), r.data_ptr<double>() + r.numel());
}

// Integer-valued random scores: many ties.
at::Tensor tied_scores(int64_t n, int64_t c, uint64_t seed) {
  at::manual_seed(int64_t(seed));
  return at::randint(0, 4, {n, c}).to(at::kFloat);
}

}  // namespace

TEST(Metrics, RankedTopkPutsTheLowerIndexFirstOnTies) {
  const at::Tensor scores = at::tensor({1.0, 3.0, 3.0, 0.0, 3.0, 3.0, 3.0}).view({1, 7});
  const at::Tensor top = clip::ranked_topk(scores, 3);
  EXPECT_EQ(top[0][0].item<int64_t>(), 1);
  EXPECT_EQ(top[0][1].item<int64_t>(), 2);
  EXPECT_EQ(top[0][2].item<int64_t>(), 4);
  EXPECT_EQ(clip::ranked_topk(scores, 100).size(1), 7);  // k capped at the columns
}

TEST(Metrics, ClassificationByHand) {
  // 4 classes; predictions (argmax) 0, 2, 1, 1, 1 for targets 0, 0, 1, 1, 3: class 2 is predicted but has no sample,
  // class 3 has one and is never predicted. scikit-learn's balanced accuracy: mean(1/2, 2/2, 0/1) = 0.5.
  const at::Tensor logits = at::tensor({5.0, 1.0, 0.0, 0.0,  //
                                        0.0, 1.0, 5.0, 0.0,  //
                                        0.0, 5.0, 0.0, 0.0,  //
                                        1.0, 5.0, 5.0, 0.0,  // a tie between 1 and 2: 1 ranks first
                                        0.0, 5.0, 0.0, 4.0})
                               .view({5, 4});
  const at::Tensor targets = at::tensor({0, 0, 1, 1, 3}, at::kLong);
  const clip::ClassificationMetrics m = clip::classification_metrics(logits, targets);
  std::printf("[ measured ] acc1 %.4f, mean per-class recall %.4f (expected 0.6, 0.5), acc5 %f (NaN: 4 classes)\n",
              m.acc1, m.mean_per_class_recall, m.acc5);
  EXPECT_DOUBLE_EQ(m.acc1, 0.6);
  EXPECT_DOUBLE_EQ(m.mean_per_class_recall, 0.5);
  EXPECT_TRUE(std::isnan(m.acc5));
  EXPECT_EQ(m.classes_with_samples, 3);
  // Targets outside the classes are refused.
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::classification_metrics(logits, at::tensor({0, 0, 1, 1, 4}, at::kLong)); }),
                  "outside the 4 classes");
}

TEST(Metrics, ClassificationEqualsTheDefinitionOnTiedScores) {
  for (uint64_t seed = 0; seed < 5; ++seed) {
    const int64_t n = 200, c = 7;
    const at::Tensor logits = tied_scores(n, c, seed);
    at::manual_seed(int64_t(seed) + 100);
    const at::Tensor targets = at::randint(0, c - 1, {n}, at::kLong);  // class 6 never a target
    const clip::ClassificationMetrics m = clip::classification_metrics(logits, targets);
    int64_t top1 = 0, top5 = 0;
    std::vector<int64_t> hits(size_t(c), 0), total(size_t(c), 0);
    for (int64_t i = 0; i < n; ++i) {
      const auto order = order_of(row_of(logits, i));
      const int64_t t = targets[i].item<int64_t>();
      top1 += order[0] == t;
      top5 += std::find(order.begin(), order.begin() + 5, t) != order.begin() + 5;
      ++total[size_t(t)];
      hits[size_t(t)] += order[0] == t;
    }
    double recall = 0;
    int present = 0;
    for (int64_t k = 0; k < c; ++k) {
      if (total[size_t(k)] == 0) continue;
      recall += double(hits[size_t(k)]) / double(total[size_t(k)]);
      ++present;
    }
    EXPECT_DOUBLE_EQ(m.acc1, double(top1) / n);
    EXPECT_DOUBLE_EQ(m.acc5, double(top5) / n);
    EXPECT_NEAR(m.mean_per_class_recall, recall / present, 1e-15);
    EXPECT_EQ(m.classes_with_samples, present);
  }
}

TEST(Metrics, RetrievalEqualsTheDefinition) {
  // Hand-made: 3 images, 4 captions; image 0 has captions 0 and 1, image 1 has caption 2, image 2 none; caption 3
  // describes nothing. Features on the axes make the scores exact.
  const at::Tensor images = at::eye(3);
  const at::Tensor texts = at::tensor({0.0, 1.0, 0.0,    // caption 0: image 1 first, image 0 tied last with 2
                                       1.0, 0.0, 0.0,    // caption 1: image 0 first
                                       1.0, 1.0, 0.0,    // caption 2: images 0 and 1 tied: 0 first (not its own)
                                       0.0, 0.0, 1.0})
                              .view({4, 3});
  const clip::CaptionRetrievalMetrics m =
      clip::caption_retrieval_metrics(images, texts, {{0, 0}, {1, 0}, {2, 1}}, {1, 2, 3});
  // Text queries (4): caption 0 finds image 0 at rank 1 (after image 1; the tie with image 2 puts 0 first), caption 1
  // at rank 0, caption 2 finds image 1 at rank 1, caption 3 never. Image queries (3): image 0 has caption 1 at rank 0
  // (its column: captions 1, 2 score 1 tied, 1 first); image 1: caption 0 and 2 tie at 1 -> caption 0 ranks first,
  // caption 2 second -> rank 1; image 2: no caption.
  const std::vector<double> image_retrieval = {1.0 / 4, 3.0 / 4, 3.0 / 4};
  const std::vector<double> text_retrieval = {1.0 / 3, 2.0 / 3, 2.0 / 3};
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_DOUBLE_EQ(m.image_retrieval_recall[k], image_retrieval[k]) << "k=" << m.ks[k];
    EXPECT_DOUBLE_EQ(m.text_retrieval_recall[k], text_retrieval[k]) << "k=" << m.ks[k];
  }
  // Random tied scores, several captions per image, against the brute-force definition.
  for (uint64_t seed = 0; seed < 4; ++seed) {
    const int64_t n_images = 30, n_texts = 70, d = 3;
    at::manual_seed(int64_t(seed));
    const at::Tensor img = at::randint(0, 3, {n_images, d}).to(at::kFloat) + 0.5;
    const at::Tensor txt = at::randint(0, 3, {n_texts, d}).to(at::kFloat) + 0.5;
    std::mt19937 rng{static_cast<unsigned>(seed)};
    std::vector<std::pair<int64_t, int64_t>> matches;
    for (int64_t t = 0; t < n_texts; ++t) matches.emplace_back(t, int64_t(rng() % (n_images - 3)));  // 3 without
    const std::vector<int64_t> ks = {1, 3, 10};
    const clip::CaptionRetrievalMetrics r = clip::caption_retrieval_metrics(img, txt, matches, ks);
    const at::Tensor scores = at::matmul(clip::l2_normalize(txt), clip::l2_normalize(img).t());
    for (size_t ki = 0; ki < ks.size(); ++ki) {
      const int64_t k = ks[ki];
      int64_t found_t = 0, found_i = 0;
      for (int64_t t = 0; t < n_texts; ++t) {
        const auto order = order_of(row_of(scores, t));
        for (int64_t j = 0; j < k; ++j) found_t += order[size_t(j)] == matches[size_t(t)].second;
      }
      const at::Tensor by_image = scores.t().contiguous();
      for (int64_t i = 0; i < n_images; ++i) {
        const auto order = order_of(row_of(by_image, i));
        bool any = false;
        for (int64_t j = 0; j < k; ++j) any = any || matches[size_t(order[size_t(j)])].second == i;
        found_i += any;
      }
      EXPECT_DOUBLE_EQ(r.image_retrieval_recall[ki], double(found_t) / n_texts) << "seed " << seed << " k " << k;
      EXPECT_DOUBLE_EQ(r.text_retrieval_recall[ki], double(found_i) / n_images) << "seed " << seed << " k " << k;
    }
  }
}

TEST(Metrics, OneToOneRetrievalIsTheSpecialCase) {
  at::manual_seed(3);
  const at::Tensor img = at::randn({40, 8}), txt = at::randn({40, 8});
  const clip::RetrievalMetrics a = clip::retrieval_metrics(img, txt);
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (int64_t i = 0; i < 40; ++i) pairs.emplace_back(i, i);
  const clip::CaptionRetrievalMetrics b = clip::caption_retrieval_metrics(img, txt, pairs);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(a.image_to_text[k], b.text_retrieval_recall[k]);
    EXPECT_EQ(a.text_to_image[k], b.image_retrieval_recall[k]);
  }
}

TEST(LinearProbe, FitsMeetTheOptimalityConditions) {
  at::manual_seed(0);
  const int64_t n = 300, d = 12;
  for (const int64_t classes : {2, 5}) {
    const at::Tensor y = at::randint(0, classes, {n}, at::kLong);
    const at::Tensor means = at::randn({classes, d}) * 0.8;
    const at::Tensor x = (means.index_select(0, y) + at::randn({n, d})).to(at::kDouble);
    const double c = 0.5;
    const auto options = clip::LogisticRegressionOptions().c(c).tolerance(1e-7);
    const clip::LogisticRegression m = clip::LogisticRegression::fit(x, y, classes, options);
    EXPECT_TRUE(m.converged) << "loss " << m.loss << " after " << m.iterations << " iterations";
    // The objective's gradient at the solution: mean CE gradient + W / (C n) for the weights, the CE gradient alone
    // for the bias (not penalised). For two classes the model is logits [0, z]: the same conditions on z's row.
    const at::Tensor p = at::softmax(m.logits(x), 1);
    const at::Tensor residual = (p - at::one_hot(y, classes).to(at::kDouble)) / double(n);  // [n, C]
    at::Tensor gw = at::matmul(residual.t(), x) + m.weight / (c * double(n));
    at::Tensor gb = residual.sum(0);
    if (classes == 2) {  // row 1 is z = w x + b; row 0 is the fixed 0
      gw = gw[1];
      gb = gb[1];
    }
    const double worst = std::max(gw.abs().max().item<double>(), gb.abs().max().item<double>());
    std::printf("[ measured ] %lld classes: max |gradient| at the fit %.2e (tolerance 1e-6), %lld iterations\n",
                static_cast<long long>(classes), worst, static_cast<long long>(m.iterations));
    EXPECT_LT(worst, 1e-6);
    // Deterministic: the same fit again is bit-identical.
    const clip::LogisticRegression again = clip::LogisticRegression::fit(x, y, classes, options);
    EXPECT_TRUE(at::equal(again.weight, m.weight));
    EXPECT_TRUE(at::equal(again.bias, m.bias));
  }
}

TEST(LinearProbe, RefusesAClassWithoutSamplesAndRunsUnderInferenceMode) {
  at::manual_seed(4);
  const at::Tensor x = at::randn({40, 5}, at::kDouble);
  const at::Tensor y = at::randint(0, 2, {40}, at::kLong);  // classes 0 and 1 of 3
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::LogisticRegression::fit(x, y, 3); }),
                  "1 of the 3 classes have no training sample (the first: class 2)");
  c10::InferenceMode inference;  // as a caller holding features made under InferenceMode
  const at::Tensor xi = at::randn({40, 5}, at::kDouble);
  const clip::LogisticRegression m = clip::LogisticRegression::fit(xi, y, 2);
  EXPECT_TRUE(m.converged);
}

TEST(Metrics, RetrievalRefusesNonFiniteEmbeddings) {
  at::Tensor img = at::eye(3);
  img[1][1] = std::nan("");
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::caption_retrieval_metrics(img, at::eye(3), {{0, 0}, {1, 1}}); }),
                  "NaN or infinity");
}

TEST(LinearProbe, SearchFollowsTheParametricBinarySearch) {
  at::manual_seed(1);
  const int64_t d = 10, classes = 4;
  const at::Tensor means = at::randn({classes, d}) * 0.5;
  auto draw = [&](int64_t n) {
    const at::Tensor y = at::randint(0, classes, {n}, at::kLong);
    return std::make_pair((means.index_select(0, y) + at::randn({n, d})).to(at::kDouble), y);
  };
  const auto [tx, ty] = draw(120);
  const auto [vx, vy] = draw(80);
  const auto [sx, sy] = draw(300);
  const clip::LinearProbeResult r = clip::linear_probe(tx, ty, vx, vy, sx, sy, classes);
  ASSERT_GE(r.search.size(), 7u);
  for (size_t i = 0; i < 7; ++i) EXPECT_NEAR(std::log10(r.search[i].lambda), -6.0 + 2.0 * double(i), 1e-9);
  double best = 0;
  for (const auto& point : r.search) best = std::max(best, point.validation_acc1);
  EXPECT_DOUBLE_EQ(r.validation.acc1, best);  // the chosen lambda reaches the best validation accuracy tried
  EXPECT_LE(r.search.size(), 7u + 8u);         // at most two new points per halving
  // Every lambda tried lies on the 8-per-decade grid.
  for (const auto& point : r.search) {
    const double steps = (std::log10(point.lambda) + 6) * 8;
    EXPECT_NEAR(steps, std::round(steps), 1e-6);
  }
  EXPECT_DOUBLE_EQ(r.c, 1.0 / r.lambda);
  EXPECT_DOUBLE_EQ(r.test.acc1, clip::classification_metrics(r.model.logits(sx), sy).acc1);
  std::printf("[ measured ] %zu lambdas tried, chosen %.4g, validation acc1 %.4f, test acc1 %.4f\n", r.search.size(),
              r.lambda, r.validation.acc1, r.test.acc1);
}

TEST(BenchmarkResult, ClipBenchmarkSchema) {
  clip::BenchmarkResult result{"cifar10", "ViT-B-32", "model.pt", "zeroshot_classification",
                               {{"acc1", 0.5}, {"acc5", std::nan("")}, {"mean_per_class_recall", 0.25}}};
  const nlohmann::ordered_json j = nlohmann::ordered_json::parse(clip::to_json(result));
  std::vector<std::string> keys;
  for (const auto& item : j.items()) keys.push_back(item.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"dataset", "model", "pretrained", "task", "metrics", "language"}));
  EXPECT_EQ(j["metrics"]["acc1"], 0.5);
  EXPECT_TRUE(j["metrics"]["acc5"].is_null());  // NaN: CLIP_benchmark writes the token NaN, which JSON has not
  EXPECT_EQ(j["language"], "en");
}

TEST(RetrievalSet, GroupsImagesAndCaptions) {
  clip::test::TempDir tmp;
  std::ofstream(tmp / "c.tsv") << "filepath\ttitle\na.png\ta cat\na.png\ta small cat\nb.png\ta cat\nb.png\ta cat\n"
                                  "c.png\ta dog\n";
  const clip::RetrievalSet set = clip::read_retrieval_csv(tmp / "c.tsv", "filepath", "title", "\t");
  EXPECT_EQ(set.images.size(), 3u);
  EXPECT_EQ(set.texts, (std::vector<std::string>{"a cat", "a small cat", "a dog"}));
  EXPECT_EQ(set.matches, (std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {1, 0}, {0, 1}, {2, 2}}));
}

TEST(LabeledCsv, AMissingLabelColumnNamesTheLabelFlag) {
  clip::test::TempDir tmp;
  std::ofstream(tmp / "l.tsv") << "filepath\ttitle\na.png\tcat\n";
  const std::string error =
      clip::test::error_of([&] { clip::read_labeled_csv(tmp / "l.tsv", "filepath", "label", "\t"); });
  EXPECT_CONTAINS(error, "l.tsv: no column 'label' (--csv-label-key)");
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::read_caption_csv(tmp / "l.tsv", "filepath", "caption", "\t"); }),
                  "(--csv-caption-key)");
}

// ---- clip_eval -------------------------------------------------------------------------------------------------

#if CLIP_TEST_TOOLS
namespace {

std::string tiny_model(const clip::test::TempDir& tmp) {
  const clip::ModelConfig config = clip::load_model_config(clip::test::data("vit_tiny_bpe.json"));
  at::manual_seed(0);
  clip::CLIP model(config);
  const std::string path = tmp / "tiny.safetensors";
  clip::save_model(*model, path);
  return path;
}

// cat/ and dog/ with copies of the test images (`copies` of each, so a linear probe has enough).
std::string labeled(const clip::test::TempDir& tmp, const std::string& name, int copies) {
  const fs::path root = tmp / name;
  const fs::path src = clip::test::data("preprocess/images");
  int n = 0;
  for (const char* f : {"chelsea.png", "chelsea_q85.jpg", "coffee.png", "horse.png", "rocket.jpg", "fruits.jpg"}) {
    if (!clip::test::decodes((src / f).string())) continue;
    const fs::path dir = root / (n++ % 2 ? "dog" : "cat");
    fs::create_directories(dir);
    for (int c = 0; c < copies; ++c) fs::copy_file(src / f, dir / (std::to_string(c) + "_" + f));
  }
  return root.string();
}

clip::test::CommandResult eval(const std::string& args) {
  return clip::test::run_command(clip::test::tool("clip_eval") + " " + args + " 2>&1");
}

json last_json_line(const std::string& output) {
  const size_t at = output.rfind("\n{");
  return json::parse(output.substr(at == std::string::npos ? output.find('{') : at + 1));
}

}  // namespace

TEST(ClipEval, ZeroshotRetrievalAndLinearProbeWriteClipBenchmarkResults) {
  clip::test::TempDir tmp;
  const std::string model = tiny_model(tmp);
  const std::string folder = labeled(tmp, "photos", 1);
  auto zs = eval("zeroshot --checkpoint " + model + " --images " + folder + " --templates simple --output " +
                 (tmp / "zs.json"));
  ASSERT_EQ(zs.exit_code, 0) << zs.output;
  const json z = json::parse(std::ifstream(tmp / "zs.json"));
  EXPECT_EQ(z["task"], "zeroshot_classification");
  EXPECT_EQ(z["dataset"], "photos");
  EXPECT_TRUE(z["metrics"]["acc5"].is_null());  // 2 classes
  EXPECT_EQ(last_json_line(zs.output), z);
  // The same as a CSV of images and class names.
  {
    std::ofstream csv(tmp / "labels.csv");
    csv << "filepath,label\n";
    for (const auto& entry : fs::recursive_directory_iterator(folder)) {
      if (entry.is_regular_file()) csv << entry.path().string() << "," << entry.path().parent_path().filename().string() << "\n";
    }
  }
  auto zc = eval("zeroshot --checkpoint " + model + " --csv " + (tmp / "labels.csv") + " --templates simple");
  ASSERT_EQ(zc.exit_code, 0) << zc.output;
  EXPECT_EQ(last_json_line(zc.output)["metrics"], z["metrics"]);

  {
    std::ofstream csv(tmp / "captions.tsv");
    csv << "filepath\ttitle\n";
    for (const auto& entry : fs::recursive_directory_iterator(folder)) {
      if (entry.is_regular_file()) csv << entry.path().string() << "\ta photo of a " << entry.path().parent_path().filename().string() << "\n";
    }
  }
  std::ofstream(tmp / "broken.png") << "not a png";
  std::ofstream(tmp / "captions.tsv", std::ios::app) << (tmp / "broken.png") << "\ta broken image\n";
  auto rt = eval("retrieval --checkpoint " + model + " --csv " + (tmp / "captions.tsv") + " --recall-k 1 2");
  ASSERT_EQ(rt.exit_code, 0) << rt.output;
  const json r = last_json_line(rt.output);
  EXPECT_EQ(r["task"], "zeroshot_retrieval");
  for (const char* key : {"image_retrieval_recall@1", "text_retrieval_recall@1", "image_retrieval_recall@2",
                          "text_retrieval_recall@2"}) {
    ASSERT_TRUE(r["metrics"].contains(key)) << key;
  }
  // 2 captions, each finds its class; the broken image's caption left with it (else 2 of 3 would be found)
  EXPECT_DOUBLE_EQ(r["metrics"]["image_retrieval_recall@2"].get<double>(), 1.0);
  EXPECT_CONTAINS(rt.output, "skipped");

  const std::string train = labeled(tmp, "train", 4), test = labeled(tmp, "test", 1);
  auto lp = eval("linear-probe --checkpoint " + model + " --train " + train + " --test " + test + " --val-proportion 0.25");
  ASSERT_EQ(lp.exit_code, 0) << lp.output;
  const json l = last_json_line(lp.output);
  EXPECT_EQ(l["task"], "linear_probe");
  for (const char* key : {"lp_acc1", "lp_acc5", "lp_mean_per_class_recall", "lambda", "C"}) {
    EXPECT_TRUE(l["metrics"].contains(key)) << key;
  }
  EXPECT_CONTAINS(lp.output, "chosen lambda");
}

TEST(ClipEval, RefusesBadInputWithOneLine) {
  clip::test::TempDir tmp;
  const std::string model = tiny_model(tmp);
  const std::string train = labeled(tmp, "train", 1);
  fs::create_directories(fs::path(tmp / "other") / "horse");
  fs::copy_file(clip::test::data("preprocess/images/horse.png"), fs::path(tmp / "other") / "horse" / "h.png");
  fs::copy(train, tmp / "with_empty", fs::copy_options::recursive);
  fs::create_directories(fs::path(tmp / "with_empty") / "empty");
  const auto cases = std::vector<std::pair<std::string, std::string>>{
      {"zeroshot --checkpoint " + model, "--images"},
      {"linear-probe --checkpoint " + model + " --train " + train + " --test " + (tmp / "other"), "horse"},
      {"linear-probe --checkpoint " + model + " --train " + train + " --test " + train + " --val-proportion 0.01",
       "--val-proportion"},
      {"retrieval --checkpoint " + model + " --csv " + clip::test::data("vit_tiny.json"), "vit_tiny.json"},
      {"linear-probe --checkpoint " + model + " --train " + (tmp / "with_empty") + " --test " + train + " --val " + train,
       "class 'empty' has no training image"},
      {"nothing", "nothing"},
  };
  for (const auto& [args, needle] : cases) {
    const auto r = eval(args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_CONTAINS(r.output, needle);
    std::printf("[ message  ] %s", r.output.substr(r.output.rfind("clip_eval")).c_str());
  }
}
#endif  // CLIP_TEST_TOOLS
