// clip_tokenize: texts (JSONL or plain lines on stdin) -> token ids (JSONL on stdout); `train` makes a
// SentencePiece vocabulary from captions; --bench measures tokens/s.
#include <ATen/Parallel.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "clip/text/text_lines.h"
#include "clip/text/clip_bpe.h"
#include "clip/text/sentencepiece.h"
#include "clip/util/error.h"
#include "tool_main.h"
#include "cli.h"

namespace {

struct Params {
  std::string vocab;
  std::string spm;
  std::string hf_folder;
  std::string clean;
  bool pad = false;
  bool lowercase = false;
  int64_t context_length = 77;
  bool truncate = false;
  bool plain = false;
  bool no_fix_text = false;
  int threads = 0;
  int64_t chunk = 8192;
  bool bench = false;
  double bench_seconds = 2.0;
};

struct TrainParams {
  std::string input;
  std::string output;
  int64_t vocab_size = 8000;
  std::string model_type = "unigram";
  double character_coverage = 0.9995;
  bool lowercase = false;
  int64_t max_sentences = 0;
  int64_t threads = 1;
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::unique_ptr<clip::Tokenizer> make_tokenizer(const Params& p) {
  if (!p.spm.empty() || !p.hf_folder.empty()) {
    clip::SentencePieceOptions options =
        p.hf_folder.empty() ? clip::SentencePieceOptions(p.spm) : clip::hf_sentencepiece_options(p.hf_folder);
    // open_clip's clean runs before the HF tokenizer (SiglipTokenizer canonicalizes again after it).
    if (!p.clean.empty()) options.clean(clip::parse_text_clean(p.clean));
    return std::make_unique<clip::SentencePieceTokenizer>(options.lowercase(p.lowercase));
  }
  clip::ClipBpeOptions options;
  options.vocab_path = p.vocab;
  options.fix_text = !p.no_fix_text;
  return std::make_unique<clip::ClipBpeTokenizer>(options);
}

// Reads up to `max` texts from stdin; `line` counts the lines read so far. Returns false at the end of input.
bool read_texts(const Params& p, int64_t max, size_t& line, std::vector<std::string>& texts) {
  texts.clear();
  std::string raw;
  while (static_cast<int64_t>(texts.size()) < max && std::getline(std::cin, raw)) {
    ++line;
    if (p.plain) {
      texts.push_back(std::move(raw));
      continue;
    }
    try {
      texts.push_back(clip::text_from_json_line(raw, clip::str("line ", line)));
    } catch (const clip::Error& e) {
      clip::fail(e.what(), " (--plain reads raw text lines)");
    }
  }
  return !texts.empty();
}

void append_ids(std::string& out, const char* key, const std::vector<int64_t>& ids) {
  out += '"';
  out += key;
  out += "\": [";
  char number[24];
  for (size_t i = 0; i < ids.size(); ++i) {
    const int n = std::snprintf(number, sizeof(number), i == 0 ? "%lld" : ", %lld", static_cast<long long>(ids[i]));
    out.append(number, static_cast<size_t>(n));
  }
  out += ']';
}

int tokenize_stream(const Params& p) {
  if (p.threads > 0) at::set_num_threads(p.threads);
  const std::unique_ptr<clip::Tokenizer> tokenizer = make_tokenizer(p);
  std::vector<std::string> texts;
  std::string out;
  size_t line = 0;
  while (true) {
    const size_t first_line = line + 1;
    if (!read_texts(p, p.chunk, line, texts)) break;
    std::vector<std::vector<int64_t>> bpe;
    try {
      bpe = tokenizer->encode_batch(texts);
      out.clear();
      for (size_t i = 0; i < texts.size(); ++i) {
        std::vector<int64_t> ids = tokenizer->frame(bpe[i], p.context_length, p.truncate, i);
        if (p.pad) {
          std::vector<int64_t> row(static_cast<size_t>(p.context_length));
          tokenizer->pad_into(ids, p.context_length, row.data());
          ids.swap(row);
        }
        out += '{';
        append_ids(out, "ids", ids);
        out += ", ";
        append_ids(out, "bpe", bpe[i]);
        out += "}\n";
      }
    } catch (const clip::TextError& e) {
      clip::fail("line ", first_line + e.index(), ": ", e.reason());
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  std::fflush(stdout);
  return 0;
}

int bench(const Params& p) {
  std::vector<std::string> texts, chunk;
  size_t line = 0;
  while (read_texts(p, p.chunk, line, chunk)) texts.insert(texts.end(), chunk.begin(), chunk.end());
  if (texts.empty()) clip::fail("--bench: no texts on stdin");
  at::set_num_threads(p.threads > 0 ? p.threads : 1);

  const Clock::time_point load_start = Clock::now();
  const std::unique_ptr<clip::Tokenizer> tokenizer = make_tokenizer(p);
  const double load = seconds_since(load_start);
  const auto* bpe = dynamic_cast<const clip::ClipBpeTokenizer*>(tokenizer.get());

  std::vector<int64_t> ids;
  auto one_pass = [&] {
    size_t tokens = 0;
    for (const std::string& text : texts) {
      ids.clear();
      tokenizer->encode(text, ids);
      tokens += ids.size();
    }
    return tokens;
  };
  // Medians of per-pass times, so that other processes on the machine do not skew the figure.
  auto median_rate = [&](bool cold, size_t& passes, size_t& tokens) {
    std::vector<double> times;
    const Clock::time_point start = Clock::now();
    while (times.size() < 5 || (seconds_since(start) < p.bench_seconds / 2 && times.size() < 100000)) {
      if (cold && bpe != nullptr) bpe->clear_cache();  // as a freshly made tokenizer: the reference's figure
      const Clock::time_point t = Clock::now();
      tokens = one_pass();
      times.push_back(seconds_since(t));
    }
    passes = times.size();
    std::sort(times.begin(), times.end());
    return tokens / times[times.size() / 2];
  };
  size_t cold_passes = 0, warm_passes = 0, tokens = 0;
  const double cold = median_rate(true, cold_passes, tokens);
  const double warm = median_rate(false, warm_passes, tokens);
  std::printf("texts %zu, tokens per pass %zu, vocabulary load %.1f ms\n", texts.size(), tokens, load * 1e3);
  std::printf("cold cache: %.0f tokens/s (median of %zu passes, each from an empty cache, one thread)\n", cold,
              cold_passes);
  std::printf("warm cache: %.0f tokens/s (median of %zu passes, one thread)\n", warm, warm_passes);
  if (p.threads > 1) {
    const Clock::time_point t = Clock::now();
    size_t batch_tokens = 0, batches = 0;
    while (batches < 3 || seconds_since(t) < p.bench_seconds / 2) {
      for (const auto& row : tokenizer->encode_batch(texts)) batch_tokens += row.size();
      ++batches;
    }
    std::printf("encode_batch, %d threads: %.0f tokens/s\n", p.threads, batch_tokens / seconds_since(t));
  }
  return 0;
}

int train(const TrainParams& t) {
  const Clock::time_point start = Clock::now();
  const clip::SentencePieceTrainResult result =
      clip::train_sentencepiece(clip::SentencePieceTrainOptions(t.input, t.output)
                                    .vocab_size(t.vocab_size)
                                    .model_type(t.model_type)
                                    .character_coverage(t.character_coverage)
                                    .lowercase(t.lowercase)
                                    .max_sentences(t.max_sentences)
                                    .threads(t.threads));
  std::cerr << "clip_tokenize: trained a " << result.vocab_size << "-piece " << t.model_type << " model on "
            << result.sentences << " captions in " << seconds_since(start) << " s; wrote " << t.output << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  Params p;
  TrainParams t;
  CLI::App app{
      "clip_tokenize: texts to token ids.\n"
      "Reads one JSON object {\"text\": ...} a line on stdin (--plain: raw text lines) and writes one\n"
      "{\"ids\": [...], \"bpe\": [...]} a line on stdout, in order: `ids` framed by the start and end tokens\n"
      "(padding removed), `bpe` the ids of the text alone, untruncated. A bad line is an error naming it.\n"
      "`clip_tokenize train ...` makes a SentencePiece vocabulary from a captions file."};
  auto* vocab = app.add_option("--vocab", p.vocab,
                               "CLIP BPE merges file (default: bpe_simple_vocab_16e6.txt.gz shipped with libclip)")
                    ->check(CLI::ExistingFile);
  auto* spm = app.add_option("--spm", p.spm, "SentencePiece .model to use instead of the CLIP BPE")
      ->check(CLI::ExistingFile)
      ->excludes(vocab);
  app.add_option("--hf-tokenizer", p.hf_folder,
                            "a Hugging Face tokenizer folder with a SentencePiece model (SigLIP's spiece.model, "
                            "SigLIP 2's Gemma tokenizer.model) and its tokenizer_config.json: tokenize as "
                            "transformers does")
                 ->check(CLI::ExistingDirectory)
                 ->excludes(vocab)
                 ->excludes(spm);
  app.add_option("--clean", p.clean,
                 "with --spm or --hf-tokenizer: clean texts first as open_clip's HFTokenizer (whitespace, lower, "
                 "canonicalize: SigLIP's) or not (none)")
      ->check(CLI::IsMember({"none", "whitespace", "lower", "canonicalize"}));
  app.add_flag("--pad", p.pad, "write `ids` padded to --context-length, as the model reads them");
  app.add_flag("--lowercase", p.lowercase, "with --spm: lowercase texts (Python's str.lower) before encoding");
  app.add_option("--context-length", p.context_length, "positions per sequence, start and end tokens included")
      ->capture_default_str()
      ->check(clip::tools::int_range(int64_t{2}, int64_t{1} << 30));
  app.add_flag("--truncate", p.truncate,
               "cut long texts to the context (the last kept id is the end token); default: error");
  app.add_flag("--plain", p.plain, "read raw text lines instead of JSONL");
  app.add_flag(
      "--no-fix-text", p.no_fix_text,
      "CLIP BPE: skip the ftfy subset (NFC, quotes, ligatures, widths, controls) before the reference's cleaning");
  app.add_option("--threads", p.threads, "CPU threads (0: LibTorch's default; --bench: 1)")
      ->capture_default_str()
      ->check(clip::tools::non_negative_int());
  app.add_option("--chunk", p.chunk, "lines tokenized together (in parallel) before writing")
      ->capture_default_str()
      ->check(clip::tools::positive_int());
  app.add_flag("--bench", p.bench, "read all texts, then print tokens/s with a cold and a warm word cache");
  app.add_option("--bench-seconds", p.bench_seconds, "time --bench spends measuring")
      ->capture_default_str()
      ->check(clip::tools::positive_number());

  CLI::App* train_cmd = app.add_subcommand("train", "train a SentencePiece vocabulary on captions (one a line)");
  train_cmd->add_option("--input", t.input, "UTF-8 captions file, one caption a line")
      ->required()
      ->check(CLI::ExistingFile);
  train_cmd->add_option("--output", t.output, "the .model file to write")->required();
  train_cmd->add_option("--vocab-size", t.vocab_size, "pieces in the vocabulary, special pieces included")
      ->capture_default_str()
      ->check(clip::tools::int_range(int64_t{8}, int64_t{1} << 22));
  train_cmd->add_option("--model-type", t.model_type, "unigram | bpe | char | word")
      ->capture_default_str()
      ->check(CLI::IsMember({"unigram", "bpe", "char", "word"}));
  train_cmd->add_option("--character-coverage", t.character_coverage, "share of characters kept as pieces")
      ->capture_default_str()
      ->check(clip::tools::number_range(0.5, 1.0));
  train_cmd->add_flag("--lowercase", t.lowercase, "case-fold captions (built into the model's normalizer)");
  train_cmd->add_option("--max-sentences", t.max_sentences, "train on a sample of this many captions (0: all)")
      ->capture_default_str()
      ->check(clip::tools::non_negative_int());
  train_cmd->add_option("--threads", t.threads, "training threads")->capture_default_str()->check(clip::tools::positive_int());
  app.require_subcommand(0, 1);

  if (const auto done = clip::tools::parse_flags(app, argc, argv, "clip_tokenize")) return *done;
  return clip::tools::run_tool("clip_tokenize", [&] {
    if (*train_cmd) return train(t);
    return p.bench ? bench(p) : tokenize_stream(p);
  });
}
