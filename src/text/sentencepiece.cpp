#include "clip/text/sentencepiece.h"

#include <dlfcn.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "text/sentencepiece_module.h"
#include "text/unicode.h"
#include "util/atomic_file.h"
#include "util/file.h"

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
};

SentencePieceTokenizer::SentencePieceTokenizer(const SentencePieceOptions& options)
    : impl_(std::make_unique<Impl>()), options_(options) {
  const std::string& path = options.model_path();
  if (!std::filesystem::exists(path)) fail(path, ": no such SentencePiece model");
  std::string error;
  impl_->model.reset(impl_->api.load(path, &error));
  if (!impl_->model) fail(path, ": not a SentencePiece model (", error, ")");
  const void* model = impl_->model.get();
  const int64_t size = impl_->api.piece_size(model);
  auto pick = [&](int64_t given, int model_id, const char* what, const char* option) -> int64_t {
    const int64_t id = given >= 0 ? given : model_id;
    if (id < 0) fail(path, ": the model has no ", what, " piece; give its id with ", option);
    if (id >= size) fail(path, ": ", what, " id ", id, " is outside the model's ", size, " pieces");
    return id;
  };
  start_id_ = pick(options.start_id(), impl_->api.bos_id(model), "start (bos)", "start_id");
  end_id_ = pick(options.end_id(), impl_->api.eos_id(model), "end (eos)", "end_id");
  pad_id_ = pick(options.pad_id(), std::max(impl_->api.pad_id(model), 0), "pad", "pad_id");
  if (start_id_ == end_id_) fail(path, ": start and end ids are both ", start_id_);
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

void SentencePieceTokenizer::encode(std::string_view text, std::vector<int64_t>& ids) const {
  thread_local std::u32string chars;
  thread_local std::string lowered;
  text::utf8_to_utf32(text, chars);  // SentencePiece would silently replace invalid UTF-8
  std::string_view input = text;
  if (options_.lowercase()) {
    text::lower_to_utf8(chars, lowered);
    input = lowered;
  }
  thread_local std::vector<int> pieces;
  std::string error;
  if (!impl_->api.encode(impl_->model.get(), input, &pieces, &error)) fail("SentencePiece encode: ", error);
  ids.insert(ids.end(), pieces.begin(), pieces.end());
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
