#include "clip/model/hf.h"

#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include <nlohmann/json.hpp>

#include "clip/io/safetensors.h"
#include "clip/util/error.h"
#include "util/atomic_file.h"
#include "util/json.h"

namespace clip {
namespace {

using json = nlohmann::json;

// One tensor of ours and the HF tensors it is made of.
struct Link {
  std::string ours;
  std::vector<std::string> hf;  // one name, or q/k/v to concatenate along dim 0
  bool transpose = false;       // projections: HF Linear weight [embed, width] = ours^T
  // SigLIP: what else turns HF's tensor into ours (a row range of a fused projection, a reshape); reading only.
  std::function<at::Tensor(const at::Tensor&)> convert = nullptr;
};

void add_block_links(std::vector<Link>& links, const std::string& ours, const std::string& hf);

constexpr const char* kSiglip = "siglip";

// HF's SigLIP (SiglipModel) onto open_clip's SigLIP layout (`visual.trunk.*` as timm names it, `text.*`).
std::vector<Link> siglip_links(const ModelConfig& c) {
  const int64_t d = c.vision.width;
  std::vector<Link> links = {
      {"logit_scale", {"logit_scale"}, false, [](const at::Tensor& t) { return t.reshape({}); }},
      {"logit_bias", {"logit_bias"}, false, [](const at::Tensor& t) { return t.reshape({}); }},
      {"visual.trunk.pos_embed", {"vision_model.embeddings.position_embedding.weight"}, false,
       [](const at::Tensor& t) { return t.unsqueeze(0); }},
      {"visual.trunk.attn_pool.latent", {"vision_model.head.probe"}},
      {"text.token_embedding.weight", {"text_model.embeddings.token_embedding.weight"}},
      {"text.positional_embedding", {"text_model.embeddings.position_embedding.weight"}},
  };
  for (const char* p : {"weight", "bias"}) {
    const std::string s = p;
    links.push_back({"visual.trunk.patch_embed.proj." + s, {"vision_model.embeddings.patch_embedding." + s}});
    links.push_back({"visual.trunk.norm." + s, {"vision_model.post_layernorm." + s}});
    // nn.MultiheadAttention's fused in_proj: q rows, then k and v (timm's kv is [k; v]).
    const std::string in_proj = "vision_model.head.attention.in_proj_" + s;
    links.push_back({"visual.trunk.attn_pool.q." + s, {in_proj}, false, [d](const at::Tensor& t) { return t.narrow(0, 0, d); }});
    links.push_back({"visual.trunk.attn_pool.kv." + s, {in_proj}, false,
                     [d](const at::Tensor& t) { return t.narrow(0, d, 2 * d); }});
    links.push_back({"visual.trunk.attn_pool.proj." + s, {"vision_model.head.attention.out_proj." + s}});
    links.push_back({"visual.trunk.attn_pool.norm." + s, {"vision_model.head.layernorm." + s}});
    links.push_back({"visual.trunk.attn_pool.mlp.fc1." + s, {"vision_model.head.mlp.fc1." + s}});
    links.push_back({"visual.trunk.attn_pool.mlp.fc2." + s, {"vision_model.head.mlp.fc2." + s}});
    links.push_back({"text.ln_final." + s, {"text_model.final_layer_norm." + s}});
    links.push_back({"text.text_projection." + s, {"text_model.head." + s}});
    for (int64_t i = 0; i < c.vision.layers; ++i) {
      const std::string ours = str("visual.trunk.blocks.", i, "."), hf = str("vision_model.encoder.layers.", i, ".");
      links.push_back({ours + "norm1." + s, {hf + "layer_norm1." + s}});
      links.push_back({ours + "norm2." + s, {hf + "layer_norm2." + s}});
      links.push_back({ours + "mlp.fc1." + s, {hf + "mlp.fc1." + s}});
      links.push_back({ours + "mlp.fc2." + s, {hf + "mlp.fc2." + s}});
      links.push_back({ours + "attn.proj." + s, {hf + "self_attn.out_proj." + s}});
      links.push_back({ours + "attn.qkv." + s,
                       {hf + "self_attn.q_proj." + s, hf + "self_attn.k_proj." + s, hf + "self_attn.v_proj." + s}});
    }
  }
  std::vector<Link> text;
  for (int64_t i = 0; i < c.text.layers; ++i) {
    add_block_links(text, str("text.transformer.resblocks.", i, "."), str("text_model.encoder.layers.", i, "."));
  }
  links.insert(links.end(), text.begin(), text.end());
  return links;
}

void add_block_links(std::vector<Link>& links, const std::string& ours, const std::string& hf) {
  for (const char* p : {"weight", "bias"}) {
    const std::string s = p;
    links.push_back({ours + "ln_1." + s, {hf + "layer_norm1." + s}});
    links.push_back({ours + "ln_2." + s, {hf + "layer_norm2." + s}});
    links.push_back({ours + "mlp.c_fc." + s, {hf + "mlp.fc1." + s}});
    links.push_back({ours + "mlp.c_proj." + s, {hf + "mlp.fc2." + s}});
    links.push_back({ours + "attn.out_proj." + s, {hf + "self_attn.out_proj." + s}});
    links.push_back({ours + "attn.in_proj_" + s,
                     {hf + "self_attn.q_proj." + s, hf + "self_attn.k_proj." + s, hf + "self_attn.v_proj." + s}});
  }
}

std::vector<Link> links_for(const ModelConfig& c, const std::string& source) {
  if (c.vision.is_timm()) {
    if (c.custom_text && c.text.proj_bias && !c.text.causal && c.init_logit_bias) return siglip_links(c);
    fail(source, ": a timm image tower outside HF's SigLIP layout has no HF transformers form");
  }
  if (c.vision.is_resnet()) {
    fail(source, ": HF transformers' CLIPModel has no ResNet image tower; convert ResNet models to safetensors");
  }
  std::vector<Link> links = {
      {"token_embedding.weight", {"text_model.embeddings.token_embedding.weight"}},
      {"positional_embedding", {"text_model.embeddings.position_embedding.weight"}},
      {"ln_final.weight", {"text_model.final_layer_norm.weight"}},
      {"ln_final.bias", {"text_model.final_layer_norm.bias"}},
      {"text_projection", {"text_projection.weight"}, true},
      {"logit_scale", {"logit_scale"}},
      {"visual.class_embedding", {"vision_model.embeddings.class_embedding"}},
      {"visual.conv1.weight", {"vision_model.embeddings.patch_embedding.weight"}},
      {"visual.positional_embedding", {"vision_model.embeddings.position_embedding.weight"}},
      {"visual.ln_pre.weight", {"vision_model.pre_layrnorm.weight"}},  // sic: HF's name
      {"visual.ln_pre.bias", {"vision_model.pre_layrnorm.bias"}},
      {"visual.ln_post.weight", {"vision_model.post_layernorm.weight"}},
      {"visual.ln_post.bias", {"vision_model.post_layernorm.bias"}},
      {"visual.proj", {"visual_projection.weight"}, true},
  };
  for (int64_t i = 0; i < c.text.layers; ++i) {
    add_block_links(links, str("transformer.resblocks.", i, "."), str("text_model.encoder.layers.", i, "."));
  }
  for (int64_t i = 0; i < c.vision.layers; ++i) {
    add_block_links(links, str("visual.transformer.resblocks.", i, "."), str("vision_model.encoder.layers.", i, "."));
  }
  return links;
}

// HF's defaults for keys a config.json may omit (transformers' CLIPTextConfig / CLIPVisionConfig).
template <typename T>
T get(const json& j, const char* key, T fallback, const std::string& source, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    fail(source, ": '", where, key, "' has the wrong type (", it->dump(), ")");
  }
}

bool is_quick_gelu(const std::string& act, const std::string& source, const std::string& where) {
  if (act == "quick_gelu") return true;
  if (act == "gelu") return false;
  fail(source, ": '", where, "hidden_act' = \"", act, "\" is not supported (libclip has quick_gelu and gelu)");
}

// The mlp_ratio whose int(width * ratio) (open_clip's rule for the hidden size) is `hidden`: hidden / width, nudged up
// by the last place where the division rounds down (176 / 240 * 240 = 175.99...).
double mlp_ratio_for(int64_t hidden, int64_t width) {
  if (width <= 0) return 4.0;  // the config check reports the width
  double ratio = double(hidden) / double(width);
  for (int i = 0; i < 8 && static_cast<int64_t>(double(width) * ratio) < hidden; ++i) {
    ratio = std::nextafter(ratio, 2 * ratio + 1);
  }
  return ratio;
}

// The activation HF names: SigLIP's towers use the tanh form.
bool is_gelu_tanh(const std::string& act, const std::string& source, const std::string& where) {
  if (act == "gelu_pytorch_tanh" || act == "gelu_new" || act == "gelu_fast") return true;
  if (act == "gelu") return false;
  fail(source, ": '", where, "hidden_act' = \"", act, "\" is not supported (libclip has gelu and gelu_pytorch_tanh)");
}

// HF's SiglipConfig (transformers' defaults for what it omits) as open_clip's SigLIP layout: a timm-layout image
// tower with the MAP head and no projection, a bidirectional text tower pooled at its last position with a biased
// projection (`head`), sigmoid logits with a learned bias.
ModelConfig parse_hf_siglip_config(const json& j, const std::string& source) {
  const json text = j.value("text_config", json::object());
  const json vision = j.value("vision_config", json::object());
  ModelConfig c;
  c.custom_text = true;
  c.init_logit_bias = -10.0;  // the weights carry the learned value
  c.init_logit_scale = std::log(10.0);
  VisionConfig& v = c.vision;
  v.timm_layout = true;
  v.timm_pool = "map";
  v.timm_proj = "none";
  v.class_token = false;
  v.image_size = get<int64_t>(vision, "image_size", 224, source, "vision_config.");
  v.patch_size = get<int64_t>(vision, "patch_size", 16, source, "vision_config.");
  v.width = get<int64_t>(vision, "hidden_size", 768, source, "vision_config.");
  v.layers = get<int64_t>(vision, "num_hidden_layers", 12, source, "vision_config.");
  const int64_t heads = get<int64_t>(vision, "num_attention_heads", 12, source, "vision_config.");
  if (heads <= 0 || v.width % heads != 0) {
    fail(source, ": vision_config.hidden_size ", v.width, " is not a multiple of num_attention_heads ", heads);
  }
  v.head_width = v.width / heads;
  v.mlp_ratio = mlp_ratio_for(get<int64_t>(vision, "intermediate_size", 3072, source, "vision_config."), v.width);
  v.gelu_tanh = is_gelu_tanh(get<std::string>(vision, "hidden_act", "gelu_pytorch_tanh", source, "vision_config."),
                             source, "vision_config.");
  v.layer_norm_eps = get<double>(vision, "layer_norm_eps", 1e-6, source, "vision_config.");
  if (!get<bool>(vision, "vision_use_head", true, source, "vision_config.")) {
    fail(source, ": vision_config.vision_use_head is false: the model has no pooling head to give image features");
  }
  c.embed_dim = v.width;
  TextConfig& t = c.text;
  t.vocab_size = get<int64_t>(text, "vocab_size", 32000, source, "text_config.");
  t.width = get<int64_t>(text, "hidden_size", 768, source, "text_config.");
  t.heads = get<int64_t>(text, "num_attention_heads", 12, source, "text_config.");
  t.layers = get<int64_t>(text, "num_hidden_layers", 12, source, "text_config.");
  t.context_length = get<int64_t>(text, "max_position_embeddings", 64, source, "text_config.");
  t.mlp_ratio = mlp_ratio_for(get<int64_t>(text, "intermediate_size", 3072, source, "text_config."), t.width);
  t.gelu_tanh = is_gelu_tanh(get<std::string>(text, "hidden_act", "gelu_pytorch_tanh", source, "text_config."),
                             source, "text_config.");
  t.layer_norm_eps = get<double>(text, "layer_norm_eps", 1e-6, source, "text_config.");
  t.causal = false;
  t.pool = TextPool::last;  // SiglipTextTransformer: last_hidden_state[:, -1]
  t.proj_bias = true;
  t.pad_id = get<int64_t>(text, "pad_token_id", 1, source, "text_config.");
  t.hf_tokenizer_name = get<std::string>(j, "_name_or_path", "", source, "");
  if (t.hf_tokenizer_name.empty()) t.hf_tokenizer_name = "SigLIP's SentencePiece tokenizer (spiece.model)";
  t.hf_tokenizer_clean = "none";  // the folder's tokenizer as transformers runs it
  const int64_t projection = get<int64_t>(text, "projection_size", t.width, source, "text_config.");
  if (projection != c.embed_dim) {
    fail(source, ": text_config.projection_size ", projection, " differs from vision_config.hidden_size ", c.embed_dim,
         "; the two towers' features could not be compared");
  }
  // SiglipImageProcessor's defaults: resize to the square size (no crop), bicubic, mean and std 0.5.
  c.preprocess.mean = {0.5, 0.5, 0.5};
  c.preprocess.std = {0.5, 0.5, 0.5};
  c.preprocess.resize_mode = ResizeMode::squash;
  c.preprocess.interpolation = Filter::bicubic;
  return parse_model_config(to_json(c), source);
}

}  // namespace

ModelConfig parse_hf_config(const std::string& json_text, const std::string& source) {
  const json j = parse_json(json_text, source);
  if (!j.is_object()) fail(source, ": not a JSON object");
  const std::string type = get<std::string>(j, "model_type", "", source, "");
  if (type == kSiglip) return parse_hf_siglip_config(j, source);
  if (type != "clip") {
    fail(source, ": model_type is \"", type, "\", libclip reads HF folders of CLIPModel (\"clip\") and SiglipModel (\"",
         kSiglip, "\")", type == "siglip2" ? "; SigLIP 2's NaFlex (variable-resolution) models are not supported yet, its "
                                             "fixed-resolution releases are \"siglip\" folders"
                                           : "");
  }
  const json text = j.value("text_config", json::object());
  const json vision = j.value("vision_config", json::object());
  ModelConfig c;
  c.embed_dim = get<int64_t>(j, "projection_dim", 512, source, "");
  c.init_logit_scale = get<double>(j, "logit_scale_init_value", 2.6592, source, "");

  c.text.vocab_size = get<int64_t>(text, "vocab_size", 49408, source, "text_config.");
  c.text.width = get<int64_t>(text, "hidden_size", 512, source, "text_config.");
  c.text.heads = get<int64_t>(text, "num_attention_heads", 8, source, "text_config.");
  c.text.layers = get<int64_t>(text, "num_hidden_layers", 12, source, "text_config.");
  c.text.context_length = get<int64_t>(text, "max_position_embeddings", 77, source, "text_config.");
  c.text.mlp_ratio = mlp_ratio_for(get<int64_t>(text, "intermediate_size", 2048, source, "text_config."), c.text.width);
  const int64_t eos = get<int64_t>(text, "eos_token_id", 2, source, "text_config.");
  // HF: eos_token_id 2 is the legacy configuration that pools at argmax(ids); otherwise the first EOS.
  c.text.pool = eos == 2 ? TextPool::argmax : TextPool::first_eos;
  c.text.eos_token_id = eos == 2 ? c.text.vocab_size - 1 : eos;

  c.vision.image_size = get<int64_t>(vision, "image_size", 224, source, "vision_config.");
  c.preprocess.size = c.vision.image_size;
  c.vision.patch_size = get<int64_t>(vision, "patch_size", 32, source, "vision_config.");
  c.vision.width = get<int64_t>(vision, "hidden_size", 768, source, "vision_config.");
  const int64_t vision_heads = get<int64_t>(vision, "num_attention_heads", 12, source, "vision_config.");
  c.vision.layers = get<int64_t>(vision, "num_hidden_layers", 12, source, "vision_config.");
  c.vision.mlp_ratio =
      mlp_ratio_for(get<int64_t>(vision, "intermediate_size", 3072, source, "vision_config."), c.vision.width);
  if (vision_heads <= 0 || c.vision.width % vision_heads != 0) {
    fail(source, ": vision_config.hidden_size ", c.vision.width, " is not a multiple of num_attention_heads ", vision_heads);
  }
  c.vision.head_width = c.vision.width / vision_heads;

  const bool text_quick = is_quick_gelu(get<std::string>(text, "hidden_act", "quick_gelu", source, "text_config."),
                                        source, "text_config.");
  const bool vision_quick = is_quick_gelu(
      get<std::string>(vision, "hidden_act", "quick_gelu", source, "vision_config."), source, "vision_config.");
  if (text_quick != vision_quick) fail(source, ": the towers use different activations, which libclip does not support");
  c.quick_gelu = text_quick;
  const double text_eps = get<double>(text, "layer_norm_eps", 1e-5, source, "text_config.");
  const double vision_eps = get<double>(vision, "layer_norm_eps", 1e-5, source, "vision_config.");
  if (text_eps != vision_eps) fail(source, ": the towers use different layer_norm_eps, which libclip does not support");
  c.layer_norm_eps = text_eps;
  // Re-validate through our own parser, so HF configs obey the same rules as ours.
  return parse_model_config(to_json(c), source);
}

std::string to_hf_config(const ModelConfig& c) {
  if (c.vision.is_resnet()) fail(c.name, ": HF transformers' CLIPModel has no ResNet image tower");
  if (c.vision.is_timm() || c.custom_text) {
    fail(c.name, ": writing HF folders is done for CLIPModel only; write this model as safetensors");
  }
  if (c.init_logit_bias) fail(c.name, ": HF transformers' CLIPModel has no logit bias (a SigLIP-trained model)");
  const std::string act = c.quick_gelu ? "quick_gelu" : "gelu";
  // argmax pooling is first-EOS pooling when the end token is the largest id, which is what argmax relies on.
  const int64_t eos = c.text.pool == TextPool::argmax ? c.text.vocab_size - 1 : c.text.eos_token_id;
  if (c.text.pool == TextPool::first_eos && eos == 2) {
    fail(c.name, ": end token id 2 reads as HF's legacy argmax pooling; HF cannot express this model");
  }
  json text = {{"model_type", "clip_text_model"},
               {"vocab_size", c.text.vocab_size},
               {"hidden_size", c.text.width},
               {"intermediate_size", int64_t(double(c.text.width) * c.text.mlp_ratio)},
               {"num_attention_heads", c.text.heads},
               {"num_hidden_layers", c.text.layers},
               {"max_position_embeddings", c.text.context_length},
               {"hidden_act", act},
               {"layer_norm_eps", c.layer_norm_eps},
               {"bos_token_id", std::max<int64_t>(eos - 1, 0)},
               {"eos_token_id", eos},
               {"pad_token_id", 0},
               {"projection_dim", c.embed_dim}};
  json vision = {{"model_type", "clip_vision_model"},
                 {"hidden_size", c.vision.width},
                 {"intermediate_size", int64_t(double(c.vision.width) * c.vision.mlp_ratio)},
                 {"num_attention_heads", c.vision.heads()},
                 {"num_hidden_layers", c.vision.layers},
                 {"image_size", c.vision.image_size},
                 {"patch_size", c.vision.patch_size},
                 {"num_channels", 3},
                 {"hidden_act", act},
                 {"layer_norm_eps", c.layer_norm_eps},
                 {"projection_dim", c.embed_dim}};
  json out = {{"architectures", {"CLIPModel"}},
              {"model_type", "clip"},
              {"projection_dim", c.embed_dim},
              {"logit_scale_init_value", c.init_logit_scale},
              {"torch_dtype", "float32"},
              {"text_config", text},
              {"vision_config", vision}};
  return out.dump(2);
}

TensorMap from_hf_state_dict(const TensorMap& hf, const ModelConfig& config, const std::string& source) {
  TensorMap ours;
  std::set<std::string> used;
  std::vector<std::string> missing;
  for (const Link& link : links_for(config, source)) {
    std::vector<at::Tensor> parts;
    for (const auto& name : link.hf) {
      auto it = hf.find(name);
      if (it == hf.end()) {
        missing.push_back(name);
        continue;
      }
      used.insert(name);
      parts.push_back(it->second);
    }
    if (parts.size() != link.hf.size()) continue;
    at::Tensor t = parts.size() == 1 ? parts[0] : at::cat(parts, 0);
    if (link.convert) t = link.convert(t).contiguous();
    ours[link.ours] = link.transpose ? t.t().contiguous() : t;
  }
  std::vector<std::string> unexpected;
  for (const auto& [name, tensor] : hf) {
    // position_ids are a constant buffer that older transformers versions saved.
    if (used.count(name) == 0 && name.find("position_ids") == std::string::npos) unexpected.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty()) {
    std::string message = source + ": HF state dict does not match its config:";
    if (!missing.empty()) message += str(" missing ", missing.size(), " (", missing.front(), ", ...);");
    if (!unexpected.empty()) message += str(" unexpected ", unexpected.size(), " (", unexpected.front(), ", ...);");
    throw Error(message);
  }
  return ours;
}

TensorMap to_hf_state_dict(const TensorMap& ours, const ModelConfig& config) {
  TensorMap hf;
  for (const Link& link : links_for(config, config.name)) {
    auto it = ours.find(link.ours);
    if (it == ours.end()) fail(config.name, ": state dict has no '", link.ours, "'");
    at::Tensor t = link.transpose ? it->second.t().contiguous() : it->second;
    if (link.hf.size() == 1) {
      hf[link.hf[0]] = t;
    } else {
      const auto chunks = t.chunk(static_cast<int64_t>(link.hf.size()), 0);
      for (size_t i = 0; i < link.hf.size(); ++i) hf[link.hf[i]] = chunks[i].contiguous();
    }
  }
  return hf;
}

void save_hf_folder(CLIPImpl& model, const std::string& dir, at::ScalarType dtype) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail(dir, ": cannot create the folder (", ec.message(), ")");
  const std::string config = to_hf_config(model.config());
  TensorMap tensors = to_hf_state_dict(state_dict(model), model.config());
  for (auto& [name, t] : tensors) {
    if (t.is_floating_point()) t = t.to(dtype);
  }
  write_safetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}});
  AtomicFile file(dir + "/config.json");
  file.write(config.data(), config.size());
  file.commit();
}

}  // namespace clip
