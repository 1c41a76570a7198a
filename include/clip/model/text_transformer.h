#pragma once
/// The text tower: token ids to projected text features.
///
///   clip::TextTransformer text(clip::TextTransformerOptions(cfg.text, /*output_dim=*/512));
///   torch::Tensor features = text(ids);   // [N, 77] int64 -> [N, 512]
///
/// `token_embedding` + `positional_embedding` -> `transformer` (causal unless the config says otherwise) ->
/// `ln_final` -> the token at the pooling position (argmax of the ids for the CLIP BPE, whose end token has the
/// largest id; the first EOS; or a fixed position) -> @ `text_projection` (or a Linear with bias, SigLIP's). Inside
/// CLIP these parameters sit at the top level of the state dict, as the reference, or under `text.` (custom_text).
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include "clip/model/config.h"
#include "clip/model/transformer.h"

namespace clip {

/// Options of a TextTransformer.
struct TextTransformerOptions {
  TextTransformerOptions(TextConfig config, int64_t output_dim) : config_(std::move(config)), output_dim_(output_dim) {}
  TORCH_ARG(TextConfig, config);
  TORCH_ARG(int64_t, output_dim);
  TORCH_ARG(Activation, activation) = Activation::gelu;
  TORCH_ARG(double, layer_norm_eps) = 1e-5;
};

/// Text Transformer with end-of-text (or fixed-position) pooling.
class TextTransformerImpl : public torch::nn::Module {
 public:
  explicit TextTransformerImpl(const TextTransformerOptions& options);
  /// ids: [N, L] int64 with L <= context_length -> [N, output_dim].
  torch::Tensor forward(const torch::Tensor& ids);
  /// token_embedding ~ N(0, 0.02), positional_embedding ~ N(0, 0.01), text_projection ~ N(0, width^-0.5),
  /// and the blocks as Transformer::initialize_parameters.
  void initialize_parameters();
  /// The position each sequence is pooled at: [N] int64.
  torch::Tensor pool_positions(const torch::Tensor& ids) const;

  torch::nn::Embedding token_embedding{nullptr};
  torch::Tensor positional_embedding;  ///< [context_length, width]
  Transformer transformer{nullptr};
  LayerNorm ln_final{nullptr};
  torch::Tensor text_projection;  ///< [width, output_dim]; with proj_bias, the transpose of text_projection_linear's
  torch::nn::Linear text_projection_linear{nullptr};  ///< `text_projection` as a Linear with bias (proj_bias)

 private:
  TextTransformerOptions options_;
};
TORCH_MODULE(TextTransformer);

}  // namespace clip
