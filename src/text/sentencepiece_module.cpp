// libclip_sentencepiece.so: libsentencepiece behind the SentencePieceApi table (see sentencepiece_module.h).
#include "text/sentencepiece_module.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdint>
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

struct Model;
const SentencePieceProcessor& processor(const void* model);

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

// A loaded model and its pieces' types, which libsentencepiece 0.1.97 does not all expose (no IsUserDefined): read
// from the serialized ModelProto (repeated SentencePiece pieces = 1 { piece = 1; score = 2; type = 3 }).
struct Model {
  SentencePieceProcessor processor;
  std::vector<int> types;
};

bool read_varint(const char*& p, const char* end, uint64_t& value) {
  value = 0;
  for (int shift = 0; p < end && shift < 64; shift += 7) {
    const auto byte = static_cast<uint8_t>(*p++);
    value |= uint64_t(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// Skips one field of wire type `wire`; false on a malformed message.
bool skip_field(const char*& p, const char* end, uint64_t wire) {
  uint64_t n = 0;
  switch (wire) {
    case 0: return read_varint(p, end, n);
    case 1: n = 8; break;
    case 2: if (!read_varint(p, end, n)) return false; break;
    case 5: n = 4; break;
    default: return false;
  }
  if (n > uint64_t(end - p)) return false;
  p += n;
  return true;
}

bool piece_types(const std::string& proto, std::vector<int>& types) {
  const char* p = proto.data();
  const char* end = p + proto.size();
  while (p < end) {
    uint64_t key = 0;
    if (!read_varint(p, end, key)) return false;
    if (key != ((1u << 3) | 2u)) {
      if (!skip_field(p, end, key & 7)) return false;
      continue;
    }
    uint64_t length = 0;
    if (!read_varint(p, end, length) || length > uint64_t(end - p)) return false;
    const char* piece = p;
    const char* piece_end = p + length;
    p = piece_end;
    int type = clip::text::SentencePieceApi::kPieceNormal;  // the proto's default
    while (piece < piece_end) {
      uint64_t k = 0, v = 0;
      if (!read_varint(piece, piece_end, k)) return false;
      if (k == ((3u << 3) | 0u)) {
        if (!read_varint(piece, piece_end, v)) return false;
        type = static_cast<int>(v);
      } else if (!skip_field(piece, piece_end, k & 7)) {
        return false;
      }
    }
    types.push_back(type);
  }
  return true;
}

void* load(const std::string& path, std::string* error) {
  auto m = std::make_unique<Model>();
  if (!ok(m->processor.Load(path), error)) return nullptr;
  if (!piece_types(m->processor.serialized_model_proto(), m->types) ||
      static_cast<int>(m->types.size()) != m->processor.GetPieceSize()) {
    *error = "its pieces could not be read";
    return nullptr;
  }
  return m.release();
}

void release(void* model) { delete static_cast<Model*>(model); }

const SentencePieceProcessor& processor(const void* model) { return static_cast<const Model*>(model)->processor; }

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

int piece_to_id(const void* model, std::string_view piece) {
  const SentencePieceProcessor& p = processor(model);
  const int id = p.PieceToId(piece);
  // PieceToId answers unk_id for a piece it does not know: only the unknown piece itself is that id.
  return id == p.unk_id() && p.IdToPiece(id) != piece ? -1 : id;
}

int piece_type(const void* model, int id) { return static_cast<const Model*>(model)->types.at(static_cast<size_t>(id)); }

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
    piece_to_id,
    piece_type,
    train,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const clip::text::SentencePieceApi* clip_sentencepiece_api() {
  sentencepiece::logging::SetMinLogLevel(kLogFatalOnly);
  return &kApi;
}
