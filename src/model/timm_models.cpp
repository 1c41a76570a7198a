#include "model/timm_models.h"

namespace clip::detail {
namespace {

// From timm's vision_transformer.py (timm 1.0.31): each model function's arguments. timm's ViT defaults apply to
// what a function leaves out: mlp_ratio 4, exact GELU, a class token, LayerNorm with eps 1e-6, qkv bias.
// name, image size, patch, width, depth, heads, mlp ratio, tanh GELU, default pool, fc_norm=False, class token
constexpr TimmVitShape kShapes[] = {
    {"vit_base_patch32_siglip_256", 256, 32, 768, 12, 12, 4.0, true, "map", false, false},
    {"vit_base_patch16_siglip_224", 224, 16, 768, 12, 12, 4.0, false, "map", false, false},
    {"vit_base_patch16_siglip_256", 256, 16, 768, 12, 12, 4.0, false, "map", false, false},
    {"vit_base_patch16_siglip_384", 384, 16, 768, 12, 12, 4.0, false, "map", false, false},
    {"vit_base_patch16_siglip_512", 512, 16, 768, 12, 12, 4.0, false, "map", false, false},
    {"vit_large_patch16_siglip_256", 256, 16, 1024, 24, 16, 4.0, false, "map", false, false},
    {"vit_large_patch16_siglip_384", 384, 16, 1024, 24, 16, 4.0, false, "map", false, false},
    {"vit_large_patch16_siglip_512", 512, 16, 1024, 24, 16, 4.0, true, "map", false, false},
    {"vit_so400m_patch14_siglip_224", 224, 14, 1152, 27, 16, 3.7362, false, "map", false, false},
    {"vit_so400m_patch14_siglip_378", 378, 14, 1152, 27, 16, 3.7362, false, "map", false, false},
    {"vit_so400m_patch14_siglip_384", 384, 14, 1152, 27, 16, 3.7362, false, "map", false, false},
    {"vit_so400m_patch16_siglip_256", 256, 16, 1152, 27, 16, 3.7362, true, "map", false, false},
    {"vit_so400m_patch16_siglip_384", 384, 16, 1152, 27, 16, 3.7362, true, "map", false, false},
    {"vit_so400m_patch16_siglip_512", 512, 16, 1152, 27, 16, 3.7362, true, "map", false, false},
    {"vit_giantopt_patch16_siglip_256", 256, 16, 1536, 40, 16, 4.0, true, "map", false, false},
    {"vit_giantopt_patch16_siglip_384", 384, 16, 1536, 40, 16, 4.0, true, "map", false, false},
    {"vit_base_patch32_siglip_gap_256", 256, 32, 768, 12, 12, 4.0, true, "avg", true, false},
    {"vit_base_patch16_siglip_gap_224", 224, 16, 768, 12, 12, 4.0, false, "avg", true, false},
    {"vit_base_patch16_siglip_gap_256", 256, 16, 768, 12, 12, 4.0, false, "avg", true, false},
    {"vit_base_patch16_siglip_gap_384", 384, 16, 768, 12, 12, 4.0, false, "avg", true, false},
    {"vit_base_patch16_siglip_gap_512", 512, 16, 768, 12, 12, 4.0, false, "avg", true, false},
    {"vit_large_patch16_siglip_gap_256", 256, 16, 1024, 24, 16, 4.0, false, "avg", true, false},
    {"vit_large_patch16_siglip_gap_384", 384, 16, 1024, 24, 16, 4.0, false, "avg", true, false},
    {"vit_large_patch16_siglip_gap_512", 512, 16, 1024, 24, 16, 4.0, true, "avg", true, false},
    {"vit_so400m_patch14_siglip_gap_224", 224, 14, 1152, 27, 16, 3.7362, false, "avg", true, false},
    {"vit_so400m_patch14_siglip_gap_378", 378, 14, 1152, 27, 16, 3.7362, false, "avg", true, false},
    {"vit_so400m_patch14_siglip_gap_384", 384, 14, 1152, 27, 16, 3.7362, false, "avg", true, false},
    {"vit_so400m_patch14_siglip_gap_448", 448, 14, 1152, 27, 16, 3.7362, false, "avg", true, false},
    {"vit_so400m_patch14_siglip_gap_896", 896, 14, 1152, 27, 16, 3.7362, false, "avg", true, false},
    {"vit_so400m_patch16_siglip_gap_256", 256, 16, 1152, 27, 16, 3.7362, true, "avg", true, false},
    {"vit_so400m_patch16_siglip_gap_384", 384, 16, 1152, 27, 16, 3.7362, true, "avg", true, false},
    {"vit_so400m_patch16_siglip_gap_512", 512, 16, 1152, 27, 16, 3.7362, true, "avg", true, false},
    {"vit_giantopt_patch16_siglip_gap_256", 256, 16, 1536, 40, 16, 4.0, true, "avg", true, false},
    {"vit_giantopt_patch16_siglip_gap_384", 384, 16, 1536, 40, 16, 4.0, true, "avg", true, false},
};

}  // namespace

const TimmVitShape* find_timm_vit(const std::string& name) {
  for (const TimmVitShape& shape : kShapes) {
    if (name == shape.name) return &shape;
  }
  return nullptr;
}

std::string timm_vit_names() {
  std::string names;
  for (const TimmVitShape& shape : kShapes) names += (names.empty() ? "" : " ") + std::string(shape.name);
  return names;
}

}  // namespace clip::detail
