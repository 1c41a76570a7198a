// Embeds two random images and three token sequences with a CLIP checkpoint and prints their similarities.
//   consumer MODEL.safetensors CONFIG.json
#include <clip/model/checkpoint.h>

#include <torch/nn/module.h>

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL.safetensors CONFIG.json\n", argv[0]);
    return 2;
  }
  try {
    clip::CLIP model = clip::load_model(argv[1], clip::LoadOptions().config_path(argv[2]));
    const auto& config = model->config();
    torch::NoGradGuard no_grad;
    const auto images = torch::randn({2, 3, config.vision.image_size, config.vision.image_size});
    const auto ids = torch::randint(1, config.text.vocab_size - 1, {3, config.text.context_length}, torch::kLong);
    const clip::ClipOutput out = model->forward(images, ids);
    const auto similarity = out.logits_per_image / model->logit_scale.exp();
    std::printf("cosine similarity of 2 images x 3 texts:\n");
    for (int64_t i = 0; i < similarity.size(0); ++i) {
      for (int64_t j = 0; j < similarity.size(1); ++j) std::printf(" %8.4f", similarity[i][j].item<double>());
      std::printf("\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
  return 0;
}
