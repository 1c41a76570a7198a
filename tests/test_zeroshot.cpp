// Zero-shot classification: the classifier's math against a direct computation, prompt ensembling, save/load;
// clip_zeroshot and clip_embed end to end on a generated folder with corrupt, hidden and nested files.
#include <gtest/gtest.h>

#include <cmath>

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "clip/model/checkpoint.h"
#include "clip/io/safetensors.h"
#include "clip/text/tokenizer.h"
#include "clip/util/error.h"
#include "clip/zeroshot/classifier.h"
#include "clip/text/prompts.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

using clip::test::TempDir;

// A word-hash tokenizer for the 1000-token fixture vocabulary (start 998, end 999, the fixtures' layout).
class HashTokenizer : public clip::Tokenizer {
 public:
  void encode(std::string_view text, std::vector<int64_t>& ids) const override {
    std::istringstream in{std::string(text)};
    std::string word;
    while (in >> word) ids.push_back(1 + static_cast<int64_t>(std::hash<std::string>{}(word) % 997));
  }
  std::string decode(const std::vector<int64_t>&) const override { return ""; }
  int64_t start_id() const override { return 998; }
  int64_t end_id() const override { return 999; }
  int64_t pad_id() const override { return 0; }
  int64_t vocab_size() const override { return 1000; }
  clip::TextPool pool() const override { return clip::TextPool::argmax; }
};

TEST(Classifier, EnsemblesPromptsAsTheReference) {
  clip::CLIP model = clip::load_model(clip::test::data("vit_tiny.safetensors"),
                                      clip::LoadOptions().config_path(clip::test::data("vit_tiny.json")));
  const HashTokenizer tokenizer;
  const std::vector<std::string> classes = {"cat", "dog", "bird"};
  const std::vector<std::string> templates = {"a photo of a {}.", "a drawing of a {}.", "{} {} everywhere"};
  const auto classifier =
      clip::ZeroShotClassifier::build(*model, tokenizer, classes, templates, clip::ZeroShotOptions().batch_size(2));
  // Direct computation: per class, normalize each prompt's embedding, average, normalize.
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> rows;
  for (const auto& c : classes) {
    std::vector<std::string> prompts;
    for (const auto& t : templates) prompts.push_back(clip::fill_template(t, c));
    const at::Tensor e = model->encode_text(tokenizer.tokenize(prompts, 77), /*normalize=*/true);
    const at::Tensor mean = e.mean(0);
    rows.push_back(mean / mean.norm());
  }
  const at::Tensor expected = at::stack(rows);
  EXPECT_LT(clip::test::report("classifier weights vs direct", classifier.weights(), expected), 1e-6);
  EXPECT_NEAR(classifier.weights().norm(2, 1).sub(1).abs().max().item<double>(), 0, 1e-6);

  const clip::TensorMap io = clip::read_safetensors(clip::test::data("vit_tiny.io.safetensors")).tensors;
  const at::Tensor features = model->encode_image(io.at("image"));
  const at::Tensor direct = 100 * at::matmul(features / features.norm(2, -1, true), expected.t());
  EXPECT_LT(clip::test::report("classifier logits vs direct", classifier.logits(features), direct), 1e-6);
  const clip::Prediction p = classifier.classify(features, 5);
  EXPECT_EQ(p.top_indices.size(1), 3);  // k capped at the class count
  EXPECT_NEAR(p.probabilities.sum(1).sub(1).abs().max().item<double>(), 0, 1e-6);
  EXPECT_TRUE(at::all(p.top_probabilities.narrow(1, 0, 2) >= p.top_probabilities.narrow(1, 1, 2)).item<bool>());
  EXPECT_TRUE(at::equal(p.top_indices.select(1, 0), direct.argmax(1)));

  TempDir tmp;
  classifier.save(tmp / "cls.safetensors");
  const auto loaded = clip::ZeroShotClassifier::load(tmp / "cls.safetensors");
  EXPECT_TRUE(at::equal(loaded.weights(), classifier.weights()));
  EXPECT_EQ(loaded.classes(), classes);
  EXPECT_EQ(loaded.templates(), templates);
  EXPECT_THROW(clip::ZeroShotClassifier::load(clip::test::data("vit_tiny.safetensors")), clip::Error);
}

// A model trained with the sigmoid loss (a logit bias: SigLIP, or clip_train --loss siglip) scores each class on its
// own: sigmoid(exp(logit_scale) * cosine + logit_bias), with the model's learned values; the ranking is the softmax
// classifier's.
TEST(Classifier, SigmoidModelsScoreEachClassOnItsOwn) {
  clip::ModelConfig config = clip::load_model_config(clip::test::data("vit_tiny.json"));
  config.init_logit_bias = -10.0;
  clip::CLIP model(config);
  clip::LoadStateDictOptions keep_bias;
  keep_bias.allow_missing = true;  // logit_bias: the fixture is a CLIP model
  clip::load_state_dict(*model, clip::read_safetensors(clip::test::data("vit_tiny.safetensors")).tensors,
                        "vit_tiny.safetensors", keep_bias);
  {
    torch::NoGradGuard no_grad;
    model->logit_scale.fill_(std::log(20.0));
    model->logit_bias.fill_(-2.0);
  }
  model->eval();
  const HashTokenizer tokenizer;
  const std::vector<std::string> classes = {"cat", "dog", "bird"};
  const std::vector<std::string> templates = {"a photo of a {}.", "a drawing of a {}."};
  const auto sigmoid = clip::ZeroShotClassifier::build(*model, tokenizer, classes, templates);
  ASSERT_TRUE(sigmoid.sigmoid());
  EXPECT_NEAR(sigmoid.scale(), 20.0, 1e-5);  // exp of the fp32 logit_scale
  EXPECT_EQ(*sigmoid.bias(), -2.0);
  const clip::ZeroShotClassifier softmax(sigmoid.weights(), classes, templates);  // the same weights, softmax
  torch::NoGradGuard no_grad;
  const clip::TensorMap io = clip::read_safetensors(clip::test::data("vit_tiny.io.safetensors")).tensors;
  const at::Tensor features = model->encode_image(io.at("image"));
  const at::Tensor cosine = at::matmul(clip::l2_normalize(features), sigmoid.weights().t());
  const clip::Prediction p = sigmoid.classify(features, 3);
  EXPECT_LT(clip::test::report("sigmoid probabilities vs direct", p.probabilities, at::sigmoid(20.0 * cosine - 2.0)),
            1e-6);
  EXPECT_GT(p.probabilities.sum(1).sub(1).abs().max().item<double>(), 1e-3);  // not a distribution over the classes
  EXPECT_TRUE(at::equal(p.top_indices, softmax.classify(features, 3).top_indices));
  TempDir tmp;
  sigmoid.save(tmp / "sigmoid.safetensors");
  const auto loaded = clip::ZeroShotClassifier::load(tmp / "sigmoid.safetensors");
  ASSERT_TRUE(loaded.sigmoid());
  EXPECT_EQ(*loaded.bias(), -2.0);
  EXPECT_EQ(loaded.scale(), sigmoid.scale());
  EXPECT_TRUE(at::equal(loaded.classify(features, 3).probabilities, p.probabilities));
}

TEST(Prompts, SetsFilesAndClassNames) {
  const clip::PromptSet imagenet = clip::load_prompt_set("openai_imagenet");
  EXPECT_EQ(imagenet.templates.size(), 80u);
  EXPECT_EQ(imagenet.classes.size(), 1000u);
  EXPECT_EQ(clip::load_prompt_set("simple").templates, std::vector<std::string>{"a photo of a {}."});
  EXPECT_EQ(clip::load_prompt_set("CIFAR10").classes.size(), 10u);
  EXPECT_EQ(clip::fill_template("a {} of {}", "x"), "a x of x");
  TempDir tmp;
  std::ofstream(tmp / "lines.txt") << "a {} here\n\nanother {}\n";
  EXPECT_EQ(clip::load_prompt_set(tmp / "lines.txt").templates.size(), 2u);
  std::ofstream(tmp / "bad.json") << R"(["a {}", "no slot"])";
  try {
    clip::load_prompt_set(tmp / "bad.json");
    ADD_FAILURE();
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("template 2 \"no slot\" has no {}"), std::string::npos) << e.what();
  }
  EXPECT_THROW(clip::load_prompt_set("no_such_set"), clip::Error);
  std::ofstream(tmp / "map.tsv") << "n01\tgoldfish\nn02\tshark\n";
  EXPECT_EQ(clip::map_class_names({"n01", "n02"}, tmp / "map.tsv"), (std::vector<std::string>{"goldfish", "shark"}));
  EXPECT_THROW(clip::map_class_names({"n01", "n03"}, tmp / "map.tsv"), clip::Error);
  std::ofstream(tmp / "list.txt") << "goldfish\nshark\n";
  EXPECT_EQ(clip::map_class_names({"b", "a"}, tmp / "list.txt"), (std::vector<std::string>{"goldfish", "shark"}));
  EXPECT_EQ(clip::parse_class_list(" cat, dog "), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_THROW(clip::parse_class_list("cat,,dog"), clip::Error);
}

using Result = clip::test::CommandResult;
Result run(const std::string& command) { return clip::test::run_command(command + " 2>&1"); }

std::string tool(const std::string& name) { return std::string(CLIP_BIN_DIR) + "/" + name; }

// A tiny random model with the CLIP BPE vocabulary, so the tools' default tokenizer fits it.
std::string tiny_bpe_model(const TempDir& tmp) {
  clip::ModelConfig config = clip::load_model_config(clip::test::data("vit_tiny.json"));
  config.text.vocab_size = 49408;
  config.text.eos_token_id = 49407;
  at::manual_seed(0);
  clip::CLIP model(config);
  const std::string path = tmp / "tiny_bpe.safetensors";
  clip::save_model(*model, path);
  return path;
}

// cat/ and dog/ with 3 + 4 readable images (one in a nested folder), a truncated JPEG, a text file named .png,
// a hidden image and a non-image file.
std::string labeled_folder(const TempDir& tmp) {
  const fs::path root = tmp / "photos";
  const fs::path src = clip::test::data("preprocess/images");
  fs::create_directories(root / "cat");
  fs::create_directories(root / "dog/nested");
  fs::copy_file(src / "chelsea.png", root / "cat/chelsea.png");
  fs::copy_file(src / "chelsea_q85.jpg", root / "cat/chelsea.jpg");
  fs::copy_file(src / "coffee.png", root / "cat/coffee.png");
  fs::copy_file(src / "horse.png", root / "dog/horse.png");
  fs::copy_file(src / "rocket.jpg", root / "dog/rocket.jpg");
  fs::copy_file(src / "camera.png", root / "dog/nested/camera.png");
  fs::copy_file(src / "fruits.jpg", root / "dog/fruits.jpg");
  fs::copy_file(src / "truncated.jpg", root / "dog/truncated.jpg");
  std::ofstream(root / "cat/notes.png") << "not an image";
  fs::copy_file(src / "horse.png", root / "cat/.hidden.png");
  std::ofstream(root / "dog/readme.txt") << "ignored";
  return root.string();
}

TEST(ClipZeroshot, LabeledFolderEndToEnd) {
  TempDir tmp;
  const std::string model = tiny_bpe_model(tmp);
  const std::string photos = labeled_folder(tmp);
  const std::string preds = tmp / "preds.csv";
  const Result r = run(tool("clip_zeroshot") + " --checkpoint " + model + " --images " + photos +
                       " --templates simple --topk 2 --batch-size 3 --output " + preds + " --confusion " +
                       (tmp / "confusion.csv") + " --save-classifier " + (tmp / "cls.safetensors"));
  std::printf("%s", r.output.c_str());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("7 classified, 2 skipped"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("top-1 accuracy"), std::string::npos);
  EXPECT_NE(r.output.find("top-2 accuracy: 100.00%"), std::string::npos) << "two classes: always in the top 2";
  EXPECT_NE(r.output.find("truncated.jpg"), std::string::npos) << "the corrupt file is reported";
  EXPECT_NE(r.output.find("notes.png"), std::string::npos) << "the fake image is reported";
  EXPECT_EQ(r.output.find(".hidden.png"), std::string::npos) << "hidden files are ignored";
  // Where the cores' time went: model, decoding and idle shares that add up to the whole.
  const std::smatch split = [&] {
    std::smatch m;
    std::regex_search(r.output, m, std::regex(R"(cpu: (\d+) cores? x [0-9.]+ s: model (\d+)%, decoding (\d+)%, idle (\d+)%)"));
    return m;
  }();
  ASSERT_FALSE(split.empty()) << r.output;
  const int shares = std::stoi(split[2]) + std::stoi(split[3]) + std::stoi(split[4]);
  EXPECT_GE(std::stoi(split[1]), 1);
  EXPECT_NEAR(shares, 100, 2) << "rounded shares of one whole";
  std::ifstream in(preds);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "path,label,top1,p1,top2,p2");
  int rows = 0;
  while (std::getline(in, line)) {
    ++rows;
    std::vector<std::string> f;
    std::stringstream s(line);
    for (std::string x; std::getline(s, x, ',');) f.push_back(x);
    ASSERT_EQ(f.size(), 6u) << line;
    const double p1 = std::stod(f[3]), p2 = std::stod(f[5]);
    EXPECT_GE(p1, p2) << "top-k sorted";
    EXPECT_NEAR(p1 + p2, 1.0, 1e-5) << "two classes: the probabilities sum to 1";
  }
  EXPECT_EQ(rows, 7);
  EXPECT_TRUE(fs::exists(tmp / "confusion.csv"));
  // The saved classifier gives the same predictions.
  const Result again = run(tool("clip_zeroshot") + " --checkpoint " + model + " --images " + photos +
                           " --load-classifier " + (tmp / "cls.safetensors") + " --output " + (tmp / "again.csv") +
                           " --topk 2 --batch-size 3");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  std::ifstream a(preds), b(tmp / "again.csv");
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(a)), std::istreambuf_iterator<char>()),
            std::string((std::istreambuf_iterator<char>(b)), std::istreambuf_iterator<char>()));

  const Result strict = run(tool("clip_zeroshot") + " --checkpoint " + model + " --images " + photos +
                            " --templates simple --strict");
  EXPECT_NE(strict.exit_code, 0);
  EXPECT_NE(strict.output.find("--strict"), std::string::npos) << strict.output;
}

TEST(ClipZeroshot, UnlabeledFoldersAndErrors) {
  TempDir tmp;
  const std::string model = tiny_bpe_model(tmp);
  const std::string photos = labeled_folder(tmp);
  const Result r = run(tool("clip_zeroshot") + " --checkpoint " + model + " --images " + photos +
                       " --classes cat,dog,bird --templates simple --output " + (tmp / "p.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("accuracy"), std::string::npos) << "no labels, no accuracy";
  std::ifstream in(tmp / "p.jsonl");
  int rows = 0;
  for (std::string line; std::getline(in, line); ++rows) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["topk"].size(), 3u);
    EXPECT_FALSE(j.contains("label"));
  }
  EXPECT_EQ(rows, 7);
  fs::create_directories(tmp / "empty");
  const Result empty = run(tool("clip_zeroshot") + " --checkpoint " + model + " --images " + (tmp / "empty") +
                           " --classes a,b");
  EXPECT_NE(empty.exit_code, 0);
  EXPECT_NE(empty.output.find("holds no images"), std::string::npos) << empty.output;
  const Result no_classes = run(tool("clip_zeroshot") + " --checkpoint " + model + " --images " + (tmp / "photos/dog") +
                                " --templates simple");
  EXPECT_NE(no_classes.exit_code, 0);
  EXPECT_NE(no_classes.output.find("--classes"), std::string::npos) << no_classes.output;
}

TEST(ClipEmbed, ImagesAndTextsToNormalizedEmbeddings) {
  TempDir tmp;
  const std::string model = tiny_bpe_model(tmp);
  const std::string photos = labeled_folder(tmp);
  std::ofstream(tmp / "texts.jsonl") << "{\"text\": \"a cat\"}\n{\"text\": \"a dog on a sofa\"}\n";
  const Result r = run(tool("clip_embed") + " --checkpoint " + model + " --images " + photos + " --texts " +
                       (tmp / "texts.jsonl") + " --output " + (tmp / "e.safetensors") + " --batch-size 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const clip::Safetensors out = clip::read_safetensors(tmp / "e.safetensors");
  const at::Tensor images = out.tensors.at("image_embeddings"), texts = out.tensors.at("text_embeddings");
  EXPECT_EQ(images.size(0), 7);
  EXPECT_EQ(texts.size(0), 2);
  EXPECT_NEAR(images.norm(2, 1).sub(1).abs().max().item<double>(), 0, 1e-5);
  const auto names = nlohmann::json::parse(out.metadata.at("images"));
  ASSERT_EQ(names.size(), 7u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(nlohmann::json::parse(out.metadata.at("texts"))[1], "a dog on a sofa");
  EXPECT_EQ(nlohmann::json::parse(out.metadata.at("skipped")).size(), 2u);
}

}  // namespace
