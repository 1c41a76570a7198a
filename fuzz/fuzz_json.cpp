// JSON as libclip reads it from outside: parse_json (configs, metadata), dump_json of what was parsed, a JSONL text
// line (clip_tokenize, clip_embed --texts), and the model and training configs built from it.
#include "clip/model/config.h"
#include "clip/text/text_lines.h"
#include "clip/train/train_config.h"
#include "fuzz.h"
#include "util/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json j = clip::parse_json_or_discarded(text);
  if (!j.is_discarded()) {
    clip::dump_json(j);
    clip::dump_json(j, 2);
  }
  clip::fuzz::expect_clip_errors([&] { clip::parse_json(text, "fuzz.json"); });
  clip::fuzz::expect_clip_errors([&] { clip::text_from_json_line(text, "line 1"); });
  clip::fuzz::expect_clip_errors([&] { clip::to_json(clip::parse_model_config(text, "model.json")); });
  clip::fuzz::expect_clip_errors([&] { clip::to_json(clip::parse_train_config(text, "train.json")); });
  return 0;
}
