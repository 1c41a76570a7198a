// libclip_sentencepiece.so: libsentencepiece behind the SentencePieceApi table (see sentencepiece_module.h).
#include "text/sentencepiece_module.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <memory>

// Exported by libsentencepiece (common.h, not an installed header). Its log goes to std::cerr, which a module
// opened with RTLD_DEEPBIND may see unconstructed (the executable can hold the constructed copy), so the module
// keeps it silent; every failure comes back as a Status instead.
namespace sentencepiece::logging {
void SetMinLogLevel(int level);
}  // namespace sentencepiece::logging

namespace {

constexpr int kLogFatalOnly = 3;  // sentencepiece's LOG levels: INFO 0, WARNING 1, ERROR 2, FATAL 3

using sentencepiece::SentencePieceProcessor;

bool ok(const sentencepiece::util::Status& status, std::string* error) {
  if (status.ok()) return true;
  *error = status.ToString();
  return false;
}

const SentencePieceProcessor& processor(const void* model) {
  return *static_cast<const SentencePieceProcessor*>(model);
}

class Sentences : public sentencepiece::SentenceIterator {
 public:
  explicit Sentences(const std::vector<std::string>& lines) : lines_(lines) {}
  bool done() const override { return index_ >= lines_.size(); }
  void Next() override { ++index_; }
  const std::string& value() const override { return lines_[index_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& lines_;
  size_t index_ = 0;
};

void* load(const std::string& path, std::string* error) {
  auto p = std::make_unique<SentencePieceProcessor>();
  if (!ok(p->Load(path), error)) return nullptr;
  return p.release();
}

void release(void* model) { delete static_cast<SentencePieceProcessor*>(model); }

bool encode(const void* model, std::string_view text, std::vector<int>* ids, std::string* error) {
  return ok(processor(model).Encode(text, ids), error);
}

bool decode(const void* model, const std::vector<int>& ids, std::string* text, std::string* error) {
  return ok(processor(model).Decode(ids, text), error);
}

int piece_size(const void* model) { return processor(model).GetPieceSize(); }
int bos_id(const void* model) { return processor(model).bos_id(); }
int eos_id(const void* model) { return processor(model).eos_id(); }
int pad_id(const void* model) { return processor(model).pad_id(); }
std::string id_to_piece(const void* model, int id) { return processor(model).IdToPiece(id); }

bool train(const std::string& args, const std::vector<std::string>& sentences, std::string* model, std::string* error) {
  Sentences iterator(sentences);
  if (!ok(sentencepiece::SentencePieceTrainer::Train(args, &iterator, model), error)) return false;
  SentencePieceProcessor check;
  if (!ok(check.LoadFromSerializedProto(*model), error)) {
    *error = "the trained model does not load: " + *error;
    return false;
  }
  return true;
}

const clip::text::SentencePieceApi kApi = {
    clip::text::SentencePieceApi::kVersion,
    load,
    release,
    encode,
    decode,
    piece_size,
    bos_id,
    eos_id,
    pad_id,
    id_to_piece,
    train,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const clip::text::SentencePieceApi* clip_sentencepiece_api() {
  sentencepiece::logging::SetMinLogLevel(kLogFatalOnly);
  return &kApi;
}
