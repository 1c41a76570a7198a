#include "clip/text/sentencepiece.h"

#include <dlfcn.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "text/sentencepiece_module.h"
#include "text/text_clean.h"
#include "text/unicode.h"
#include "util/atomic_file.h"
#include "util/file.h"
#include "util/json.h"

namespace clip {
namespace {

constexpr const char* kModule = "libclip_sentencepiece.so";

// Opens libclip_sentencepiece.so (beside libclip, else on the loader's path) privately; see
// sentencepiece_module.h for why SentencePiece is not linked into libclip.
const text::SentencePieceApi& api() {
  static const text::SentencePieceApi* table = [] {
    std::vector<std::string> candidates;
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&api), &info) != 0 && info.dli_fname != nullptr) {
      candidates.push_back((std::filesystem::path(info.dli_fname).parent_path() / kModule).string());
    }
    candidates.emplace_back(kModule);
    std::string errors;
    for (const std::string& path : candidates) {
      void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (handle == nullptr) {
        errors += (errors.empty() ? "" : "; ") + std::string(dlerror());
        continue;
      }
      using Entry = const text::SentencePieceApi* (*)();
      const auto entry = reinterpret_cast<Entry>(dlsym(handle, "clip_sentencepiece_api"));
      const text::SentencePieceApi* t = entry != nullptr ? entry() : nullptr;
      if (t == nullptr || t->version != text::SentencePieceApi::kVersion) {
        fail(path, ": not the SentencePiece module of this libclip (version mismatch)");
      }
      return t;
    }
    fail("SentencePiece support is not available: cannot load ", kModule, " (", errors,
         "); it is built and installed beside libclip");
  }();
  return *table;
}

}  // namespace

struct SentencePieceTokenizer::Impl {
  const text::SentencePieceApi& api = clip::api();
  std::unique_ptr<void, void (*)(void*)> model{nullptr, api.release};
  // split_special: the pieces taken whole from the text, by their first byte, longest first.
  std::vector<std::vector<std::pair<std::string, int64_t>>> specials_by_byte;
  // siglip: SiglipTokenizer's special tokens (longest first), its unk token, how many pieces that
  // token alone encodes to, and the id of the bare "\u2581" piece (-1 if none).
  std::vector<std::pair<std::u32string, int64_t>> siglip_specials;
  std::string unk_text;
  size_t unk_length = 0;
  int64_t space_id = -1;
};

const char* to_string(TextClean clean) {
  switch (clean) {
    case TextClean::none: return "none";
    case TextClean::whitespace: return "whitespace";
    case TextClean::lower: return "lower";
    case TextClean::canonicalize: return "canonicalize";
  }
  return "?";
}

TextClean parse_text_clean(const std::string& name) {
  for (const TextClean c : {TextClean::none, TextClean::whitespace, TextClean::lower, TextClean::canonicalize}) {
    if (name == to_string(c)) return c;
  }
  fail("text cleaning '", name, "' is not one of whitespace, lower, canonicalize, none");
}

SentencePieceTokenizer::SentencePieceTokenizer(const SentencePieceOptions& options)
    : impl_(std::make_unique<Impl>()), options_(options) {
  const std::string& path = options.model_path();
  if (!std::filesystem::exists(path)) fail(path, ": no such SentencePiece model");
  std::string error;
  impl_->model.reset(impl_->api.load(path, &error));
  if (!impl_->model) fail(path, ": not a SentencePiece model (", error, ")");
  const void* model = impl_->model.get();
  const int64_t size = impl_->api.piece_size(model);
  auto pick = [&](int64_t given, const std::string& name, int model_id, const char* what, const char* option) {
    int64_t id = given >= 0 ? given : model_id;
    if (given < 0 && !name.empty()) {
      id = impl_->api.piece_to_id(model, name);
      if (id < 0) fail(path, ": the model has no piece '", name, "' for the ", what, " token");
    }
    if (id < 0) fail(path, ": the model has no ", what, " piece; give its id with ", option);
    if (id >= size) fail(path, ": ", what, " id ", id, " is outside the model's ", size, " pieces");
    return id;
  };
  framing_ = Framing{options.add_start(), options.add_end(), options.pad_left()};
  // A token the framing leaves out is still named when the model has it (decode drops it), and need not exist.
  auto known = [&](const std::string& name, int model_id) -> int64_t {
    const int64_t id = name.empty() ? -1 : impl_->api.piece_to_id(model, name);
    return id >= 0 ? id : model_id;
  };
  start_id_ = options.add_start() || options.start_id() >= 0
                  ? pick(options.start_id(), options.start_piece(), impl_->api.bos_id(model), "start (bos)", "start_id")
                  : known(options.start_piece(), impl_->api.bos_id(model));
  end_id_ = options.add_end() || options.end_id() >= 0
                ? pick(options.end_id(), options.end_piece(), impl_->api.eos_id(model), "end (eos)", "end_id")
                : known(options.end_piece(), impl_->api.eos_id(model));
  pad_id_ = pick(options.pad_id(), options.pad_piece(), std::max(impl_->api.pad_id(model), 0), "pad", "pad_id");
  if (framing_.start && framing_.end && start_id_ == end_id_) fail(path, ": start and end ids are both ", start_id_);
  if (options.split_special()) {
    impl_->specials_by_byte.resize(256);
    for (int id = 0; id < size; ++id) {
      const int type = impl_->api.piece_type(model, id);
      if (type != text::SentencePieceApi::kPieceControl && type != text::SentencePieceApi::kPieceUnknown &&
          type != text::SentencePieceApi::kPieceUserDefined) {
        continue;
      }
      std::string piece = impl_->api.id_to_piece(model, id);
      if (piece.empty()) continue;
      impl_->specials_by_byte[static_cast<uint8_t>(piece[0])].emplace_back(std::move(piece), id);
    }
    for (auto& bucket : impl_->specials_by_byte) {
      std::stable_sort(bucket.begin(), bucket.end(),
                       [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    }
  }

  if (options.siglip()) {
    impl_->unk_text = options.unk_piece().empty() ? "<unk>" : options.unk_piece();
    std::vector<int64_t> unk;
    encode_piece(impl_->unk_text, unk);
    impl_->unk_length = unk.size();
    impl_->space_id = impl_->api.piece_to_id(model, "\u2581");
    std::vector<std::string> names{impl_->unk_text};
    if (end_id_ >= 0) names.push_back(impl_->api.id_to_piece(model, static_cast<int>(end_id_)));
    names.push_back(impl_->api.id_to_piece(model, static_cast<int>(pad_id_)));
    for (const std::string& name : names) {
      const int64_t id = impl_->api.piece_to_id(model, name);
      std::u32string chars;
      text::utf8_to_utf32(name, chars);
      const bool seen = std::any_of(impl_->siglip_specials.begin(), impl_->siglip_specials.end(),
                                    [&](const auto& s) { return s.first == chars; });
      if (id >= 0 && !chars.empty() && !seen) impl_->siglip_specials.emplace_back(chars, id);
    }
    std::stable_sort(impl_->siglip_specials.begin(), impl_->siglip_specials.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

// HF SiglipTokenizer.tokenize as transformers 5 runs it: "\u2581" + text.replace("\u2581", " "), split at its special
// tokens as written (each strips the whitespace beside it: AddedToken lstrip/rstrip), every other part
// canonicalized (text::siglip_canonicalize) and encoded as "<unk>" + part with the pieces of "<unk>" alone dropped (so
// SentencePiece's dummy prefix lands on "<unk>"); a leading bare "\u2581" before a special token is dropped.
void SentencePieceTokenizer::encode_siglip(std::string_view utf8, std::vector<int64_t>& ids) const {
  std::u32string text;
  text::utf8_to_utf32(utf8, text);
  for (char32_t& c : text) {
    if (c == U'\u2581') c = U' ';
  }
  text.insert(text.begin(), U'\u2581');
  struct Part {
    std::u32string text;
    int64_t special = -1;
  };
  std::vector<Part> parts;
  size_t begin = 0;
  for (size_t i = 0; i < text.size();) {
    const auto match = std::find_if(impl_->siglip_specials.begin(), impl_->siglip_specials.end(), [&](const auto& s) {
      return text.compare(i, s.first.size(), s.first) == 0;
    });
    if (match == impl_->siglip_specials.end()) {
      ++i;
      continue;
    }
    parts.push_back({text.substr(begin, i - begin)});
    parts.push_back({match->first, match->second});
    i += match->first.size();
    begin = i;
  }
  parts.push_back({text.substr(begin)});
  for (size_t k = 0; k < parts.size(); ++k) {
    if (parts[k].special < 0) continue;
    if (k + 1 < parts.size()) {  // rstrip: the text after loses its leading whitespace
      std::u32string& right = parts[k + 1].text;
      size_t n = 0;
      while (n < right.size() && text::is_python_space(right[n])) ++n;
      right.erase(0, n);
    }
    if (k > 0) {  // lstrip: the text before loses its trailing whitespace
      std::u32string& left = parts[k - 1].text;
      while (!left.empty() && text::is_python_space(left.back())) left.pop_back();
    }
  }
  const size_t first = ids.size();
  std::vector<bool> special;
  std::string part_utf8, cleaned;
  std::vector<int64_t> pieces;
  for (const Part& part : parts) {
    if (part.text.empty()) continue;
    if (part.special >= 0) {
      ids.push_back(part.special);
      special.push_back(true);
      continue;
    }
    text::utf32_to_utf8(part.text, part_utf8);
    text::siglip_canonicalize(part_utf8, cleaned);
    pieces.clear();
    encode_piece(impl_->unk_text + cleaned, pieces);
    const size_t drop = pieces.size() >= impl_->unk_length ? impl_->unk_length : 0;
    ids.insert(ids.end(), pieces.begin() + static_cast<std::ptrdiff_t>(drop), pieces.end());
    special.resize(ids.size() - first, false);
  }
  if (special.size() > 1 && ids[first] == impl_->space_id && special[1]) ids.erase(ids.begin() + first);
}

void SentencePieceTokenizer::encode_piece(std::string_view text, std::vector<int64_t>& ids) const {
  if (text.empty()) return;
  thread_local std::vector<int> pieces;
  std::string error;
  if (!impl_->api.encode(impl_->model.get(), text, &pieces, &error)) fail("SentencePiece encode: ", error);
  ids.insert(ids.end(), pieces.begin(), pieces.end());
}

void SentencePieceTokenizer::encode(std::string_view text, std::vector<int64_t>& ids) const {
  thread_local std::u32string chars;
  thread_local std::string cleaned, lowered;
  text::utf8_to_utf32(text, chars);  // SentencePiece would silently replace invalid UTF-8
  std::string_view input = text;
  if (options_.clean() != TextClean::none) {
    text::hf_clean_text(input, options_.clean(), cleaned);
    input = cleaned;
  }
  if (options_.siglip()) {
    encode_siglip(input, ids);
    return;
  }
  if (options_.lowercase()) {
    text::utf8_to_utf32(input, chars);
    text::lower_to_utf8(chars, lowered);
    input = lowered;
  }
  if (impl_->specials_by_byte.empty()) {
    encode_piece(input, ids);
    return;
  }
  // Hugging Face's added tokens: the leftmost, then longest, special piece in the text is taken whole; the text
  // between is encoded alone.
  size_t begin = 0;
  for (size_t i = 0; i < input.size();) {
    const auto& bucket = impl_->specials_by_byte[static_cast<uint8_t>(input[i])];
    const std::pair<std::string, int64_t>* found = nullptr;
    for (const auto& special : bucket) {
      if (input.compare(i, special.first.size(), special.first) == 0) {
        found = &special;
        break;
      }
    }
    if (found == nullptr) {
      ++i;
      continue;
    }
    encode_piece(input.substr(begin, i - begin), ids);
    ids.push_back(found->second);
    i += found->first.size();
    begin = i;
  }
  encode_piece(input.substr(begin), ids);
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  const int64_t size = vocab_size();
  std::vector<int> pieces;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    if (id < 0 || id >= size) fail("decode: id ", id, " at position ", i, " is outside the vocabulary [0, ", size, ")");
    if (id == start_id_ || id == end_id_ || id == pad_id_) continue;
    pieces.push_back(static_cast<int>(id));
  }
  std::string text, error;
  if (!impl_->api.decode(impl_->model.get(), pieces, &text, &error)) fail("SentencePiece decode: ", error);
  return text;
}

int64_t SentencePieceTokenizer::vocab_size() const { return impl_->api.piece_size(impl_->model.get()); }

std::string SentencePieceTokenizer::piece(int64_t id) const {
  if (id < 0 || id >= vocab_size()) fail("piece: id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
  return impl_->api.id_to_piece(impl_->model.get(), static_cast<int>(id));
}

namespace {

// A token in a tokenizer JSON file: a string, or an AddedToken object {"content": ...}; "" when absent or null.
std::string token_text(const nlohmann::json& j, const char* key, const std::string& file) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  fail(file, ": \"", key, "\" is neither a token string nor an object with its \"content\"");
}

bool flag(const nlohmann::json& j, const char* key, bool fallback, const std::string& file) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail(file, ": \"", key, "\" must be true or false");
  return it->get<bool>();
}

}  // namespace

SentencePieceOptions hf_sentencepiece_options(const std::string& folder) {
  namespace fs = std::filesystem;
  const fs::path dir(folder);
  std::string model;
  for (const char* name : {"spiece.model", "tokenizer.model"}) {
    if (fs::exists(dir / name)) {
      model = (dir / name).string();
      break;
    }
  }
  if (model.empty()) {
    fail(folder, ": no SentencePiece model (spiece.model or tokenizer.model) in the tokenizer folder");
  }
  nlohmann::json config = nlohmann::json::object(), special = nlohmann::json::object();
  const std::string config_file = (dir / "tokenizer_config.json").string();
  const std::string special_file = (dir / "special_tokens_map.json").string();
  if (fs::exists(config_file)) config = parse_json(read_file(config_file, "tokenizer config"), config_file);
  if (fs::exists(special_file)) special = parse_json(read_file(special_file, "special tokens map"), special_file);
  if (!config.is_object()) fail(config_file, ": not a JSON object");
  if (!special.is_object()) fail(special_file, ": not a JSON object");

  std::string cls = config.contains("tokenizer_class") && config["tokenizer_class"].is_string()
                        ? config["tokenizer_class"].get<std::string>()
                        : (fs::path(model).filename() == "spiece.model" ? "SiglipTokenizer" : "GemmaTokenizer");
  if (cls.size() > 4 && cls.compare(cls.size() - 4, 4, "Fast") == 0) cls.resize(cls.size() - 4);
  // The class's defaults (transformers 5), then the config's, then the special tokens map's (which wins).
  struct Defaults {
    std::string bos, eos, pad;
    bool add_bos, add_eos;
    std::string padding_side;
  } d;
  SentencePieceOptions o(model);
  if (cls == "SiglipTokenizer") {
    d = {"", "</s>", "</s>", false, true, "right"};
    if (!flag(config, "do_lower_case", true, config_file)) {
      fail(config_file, ": do_lower_case false is not supported (SiglipTokenizer's canonicalization lowercases)");
    }
    if (!flag(config, "legacy", true, config_file)) {
      fail(config_file, ": legacy false is not supported for SiglipTokenizer (SentencePiece without its dummy prefix)");
    }
    o.siglip(true);
  } else if (cls == "T5Tokenizer") {
    d = {"", "</s>", "<pad>", false, true, "right"};
    o.split_special(true);
  } else if (cls == "GemmaTokenizer") {
    d = {"<bos>", "<eos>", "<pad>", false, false, "left"};  // transformers 5 adds neither unless configured
    o.split_special(true);
  } else {
    fail(config_file, ": tokenizer_class '", cls, "' is not one libclip runs (SiglipTokenizer, T5Tokenizer, ",
         "GemmaTokenizer)");
  }
  auto token = [&](const char* key, const std::string& fallback) {
    std::string t = token_text(special, key, special_file);
    if (t.empty()) t = token_text(config, key, config_file);
    return t.empty() ? fallback : t;
  };
  const bool add_bos = flag(config, "add_bos_token", d.add_bos, config_file);
  const bool add_eos = flag(config, "add_eos_token", d.add_eos, config_file);
  const std::string side = config.contains("padding_side") && config["padding_side"].is_string()
                               ? config["padding_side"].get<std::string>()
                               : d.padding_side;
  if (side != "left" && side != "right") fail(config_file, ": padding_side '", side, "' is neither left nor right");
  const std::string bos = token("bos_token", d.bos);
  if (add_bos && bos.empty()) fail(config_file, ": add_bos_token is true but no bos_token is named");
  o.add_start(add_bos).add_end(add_eos).pad_left(side == "left");
  if (!bos.empty()) o.start_piece(bos);
  o.end_piece(token("eos_token", d.eos)).pad_piece(token("pad_token", d.pad)).unk_piece(token("unk_token", "<unk>"));
  return o;
}

SentencePieceTrainResult train_sentencepiece(const SentencePieceTrainOptions& o) {
  require_regular_file(o.input(), "captions file");
  std::ifstream in(o.input(), std::ios::binary);
  if (!in) fail(o.input(), ": cannot open the captions file");
  if (o.vocab_size() < 8) fail("vocab size ", o.vocab_size(), " is too small (at least 8)");
  static const char* kTypes[] = {"unigram", "bpe", "char", "word"};
  if (std::find(std::begin(kTypes), std::end(kTypes), o.model_type()) == std::end(kTypes)) {
    fail("model type '", o.model_type(), "' is not one of unigram, bpe, char, word");
  }
  std::vector<std::string> lines;
  std::string line;
  std::u32string chars;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    try {
      text::utf8_to_utf32(line, chars);
    } catch (const Error& e) {
      fail(o.input(), ": line ", number, ": ", e.what());
    }
    lines.push_back(line);
  }
  if (lines.empty()) fail(o.input(), ": no captions (every line is empty)");
  if (o.max_sentences() > 0 && static_cast<int64_t>(lines.size()) > o.max_sentences()) {
    std::mt19937_64 rng(0);
    std::shuffle(lines.begin(), lines.end(), rng);
    lines.resize(static_cast<size_t>(o.max_sentences()));
  }

  // Layout: pad 0 (zero padding is padding), unk 1, start 2, end 3. Lowercasing is built into the model as
  // the case-folding normalization rule, so the .model file alone tokenizes as it was trained.
  const std::string args =
      str("--model_type=", o.model_type(), " --vocab_size=", o.vocab_size(),
          " --character_coverage=", o.character_coverage(),
          " --normalization_rule_name=", o.lowercase() ? "nmt_nfkc_cf" : "nmt_nfkc",
          " --pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3 --num_threads=", std::max<int64_t>(1, o.threads()),
          " --input_sentence_size=0 --shuffle_input_sentence=false");
  std::string model, error;
  if (!api().train(args, lines, &model, &error)) {
    fail(o.input(), ": SentencePiece training failed: ", error,
         error.find("Vocabulary size") != std::string::npos ? " (lower --vocab-size, or give more captions)" : "");
  }
  AtomicFile file(o.output());
  file.write(model.data(), model.size());
  file.commit();
  const std::unique_ptr<void, void (*)(void*)> written(api().load(o.output(), &error), api().release);
  if (!written) fail(o.output(), ": the written model does not load (", error, ")");
  return {static_cast<int64_t>(lines.size()), api().piece_size(written.get())};
}

}  // namespace clip
