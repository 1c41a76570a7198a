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
#include "model/timm_models.h"
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

// open_clip's per-tower options that libclip implements: `ls_init_value` (layer scale), `act_kwargs` (only GELU's
// `approximate`), `norm_kwargs` (only LayerNorm's `eps`).
void parse_tower_options(ObjectReader& r, const std::string& source, std::optional<double>& ls_init_value,
                         bool& gelu_tanh, std::optional<double>& layer_norm_eps) {
  if (r.is_null("ls_init_value")) {
    r.ignore("ls_init_value");
  } else if (r.has("ls_init_value")) {
    ls_init_value = r.number("ls_init_value", 0.0);
    if (!std::isfinite(*ls_init_value)) r.bad_type("ls_init_value", *ls_init_value, "a finite number");
  }
  if (const json* act = r.object("act_kwargs")) {
    ObjectReader a(*act, source, r.where("act_kwargs"));
    gelu_tanh = a.text("approximate", "none", {"none", "tanh"}) == "tanh";
    a.finish();
  } else {
    r.ignore("act_kwargs");  // null
  }
  if (const json* norm = r.object("norm_kwargs")) {
    ObjectReader n(*norm, source, r.where("norm_kwargs"));
    if (n.has("eps")) {
      layer_norm_eps = n.number("eps", 0.0);
      if (!(*layer_norm_eps > 0 && *layer_norm_eps < 1)) n.bad_type("eps", *layer_norm_eps, "a number in (0, 1)");
    }
    n.finish();
  } else {
    r.ignore("norm_kwargs");
  }
}

// A timm tower: its shape from libclip's table of timm's model functions, its pooling and projection from the keys
// (open_clip's TimmModel builds timm.create_model(name) and adds `head`).
void parse_timm(ObjectReader& r, const std::string& source, VisionConfig& v) {
  const detail::TimmVitShape* shape = detail::find_timm_vit(v.timm_model_name);
  if (shape == nullptr) {
    fail(source, ": vision_cfg.timm_model_name '", v.timm_model_name, "' is not a timm model libclip builds (it builds ",
         detail::timm_vit_names(), ")");
  }
  if (v.image_size != shape->image_size) {
    fail(source, ": vision_cfg.image_size ", v.image_size, " differs from ", v.timm_model_name, "'s ", shape->image_size,
         " (timm builds the tower at its own size; set image_size to ", shape->image_size, ")");
  }
  v.patch_size = shape->patch_size;
  v.width = shape->width;
  v.layers = shape->layers;
  v.head_width = shape->width / shape->heads;
  v.mlp_ratio = shape->mlp_ratio;
  v.gelu_tanh = shape->gelu_tanh;
  v.layer_norm_eps = 1e-6;  // timm's LayerNorm
  v.ls_init_value.reset();  // open_clip passes neither ls_init_value nor act/norm kwargs to timm
  v.class_token = shape->class_token;
  v.timm_pool = r.text("timm_pool", "avg", {"map", "avg", "token"});
  v.timm_proj = r.text("timm_proj", "linear", {"linear", "none"});
  v.timm_proj_bias = r.boolean("timm_proj_bias", false);
  if (v.timm_pool == "map" && std::string(shape->pool) != "map") {
    fail(source, ": vision_cfg.timm_pool 'map' needs a model built with an attention pool; ", v.timm_model_name,
         " pools by '", shape->pool, "'");
  }
  if (v.timm_pool == "token" && !v.class_token) {
    fail(source, ": vision_cfg.timm_pool 'token' needs a class token; ", v.timm_model_name, " has none");
  }
  // timm puts the final norm after the pool (fc_norm) when the model is built for mean pooling and does not say
  // otherwise; open_clip builds it with timm_pool when there is no projection, else with the model's own pool.
  const std::string built_pool = v.timm_proj == "none" ? v.timm_pool : shape->pool;
  v.fc_norm = !shape->fc_norm_false && built_pool == "avg" && v.timm_pool == "avg";
  r.ignore("timm_model_pretrained");  // ImageNet weights to start from; the checkpoint's weights replace them
  r.unsupported_unless("timm_drop", 0.0);
  r.unsupported_unless("timm_drop_path", nullptr);
  r.unsupported_unless("timm_model_kwargs", nullptr);
  // open_clip ignores these for timm towers; the name decides.
  for (const char* key : {"layers", "width", "patch_size", "head_width", "mlp_ratio"}) r.ignore(key);
}

VisionConfig parse_vision(const json& j, const std::string& source) {
  ObjectReader r(j, source, "vision_cfg");
  VisionConfig v;
  v.image_size = r.integer("image_size", v.image_size);
  if (r.is_null("timm_model_name")) {
    r.ignore("timm_model_name");
  } else {
    v.timm_model_name = r.text("timm_model_name", "", {});
  }
  parse_tower_options(r, source, v.ls_init_value, v.gelu_tanh, v.layer_norm_eps);
  v.timm_layout = !v.timm_model_name.empty() || r.boolean("timm_layout", false);
  if (!v.timm_model_name.empty()) {
    require_positive(r, "image_size", double(v.image_size), kMaxImageSize);
    parse_timm(r, source, v);
  } else if (const json* layers = r.raw("layers")) {
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
  if (v.timm_model_name.empty()) {
    v.width = r.integer("width", v.width);
    v.head_width = r.integer("head_width", v.head_width);
    v.mlp_ratio = r.number("mlp_ratio", v.mlp_ratio);
  }
  // open_clip's ResNet configs write "patch_size": null, which a ResNet never reads.
  if (v.is_resnet() && r.is_null("patch_size")) {
    r.ignore("patch_size");
  } else if (v.timm_model_name.empty()) {
    v.patch_size = r.integer("patch_size", v.patch_size);
  }
  if (v.is_timm() && v.timm_model_name.empty()) {
    // libclip's unnamed timm layout: the tower's own keys say what a name would.
    if (v.is_resnet()) fail(source, ": vision_cfg.timm_layout describes a ViT; 'layers' must be one integer");
    v.timm_pool = r.text("timm_pool", "map", {"map", "avg", "token"});
    v.timm_proj = r.text("timm_proj", "none", {"linear", "none"});
    v.timm_proj_bias = r.boolean("timm_proj_bias", false);
    v.class_token = r.boolean("class_token", false);
    v.fc_norm = r.boolean("fc_norm", false);
    if (!v.layer_norm_eps) v.layer_norm_eps = 1e-6;
    if (v.timm_pool == "token" && !v.class_token) fail(source, ": vision_cfg.timm_pool 'token' needs class_token");
    if (v.fc_norm && v.timm_pool != "avg") fail(source, ": vision_cfg.fc_norm goes with timm_pool 'avg' only");
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
  // timm's patch embedding floors the grid (vit_so400m_patch14_siglip_384: 27 x 27 patches, 6 pixels unused).
  if (!v.is_resnet() && !v.is_timm() && v.image_size % v.patch_size != 0) {
    fail(source, ": vision_cfg.image_size ", v.image_size, " is not a multiple of patch_size ", v.patch_size);
  }
  if (v.is_resnet() && v.image_size % 32 != 0) {
    fail(source, ": vision_cfg.image_size ", v.image_size, " must be a multiple of 32 for a ResNet");
  }
  if (!v.is_resnet() && v.width % v.head_width != 0) {
    fail(source, ": vision_cfg.width ", v.width, " is not a multiple of head_width ", v.head_width);
  }
  if (v.is_resnet() && (v.ls_init_value || v.gelu_tanh || v.layer_norm_eps)) {
    fail(source, ": vision_cfg.ls_init_value, act_kwargs and norm_kwargs apply to ViTs, not the ModifiedResNet");
  }
  for (const char* key : {"timm_pool", "timm_proj", "timm_proj_bias", "timm_model_pretrained", "timm_drop",
                          "timm_drop_path", "timm_model_kwargs"}) {
    if (!v.is_timm() && r.has(key)) {
      fail(source, ": vision_cfg.", key, " needs vision_cfg.timm_model_name (or libclip's timm_layout)");
    }
    r.ignore(key);
  }
  r.unsupported_unless("patch_dropout", 0.0);
  r.unsupported_unless("attentional_pool", false);
  r.unsupported_unless("no_ln_pre", false);
  r.unsupported_unless("pos_embed_type", "learnable");
  r.unsupported_unless("final_ln_after_pool", false);
  r.unsupported_unless("pool_type", "tok");
  r.unsupported_unless("input_patchnorm", false);
  r.unsupported_unless("global_average_pool", false);
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
  const std::string pool = r.text("pool_type", clip_bpe ? "argmax" : "eos", {"argmax", "eos", "last", "first"});
  t.pool = pool == "eos" ? TextPool::first_eos : pool == "last" ? TextPool::last : pool == "first" ? TextPool::first
                                                                                                   : TextPool::argmax;
  if (!clip_bpe && t.pool == TextPool::first_eos && !r.has("eos_token_id") && !r.has("eos_id")) {
    fail(source, ": text_cfg.tokenizer names a SentencePiece model; set text_cfg.eos_token_id to its end id (3 for ",
         "models trained by clip_tokenize train)");
  }
  if (r.has("eos_id")) {  // open_clip's name for it (MetaCLIP 2's configs)
    if (r.has("eos_token_id")) fail(source, ": text_cfg sets both eos_id and eos_token_id; keep one");
    t.eos_token_id = r.integer("eos_id", t.eos_token_id);
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
    if (t.pool == TextPool::first_eos || r.has("eos_token_id") || r.has("eos_id")) {
      fail(source, ": text_cfg.eos_token_id ", t.eos_token_id, " is outside the vocabulary [0, ", t.vocab_size, ")");
    }
    t.eos_token_id = t.vocab_size - 1;  // the CLIP BPE's layout: the end token is the last id
  }
  t.pad_id = r.integer("pad_id", t.pad_id);
  if (t.pad_id < 0 || t.pad_id >= t.vocab_size) {
    fail(source, ": text_cfg.pad_id ", t.pad_id, " is outside the vocabulary [0, ", t.vocab_size, ")");
  }
  t.causal = !r.boolean("no_causal_mask", false);
  t.proj_bias = r.boolean("proj_bias", false);
  parse_tower_options(r, source, t.ls_init_value, t.gelu_tanh, t.layer_norm_eps);
  r.unsupported_unless("embed_cls", false);
  r.unsupported_unless("use_pad_mask", false);
  r.unsupported_unless("final_ln_after_pool", false);
  t.projection = r.text("proj_type", "linear", {"linear", "none"}) == "linear";
  r.unsupported_unless("hf_model_name", nullptr);
  r.ignore("output_tokens");
  if (r.is_null("hf_tokenizer_name")) {
    r.ignore("hf_tokenizer_name");
  } else {
    t.hf_tokenizer_name = r.text("hf_tokenizer_name", "", {});
  }
  if (j.contains("tokenizer_kwargs") && !j["tokenizer_kwargs"].is_null()) {
    const json& kwargs = j.at("tokenizer_kwargs");
    if (!kwargs.is_object()) fail(source, ": text_cfg.tokenizer_kwargs must be an object");
    for (const auto& item : kwargs.items()) {
      if (item.key() == "clean") {
        if (!item.value().is_string() || (item.value() != "whitespace" && item.value() != "lower" &&
                                          item.value() != "canonicalize" && item.value() != "none")) {
          fail(source, ": text_cfg.tokenizer_kwargs.clean must be \"whitespace\", \"lower\" or \"canonicalize\"");
        }
        t.hf_tokenizer_clean = item.value().get<std::string>();
      } else if (item.key() == "strip_sep_token") {
        if (!item.value().is_boolean()) fail(source, ": text_cfg.tokenizer_kwargs.strip_sep_token must be a boolean");
        t.hf_tokenizer_strip_sep = item.value().get<bool>();
      } else {
        fail(source, ": text_cfg.tokenizer_kwargs.", item.key(), " is not supported (clean is)");
      }
    }
  }
  r.ignore("tokenizer_kwargs");  // read above
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
  if (!c.text.projection && c.text.width != c.embed_dim) {
    fail(source, ": text_cfg.proj_type \"none\" gives width ", c.text.width, " features, not embed_dim ", c.embed_dim);
  }
  if (const json* pre = r.object("preprocess_cfg")) c.preprocess = parse_preprocess(*pre, source);
  c.preprocess.size = c.vision.image_size;
  c.custom_text = r.boolean("custom_text", false);
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
  // The end-token rules (argmax, first EOS) agree for the CLIP vocabulary; a fixed position does not.
  const json pool = j["text_cfg"].value("pool_type", json("argmax"));
  if (pool == "argmax" || pool == "eos") j["text_cfg"].erase("pool_type");
  for (const char* key : {"tokenizer", "eos_token_id", "pad_id", "hf_tokenizer_name", "tokenizer_kwargs"}) {
    j["text_cfg"].erase(key);
  }
  return j;
}

}  // namespace

std::vector<std::string> config_differences(const ModelConfig& a, const ModelConfig& b) {
  std::vector<std::string> out;
  differences(architecture(a), architecture(b), "", out);
  return out;
}

namespace {

void tower_options_json(json& tower, const std::optional<double>& ls_init_value, bool gelu_tanh,
                        const std::optional<double>& layer_norm_eps) {
  if (ls_init_value) tower["ls_init_value"] = *ls_init_value;
  if (gelu_tanh) tower["act_kwargs"] = {{"approximate", "tanh"}};
  if (layer_norm_eps) tower["norm_kwargs"] = {{"eps", *layer_norm_eps}};
}

}  // namespace

std::string to_json(const ModelConfig& c) {
  const VisionConfig& v = c.vision;
  json vision;
  vision["image_size"] = v.image_size;
  if (v.is_timm()) {
    vision["timm_pool"] = v.timm_pool;
    vision["timm_proj"] = v.timm_proj;
    if (v.timm_proj_bias) vision["timm_proj_bias"] = true;
  }
  if (!v.timm_model_name.empty()) {
    vision["timm_model_name"] = v.timm_model_name;  // the name decides the shape, activation and norms
  } else {
    if (v.is_timm()) {
      vision["timm_layout"] = true;
      vision["class_token"] = v.class_token;
      vision["fc_norm"] = v.fc_norm;
    }
    if (v.is_resnet()) {
      vision["layers"] = v.resnet_layers;
    } else {
      vision["layers"] = v.layers;
      vision["patch_size"] = v.patch_size;
      vision["mlp_ratio"] = v.mlp_ratio;
    }
    vision["width"] = v.width;
    vision["head_width"] = v.head_width;
    tower_options_json(vision, v.ls_init_value, v.gelu_tanh, v.layer_norm_eps);
  }
  json text = {{"context_length", c.text.context_length}, {"vocab_size", c.text.vocab_size},
               {"width", c.text.width},                   {"heads", c.text.heads},
               {"layers", c.text.layers},                 {"mlp_ratio", c.text.mlp_ratio}};
  if (!c.text.causal) text["no_causal_mask"] = true;
  if (!c.text.hf_tokenizer_name.empty()) text["hf_tokenizer_name"] = c.text.hf_tokenizer_name;
  if (!c.text.hf_tokenizer_name.empty() && c.text.hf_tokenizer_clean != "whitespace") {
    text["tokenizer_kwargs"] = {{"clean", c.text.hf_tokenizer_clean}};
  }
  if (c.text.hf_tokenizer_strip_sep) text["tokenizer_kwargs"]["strip_sep_token"] = true;
  if (c.text.proj_bias) text["proj_bias"] = true;
  if (!c.text.projection) text["proj_type"] = "none";
  if (c.text.pad_id != 0) text["pad_id"] = c.text.pad_id;
  tower_options_json(text, c.text.ls_init_value, c.text.gelu_tanh, c.text.layer_norm_eps);
  const bool clip_bpe = c.text.tokenizer == TextConfig::kClipBpe;
  if (!clip_bpe) text["tokenizer"] = c.text.tokenizer;
  if (c.text.pool == TextPool::first_eos) {
    text["pool_type"] = "eos";
    text["eos_token_id"] = c.text.eos_token_id;
  } else if (c.text.pool == TextPool::last || c.text.pool == TextPool::first) {
    text["pool_type"] = c.text.pool == TextPool::last ? "last" : "first";
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
  if (c.custom_text) out["custom_text"] = true;
  if (c.layer_norm_eps != ModelConfig{}.layer_norm_eps) out["layer_norm_eps"] = c.layer_norm_eps;
  return out.dump(2);
}

}  // namespace clip
