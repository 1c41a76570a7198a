#include "clip/model/config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <tuple>
#include <sstream>

#include <nlohmann/json.hpp>

#include "clip/util/error.h"
#include "util/json.h"
#include "util/file.h"

namespace clip {
namespace {

using json = nlohmann::json;

// Reads one JSON object strictly: every key must be consumed by a typed getter, be an open_clip key that
// libclip accepts at its default value, or be informational; anything left over is an error.
class ObjectReader {
 public:
  // `null_is_absent`: a null value reads as a missing key (open_clip's merge_preprocess_dict drops None).
  ObjectReader(const json& object, std::string source, std::string path, bool null_is_absent = false)
      : object_(object), source_(std::move(source)), path_(std::move(path)), null_is_absent_(null_is_absent) {
    if (!object_.is_object()) fail(source_, ": '", path_, "' must be a JSON object, got ", object_.dump());
  }

  bool has(const std::string& key) const {
    const auto it = object_.find(key);
    return it != object_.end() && !(null_is_absent_ && it->is_null());
  }
  bool is_null(const std::string& key) const {
    const auto it = object_.find(key);
    return it != object_.end() && it->is_null();
  }

  int64_t integer(const std::string& key, int64_t fallback) {
    const json* v = take(key);
    if (v == nullptr) return fallback;
    if (!v->is_number_integer()) bad_type(key, *v, "an integer");
    return v->get<int64_t>();
  }

  double number(const std::string& key, double fallback) {
    const json* v = take(key);
    if (v == nullptr) return fallback;
    if (!v->is_number()) bad_type(key, *v, "a number");
    return v->get<double>();
  }

  bool boolean(const std::string& key, bool fallback) {
    const json* v = take(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) bad_type(key, *v, "true or false");
    return v->get<bool>();
  }

  std::string text(const std::string& key, const std::string& fallback, const std::set<std::string>& allowed) {
    const json* v = take(key);
    if (v == nullptr) return fallback;
    if (!v->is_string() || (!allowed.empty() && allowed.count(v->get<std::string>()) == 0)) {
      std::string choices;
      for (const auto& a : allowed) choices += (choices.empty() ? "" : " | ") + a;
      bad_type(key, *v, allowed.empty() ? "a string" : "one of " + choices);
    }
    return v->get<std::string>();
  }

  std::vector<double> numbers(const std::string& key, size_t count) {
    const json* v = take(key);
    if (v == nullptr) return {};
    if (!v->is_array() || v->size() != count) bad_type(key, *v, str("a list of ", count, " numbers"));
    std::vector<double> out;
    for (const auto& e : *v) {
      if (!e.is_number()) bad_type(key, *v, str("a list of ", count, " numbers"));
      out.push_back(e.get<double>());
    }
    return out;
  }

  const json* object(const std::string& key) {
    const json* v = take(key);
    if (v != nullptr && !v->is_object()) bad_type(key, *v, "a JSON object");
    return v;
  }

  const json* raw(const std::string& key) { return take(key); }

  // An open_clip option that libclip does not implement: fine at its default, an error otherwise.
  void unsupported_unless(const std::string& key, const json& default_value) {
    const json* v = take(key);
    if (v != nullptr && *v != default_value) {
      fail(source_, ": '", where(key), "' = ", v->dump(), " is not supported by libclip (only ", default_value.dump(),
           "); remove the key or use a supported architecture");
    }
  }

  // A key that does not change the architecture (informational, or read elsewhere).
  void ignore(const std::string& key) { take(key); }

  void finish() const {
    for (const auto& item : object_.items()) {
      if (used_.count(item.key()) == 0) {
        fail(source_, ": unknown key '", where(item.key()), "' (value ", item.value().dump(),
             "); check the spelling against open_clip's model-config schema");
      }
    }
  }

  [[noreturn]] void bad_type(const std::string& key, const json& value, const std::string& expected) const {
    fail(source_, ": '", where(key), "' must be ", expected, ", got ", value.dump());
  }

  std::string where(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

 private:
  const json* take(const std::string& key) {
    used_.insert(key);
    auto it = object_.find(key);
    return it == object_.end() || (null_is_absent_ && it->is_null()) ? nullptr : &*it;
  }

  const json& object_;
  std::string source_;
  std::string path_;
  std::set<std::string> used_;
  bool null_is_absent_;
};

// Upper bounds far beyond every released CLIP (ViT-bigG: 48 layers, width 1664; image 336; context 77; vocab 250k
// for multilingual towers), and far below what would loop for hours or allocate terabytes on a typo.
constexpr double kMaxLayers = 256, kMaxWidth = 16384, kMaxImageSize = 4096, kMaxContext = 16384, kMaxVocab = 1e7,
                 kMaxMlpRatio = 64;

void require_positive(const ObjectReader& r, const std::string& key, double value, double max) {
  if (!(value > 0 && value <= max)) r.bad_type(key, value, str("a positive number of at most ", int64_t(max)));
}

VisionConfig parse_vision(const json& j, const std::string& source) {
  ObjectReader r(j, source, "vision_cfg");
  VisionConfig v;
  v.image_size = r.integer("image_size", v.image_size);
  if (const json* layers = r.raw("layers")) {
    if (layers->is_number_integer()) {
      v.layers = layers->get<int64_t>();
    } else if (layers->is_array() && layers->size() == 4) {
      for (const auto& n : *layers) {
        if (!n.is_number_integer() || n.get<int64_t>() < 1) r.bad_type("layers", *layers, "an integer or 4 integers");
        v.resnet_layers.push_back(n.get<int64_t>());
      }
    } else {
      r.bad_type("layers", *layers, "an integer (ViT) or a list of 4 integers (ResNet)");
    }
  }
  v.width = r.integer("width", v.width);
  v.head_width = r.integer("head_width", v.head_width);
  v.mlp_ratio = r.number("mlp_ratio", v.mlp_ratio);
  // open_clip's ResNet configs write "patch_size": null, which a ResNet never reads.
  if (v.is_resnet() && r.is_null("patch_size")) {
    r.ignore("patch_size");
  } else {
    v.patch_size = r.integer("patch_size", v.patch_size);
  }
  for (const auto& [key, value, max] : {std::tuple<const char*, double, double>{"image_size", double(v.image_size), kMaxImageSize},
                                        {"width", double(v.width), kMaxWidth},
                                        {"head_width", double(v.head_width), kMaxWidth},
                                        {"mlp_ratio", v.mlp_ratio, kMaxMlpRatio},
                                        {"patch_size", double(v.patch_size), kMaxImageSize}}) {
    require_positive(r, key, value, max);
  }
  if (!v.is_resnet()) require_positive(r, "layers", double(v.layers), kMaxLayers);
  for (const int64_t n : v.resnet_layers) require_positive(r, "layers", double(n), kMaxLayers);
  if (!v.is_resnet() && v.image_size % v.patch_size != 0) {
    fail(source, ": vision_cfg.image_size ", v.image_size, " is not a multiple of patch_size ", v.patch_size);
  }
  if (v.is_resnet() && v.image_size % 32 != 0) {
    fail(source, ": vision_cfg.image_size ", v.image_size, " must be a multiple of 32 for a ResNet");
  }
  if (!v.is_resnet() && v.width % v.head_width != 0) {
    fail(source, ": vision_cfg.width ", v.width, " is not a multiple of head_width ", v.head_width);
  }
  r.unsupported_unless("ls_init_value", nullptr);
  r.unsupported_unless("patch_dropout", 0.0);
  r.unsupported_unless("attentional_pool", false);
  r.unsupported_unless("no_ln_pre", false);
  r.unsupported_unless("pos_embed_type", "learnable");
  r.unsupported_unless("final_ln_after_pool", false);
  r.unsupported_unless("pool_type", "tok");
  r.unsupported_unless("input_patchnorm", false);
  r.unsupported_unless("global_average_pool", false);
  r.unsupported_unless("timm_model_name", nullptr);
  r.unsupported_unless("act_kwargs", nullptr);
  r.unsupported_unless("norm_kwargs", nullptr);
  r.ignore("output_tokens");
  r.ignore("attn_pooler_queries");  // only read when attentional_pool is true
  r.ignore("attn_pooler_heads");
  r.finish();
  return v;
}

TextConfig parse_text(const json& j, const std::string& source) {
  ObjectReader r(j, source, "text_cfg");
  TextConfig t;
  t.context_length = r.integer("context_length", t.context_length);
  t.vocab_size = r.integer("vocab_size", t.vocab_size);
  t.width = r.integer("width", t.width);
  t.heads = r.integer("heads", t.heads);
  t.layers = r.integer("layers", t.layers);
  t.mlp_ratio = r.number("mlp_ratio", t.mlp_ratio);
  t.tokenizer = r.text("tokenizer", t.tokenizer, {});
  const bool clip_bpe = t.tokenizer == TextConfig::kClipBpe;
  const size_t model_suffix = t.tokenizer.size() >= 6 ? t.tokenizer.size() - 6 : 0;
  if (!clip_bpe && t.tokenizer.compare(model_suffix, std::string::npos, ".model") != 0) {
    r.bad_type("tokenizer", t.tokenizer, "\"clip_bpe\" or the path of a SentencePiece .model file");
  }
  // The CLIP BPE's end token is its largest id, so its models pool at argmax(ids); other vocabularies pool at
  // the first end token.
  const std::string pool = r.text("pool_type", clip_bpe ? "argmax" : "eos", {"argmax", "eos"});
  t.pool = pool == "eos" ? TextPool::first_eos : TextPool::argmax;
  if (!clip_bpe && t.pool == TextPool::first_eos && !r.has("eos_token_id")) {
    fail(source, ": text_cfg.tokenizer names a SentencePiece model; set text_cfg.eos_token_id to its end id (3 for ",
         "models trained by clip_tokenize train)");
  }
  t.eos_token_id = r.integer("eos_token_id", t.eos_token_id);
  for (const auto& [key, value, max] : {std::tuple<const char*, double, double>{"context_length", double(t.context_length), kMaxContext},
                                        {"vocab_size", double(t.vocab_size), kMaxVocab},
                                        {"width", double(t.width), kMaxWidth},
                                        {"heads", double(t.heads), kMaxWidth},
                                        {"layers", double(t.layers), kMaxLayers},
                                        {"mlp_ratio", t.mlp_ratio, kMaxMlpRatio}}) {
    require_positive(r, key, value, max);
  }
  if (t.width % t.heads != 0) fail(source, ": text_cfg.width ", t.width, " is not a multiple of heads ", t.heads);
  if (t.eos_token_id < 0 || t.eos_token_id >= t.vocab_size) {
    if (t.pool == TextPool::first_eos || r.has("eos_token_id")) {
      fail(source, ": text_cfg.eos_token_id ", t.eos_token_id, " is outside the vocabulary [0, ", t.vocab_size, ")");
    }
    t.eos_token_id = t.vocab_size - 1;  // the CLIP BPE's layout: the end token is the last id
  }
  r.unsupported_unless("ls_init_value", nullptr);
  r.unsupported_unless("embed_cls", false);
  r.unsupported_unless("pad_id", 0);
  r.unsupported_unless("no_causal_mask", false);
  r.unsupported_unless("final_ln_after_pool", false);
  r.unsupported_unless("proj_bias", false);
  r.unsupported_unless("proj_type", "linear");
  r.unsupported_unless("hf_model_name", nullptr);
  r.unsupported_unless("act_kwargs", nullptr);
  r.unsupported_unless("norm_kwargs", nullptr);
  r.ignore("output_tokens");
  r.ignore("hf_tokenizer_name");  // tokenizer choice, read by the tokenizer loader
  r.ignore("tokenizer_kwargs");
  r.finish();
  return t;
}

PreprocessOptions parse_preprocess(const json& j, const std::string& source) {
  ObjectReader r(j, source, "preprocess_cfg", /*null_is_absent=*/true);
  PreprocessOptions p;
  auto copy3 = [&](const std::string& key, std::array<double, 3>& out) {
    const auto values = r.numbers(key, 3);
    for (size_t i = 0; i < values.size(); ++i) out[i] = values[i];
  };
  copy3("mean", p.mean);
  copy3("std", p.std);
  for (double s : p.std) {
    if (!(s > 0)) fail(source, ": preprocess_cfg.std must be positive, got ", s);
  }
  p.interpolation = parse_interpolation(r.text("interpolation", "bicubic", {"bicubic", "bilinear"}),
                                        source + ": preprocess_cfg.interpolation");
  p.resize_mode = parse_resize_mode(r.text("resize_mode", "shortest", {"shortest", "longest", "squash"}),
                                    source + ": preprocess_cfg.resize_mode");
  r.ignore("size");  // the image size comes from vision_cfg.image_size
  r.unsupported_unless("fill_color", 0);
  r.finish();
  return p;
}

}  // namespace

int64_t VisionConfig::heads() const { return is_resnet() ? width * 32 / head_width : width / head_width; }

ModelConfig parse_model_config(const std::string& json_text, const std::string& source) {
  const json j = parse_json(json_text, source);
  ObjectReader r(j, source, "");
  ModelConfig c;
  c.embed_dim = r.integer("embed_dim", -1);
  if (c.embed_dim <= 0 || c.embed_dim > int64_t(kMaxWidth)) {
    fail(source, ": 'embed_dim' is required and must be a positive integer of at most ", int64_t(kMaxWidth));
  }
  c.quick_gelu = r.boolean("quick_gelu", c.quick_gelu);
  c.init_logit_scale = r.number("init_logit_scale", c.init_logit_scale);
  if (r.is_null("init_logit_bias")) {
    r.ignore("init_logit_bias");  // open_clip's configs write null for "no bias"
  } else if (r.has("init_logit_bias")) {
    c.init_logit_bias = r.number("init_logit_bias", 0.0);
    if (!std::isfinite(*c.init_logit_bias)) fail(source, ": 'init_logit_bias' must be finite");
  }
  c.layer_norm_eps = r.number("layer_norm_eps", c.layer_norm_eps);  // libclip's extension (HF configs set it)
  if (!(c.layer_norm_eps > 0)) fail(source, ": 'layer_norm_eps' must be positive, got ", c.layer_norm_eps);
  const json* vision = r.object("vision_cfg");
  const json* text = r.object("text_cfg");
  if (vision == nullptr || text == nullptr) fail(source, ": 'vision_cfg' and 'text_cfg' are both required");
  c.vision = parse_vision(*vision, source);
  c.text = parse_text(*text, source);
  if (const json* pre = r.object("preprocess_cfg")) c.preprocess = parse_preprocess(*pre, source);
  c.preprocess.size = c.vision.image_size;
  r.unsupported_unless("custom_text", false);
  r.unsupported_unless("multimodal_cfg", nullptr);
  r.ignore("cast_dtype");  // a precision request, not an architecture; the loader picks the dtype
  r.finish();
  return c;
}

ModelConfig load_model_config(const std::string& path) {
  ModelConfig c = parse_model_config(read_file(path, "model config file"), path);
  c.name = std::filesystem::path(path).stem().string();
  return c;
}

namespace {

void differences(const json& a, const json& b, const std::string& where, std::vector<std::string>& out) {
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (const auto& item : a.items()) keys.insert(item.key());
    for (const auto& item : b.items()) keys.insert(item.key());
    for (const std::string& key : keys) {
      const std::string at = where.empty() ? key : where + "." + key;
      if (!a.contains(key) || !b.contains(key)) {
        out.push_back(at + ": " + (a.contains(key) ? a[key].dump() : "unset") + " vs " +
                      (b.contains(key) ? b[key].dump() : "unset"));
      } else {
        differences(a[key], b[key], at, out);
      }
    }
  } else if (a.is_number() && b.is_number()) {
    const double x = a.get<double>(), y = b.get<double>();
    if (std::abs(x - y) > 1e-6 * std::max(std::abs(x), std::abs(y))) out.push_back(where + ": " + a.dump() + " vs " + b.dump());
  } else if (a != b) {
    out.push_back(where + ": " + a.dump() + " vs " + b.dump());
  }
}

// The settings that decide what the weights compute (not the preprocessing, the tokenizer's pooling rule, whose
// forms agree for the CLIP vocabulary, or the initial logit scale, which the weights carry).
json architecture(const ModelConfig& c) {
  json j = json::parse(to_json(c));
  j.erase("preprocess_cfg");
  j.erase("init_logit_scale");
  if (j.contains("init_logit_bias")) j["init_logit_bias"] = "a learned bias";  // its presence, not its start
  for (const char* key : {"tokenizer", "pool_type", "eos_token_id"}) j["text_cfg"].erase(key);
  return j;
}

}  // namespace

std::vector<std::string> config_differences(const ModelConfig& a, const ModelConfig& b) {
  std::vector<std::string> out;
  differences(architecture(a), architecture(b), "", out);
  return out;
}

std::string to_json(const ModelConfig& c) {
  json vision;
  vision["image_size"] = c.vision.image_size;
  if (c.vision.is_resnet()) {
    vision["layers"] = c.vision.resnet_layers;
  } else {
    vision["layers"] = c.vision.layers;
    vision["patch_size"] = c.vision.patch_size;
    vision["mlp_ratio"] = c.vision.mlp_ratio;
  }
  vision["width"] = c.vision.width;
  vision["head_width"] = c.vision.head_width;
  json text = {{"context_length", c.text.context_length}, {"vocab_size", c.text.vocab_size},
               {"width", c.text.width},                   {"heads", c.text.heads},
               {"layers", c.text.layers},                 {"mlp_ratio", c.text.mlp_ratio}};
  const bool clip_bpe = c.text.tokenizer == TextConfig::kClipBpe;
  if (!clip_bpe) text["tokenizer"] = c.text.tokenizer;
  if (c.text.pool == TextPool::first_eos) {
    text["pool_type"] = "eos";
    text["eos_token_id"] = c.text.eos_token_id;
  } else if (!clip_bpe) {
    text["pool_type"] = "argmax";  // not the default for this tokenizer
  }
  json pre = {{"mean", c.preprocess.mean},
              {"std", c.preprocess.std},
              {"interpolation", interpolation_name(c.preprocess.interpolation)},
              {"resize_mode", resize_mode_name(c.preprocess.resize_mode)}};
  json out = {{"embed_dim", c.embed_dim}, {"quick_gelu", c.quick_gelu},       {"init_logit_scale", c.init_logit_scale},
              {"vision_cfg", vision},     {"text_cfg", text},                 {"preprocess_cfg", pre}};
  if (c.init_logit_bias) out["init_logit_bias"] = *c.init_logit_bias;
  if (c.layer_norm_eps != ModelConfig{}.layer_norm_eps) out["layer_norm_eps"] = c.layer_norm_eps;
  return out.dump(2);
}

}  // namespace clip
