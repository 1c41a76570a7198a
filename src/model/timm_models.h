#pragma once
// The timm ViTs that open_clip configs name (`vision_cfg.timm_model_name`), as timm's own model functions define
// them: libclip builds the same tower (TimmVisionTransformer) from this table instead of from timm. Model-layer code.
#include <cstdint>
#include <optional>
#include <string>

namespace clip::detail {

struct TimmVitShape {
  const char* name;
  int64_t image_size;
  int64_t patch_size;
  int64_t width;
  int64_t layers;
  int64_t heads;
  double mlp_ratio;
  bool gelu_tanh;        // act_layer='gelu_tanh'
  const char* pool;      // timm's default global_pool: "map", "avg" or "token"
  bool fc_norm_false;    // fc_norm=False stated (SigLIP's _gap towers): the final norm stays before the pool
  bool class_token;
};

/// The entry for `name`, or nullptr.
const TimmVitShape* find_timm_vit(const std::string& name);

/// Every name in the table, space-separated (for errors).
std::string timm_vit_names();

}  // namespace clip::detail
