#pragma once
// open_clip's pretrained registry for the configs libclip ships (generated: src/model/pretrained_tags.cpp).
// Model-layer code; the public side is clip/model/pretrained.h.
#include <array>

namespace clip::detail {

struct PretrainedTag {
  const char* model;  // open_clip's model config name
  const char* tag;    // open_clip's pretrained tag ("openai", "laion2b_s34b_b79k", "webli", ...)
  const char* repo;   // the Hugging Face hub repo open_clip downloads the weights from
  bool quick_gelu;    // open_clip's activation for the pair: its config's QuickGELU, or forced by the release
  std::array<double, 3> mean;
  std::array<double, 3> std;
  const char* interpolation;  // "bicubic" | "bilinear"
  const char* resize_mode;    // "shortest" | "squash" | "longest"
};

const PretrainedTag* pretrained_tags_begin();
const PretrainedTag* pretrained_tags_end();

}  // namespace clip::detail
