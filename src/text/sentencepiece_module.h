#pragma once
// The boundary between libclip and libsentencepiece.
//
// Debian's libsentencepiece carries its own copy of protobuf-lite and exports its symbols; LibTorch loads the
// system libprotobuf. Linked together, one library's calls bind to the other's protobuf and the process
// crashes while loading. So libsentencepiece is only ever linked into a small module, libclip_sentencepiece.so
// (installed beside libclip), which libclip opens on first use with RTLD_LOCAL | RTLD_DEEPBIND: its symbols
// stay out of the global scope and its own references bind to its own copy. The module exports one C function
// returning this table; nothing crosses the boundary but these calls (no exceptions, no protobuf types).
#include <string>
#include <string_view>
#include <vector>

namespace clip::text {

struct SentencePieceApi {
  static constexpr int kPieceNormal = 1, kPieceUnknown = 2, kPieceControl = 3, kPieceUserDefined = 4,
                       kPieceUnused = 5, kPieceByte = 6;
  static constexpr int kVersion = 2;
  int version;
  /// A loaded model, or nullptr with `error` set.
  void* (*load)(const std::string& path, std::string* error);
  void (*release)(void* model);
  bool (*encode)(const void* model, std::string_view text, std::vector<int>* ids, std::string* error);
  bool (*decode)(const void* model, const std::vector<int>& ids, std::string* text, std::string* error);
  int (*piece_size)(const void* model);
  int (*bos_id)(const void* model);
  int (*eos_id)(const void* model);
  int (*pad_id)(const void* model);
  std::string (*id_to_piece)(const void* model, int id);
  /// The id of a piece, or -1 when the model has no such piece.
  int (*piece_to_id)(const void* model, std::string_view piece);
  /// What a piece is: one of the kPiece* values below (SentencePiece's ModelProto.SentencePiece.Type).
  int (*piece_type)(const void* model, int id);
  /// Trains on `sentences` with SentencePiece's command-line style `args`; the serialized model goes to `model`.
  bool (*train)(const std::string& args, const std::vector<std::string>& sentences, std::string* model,
                std::string* error);
};

}  // namespace clip::text

extern "C" {
/// The module's one export.
const clip::text::SentencePieceApi* clip_sentencepiece_api();
}
