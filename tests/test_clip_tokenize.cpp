// clip_tokenize run as a user would: the fixture corpus through JSONL, --plain, train, --bench, and every bad
// input answered with one line naming the line number.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"

namespace fs = std::filesystem;

namespace {

using Result = clip::test::CommandResult;
Result run(const std::string& command) { return clip::test::run_command(command); }

std::string tool() { return std::string(CLIP_BIN_DIR) + "/clip_tokenize"; }

std::string temp_file(const std::string& name, const std::string& content = "") {
  const std::string path =
      (fs::temp_directory_path() / ("clip_tokenize_" + std::to_string(::getpid()) + "_" + name)).string();
  if (!content.empty()) std::ofstream(path, std::ios::binary) << content;
  return path;
}

std::vector<nlohmann::json> lines_of(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

// A failure: non-zero exit, one line on stderr naming the problem.
void expect_failure(const std::string& args, const std::string& input, const std::string& needle) {
  const std::string in = temp_file("input");
  std::ofstream(in, std::ios::binary) << input;
  const Result r = run(tool() + " " + args + " < " + in + " 2>&1 >/dev/null");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
  EXPECT_LE(std::count(r.output.begin(), r.output.end(), '\n'), 2) << r.output;
  std::printf("[ message  ] %s", r.output.c_str());
  fs::remove(in);
}

}  // namespace

TEST(ClipTokenize, ReproducesTheReferenceCases) {
  const std::string cases = clip::test::data("clip_bpe_cases.jsonl");
  const Result r = run(tool() + " --truncate < " + cases);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<nlohmann::json> got = lines_of(r.output);
  std::ifstream in(cases);
  std::string line;
  size_t i = 0, matched = 0;
  while (std::getline(in, line)) {
    const nlohmann::json expected = nlohmann::json::parse(line);
    ASSERT_LT(i, got.size());
    const bool same = got[i]["ids"] == expected["ids"] && got[i]["bpe"] == expected["bpe"];
    matched += same;
    EXPECT_TRUE(same) << "line " << i + 1 << ": " << got[i].dump();
    ++i;
  }
  EXPECT_EQ(got.size(), i);
  std::printf("[ measured ] clip_tokenize: %zu/%zu reference lines identical (ids and bpe)\n", matched, i);
}

TEST(ClipTokenize, PlainLinesAndContextLength) {
  const std::string in = temp_file("plain.txt", "A photo of a CAT.\n\nword word word word word\n");
  const Result r = run(tool() + " --plain --context-length 5 --truncate < " + in);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto got = lines_of(r.output);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0]["ids"], nlohmann::json({49406, 320, 1125, 539, 49407}));
  EXPECT_EQ(got[0]["bpe"], nlohmann::json({320, 1125, 539, 320, 2368, 269}));  // untruncated
  EXPECT_EQ(got[1]["ids"], nlohmann::json({49406, 49407}));
  EXPECT_EQ(got[1]["bpe"], nlohmann::json::array());
  EXPECT_EQ(got[2]["bpe"].size(), 5u);
  fs::remove(in);
}

TEST(ClipTokenize, BadLinesNameTheirLineNumber) {
  expect_failure("", "{\"text\": \"ok\"}\nnot json\n", "clip_tokenize: error: line 2: not valid JSON");
  expect_failure("", "{\"text\": \"ok\"}\n{\"txt\": \"x\"}\n", "line 2: expected an object with a \"text\" string");
  expect_failure("", "{\"text\": 5}\n", "line 1: expected an object with a \"text\" string, like {\"text\": \"a photo of a dog\"}; got {\"text\": 5}");
  expect_failure("", std::string(100000, '[') + std::string(100000, ']') + "\n", "line 1: JSON nested deeper than 16 levels");
  expect_failure("", "\n", "line 1: not valid JSON");
  expect_failure("", "{\"text\": \"a\"}\n{\"text\": \"\\ud800\"}\n", "line 2: not valid JSON");  // a lone surrogate
  expect_failure("--plain", "fine\nalso fine\nbad \xFF\n", "line 3: invalid UTF-8 at byte 4 (0xFF)");
  std::string long_line = "{\"text\": \"";
  for (int i = 0; i < 80; ++i) long_line += "word ";
  expect_failure("", "{\"text\": \"a\"}\n" + long_line + "\"}\n",
                 "line 2: 82 tokens with start and end, more than the context length 77");
  expect_failure("--chunk 1", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n" + long_line + "\"}\n", "line 3: 82 tokens");
  expect_failure("--vocab /nonexistent.gz", "", "--vocab: File does not exist: /nonexistent.gz");
  expect_failure("--vocab " + clip::test::data("vit_tiny.json") + " --plain", "a\n",
                 "vit_tiny.json: line 2: expected two tokens");
  expect_failure("--context-length 1", "", "--context-length");
  expect_failure("--frobnicate", "", "frobnicate");
  expect_failure("--bench", "", "--bench: no texts on stdin");
}

TEST(ClipTokenize, HelpListsEveryFlagWithDefaults) {
  const Result r = run(tool() + " --help 2>&1");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--vocab", "--spm", "--lowercase", "--context-length", "--truncate", "--plain",
                           "--no-fix-text", "--threads", "--chunk", "--bench", "--bench-seconds", "train"}) {
    EXPECT_NE(r.output.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(r.output.find("77"), std::string::npos) << "default context length shown";
  const Result t = run(tool() + " train --help 2>&1");
  EXPECT_EQ(t.exit_code, 0);
  for (const char* flag : {"--input", "--output", "--vocab-size", "--model-type", "--character-coverage", "--lowercase",
                           "--max-sentences", "--threads", "8000", "unigram"}) {
    EXPECT_NE(t.output.find(flag), std::string::npos) << flag;
  }
}

TEST(ClipTokenize, TrainThenTokenizeWithSentencePiece) {
  std::string captions;
  const char* nouns[] = {"cat", "dog", "boat", "tree", "house", "bird"};
  const char* colours[] = {"red", "green", "blue", "white"};
  for (int i = 0; i < 600; ++i)
    captions += std::string("a ") + colours[i % 4] + " " + nouns[(i / 4) % 6] + " in the park\n";
  const std::string input = temp_file("captions.txt", captions);
  const std::string model = temp_file("spm.model");
  const Result t = run(tool() + " train --input " + input + " --output " + model + " --vocab-size 24 2>&1");
  ASSERT_EQ(t.exit_code, 0) << t.output;
  std::printf("[ measured ] %s", t.output.c_str());
  EXPECT_NE(t.output.find("trained a 24-piece unigram model on 600 captions"), std::string::npos) << t.output;
  const std::string in = temp_file("spm_in.jsonl", "{\"text\": \"a red cat in the park\"}\n");
  const Result r = run(tool() + " --spm " + model + " < " + in);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto got = lines_of(r.output);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["ids"].front(), 2);
  EXPECT_EQ(got[0]["ids"].back(), 3);
  for (const auto& id : got[0]["bpe"]) EXPECT_LT(id.get<int>(), 24);
  expect_failure("train --input " + input + " --output " + model + " --vocab-size 5000", "",
                 "Vocabulary size too high");
  expect_failure("--spm " + model + " --vocab " + model, "", "excludes --");
  expect_failure("train --input /nonexistent.txt --output x.model", "", "--input: File does not exist");
  for (const auto& f : {input, model, in}) fs::remove(f);
}

TEST(ClipTokenize, BenchPrintsTokensPerSecond) {
  const Result r = run(tool() + " --bench --bench-seconds 0.5 < " + clip::test::data("clip_bpe_cases.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::printf("[ measured ] clip_tokenize --bench (reference corpus):\n%s", r.output.c_str());
  EXPECT_NE(r.output.find("tokens per pass 3334"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cold cache: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("warm cache: "), std::string::npos) << r.output;
}
