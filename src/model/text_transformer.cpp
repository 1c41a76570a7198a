#include "clip/model/text_transformer.h"

#include <ATen/ATen.h>
#include <ATen/TensorIndexing.h>

#include <cmath>

#include "model/initialization.h"

namespace clip {

TextTransformerImpl::TextTransformerImpl(const TextTransformerOptions& o) : options_(o) {
  const TextConfig& c = o.config();
  // Built on a given (empty) weight when the weights will be loaded: Embedding draws its own otherwise.
  torch::nn::EmbeddingOptions embedding(c.vocab_size, c.width);
  if (!detail::initializing_weights()) embedding._weight(torch::empty({c.vocab_size, c.width}));
  token_embedding = register_module("token_embedding", torch::nn::Embedding(embedding));
  positional_embedding = register_parameter("positional_embedding", torch::empty({c.context_length, c.width}));
  const double eps = c.layer_norm_eps.value_or(o.layer_norm_eps());
  transformer = register_module("transformer", Transformer(TransformerOptions(c.width, c.layers, c.heads)
                                                               .mlp_ratio(c.mlp_ratio)
                                                               .activation(c.gelu_tanh ? Activation::gelu_tanh
                                                                                       : o.activation())
                                                               .layer_norm_eps(eps)
                                                               .layer_scale(c.ls_init_value)));
  ln_final = register_module("ln_final", LayerNorm(c.width, eps));
  if (!c.projection) {
    // proj_type "none": the pooled token is the feature (no parameter).
  } else if (c.proj_bias) {
    text_projection_linear = register_module("text_projection", detail::linear(c.width, o.output_dim()));
  } else {
    text_projection = register_parameter("text_projection", torch::empty({c.width, o.output_dim()}));
  }
  if (detail::initializing_weights()) initialize_parameters();
}

void TextTransformerImpl::initialize_parameters() {
  torch::NoGradGuard no_grad;
  token_embedding->weight.normal_(0, 0.02);
  positional_embedding.normal_(0, 0.01);
  const double projection_std = std::pow(static_cast<double>(options_.config().width), -0.5);
  if (text_projection_linear) {
    text_projection_linear->weight.normal_(0, projection_std);
    text_projection_linear->bias.zero_();
  } else if (text_projection.defined()) {
    text_projection.normal_(0, projection_std);
  }
  transformer->initialize_parameters();
}

torch::Tensor TextTransformerImpl::pool_positions(const torch::Tensor& ids) const {
  switch (options_.config().pool) {
    case TextPool::argmax: return ids.argmax(-1);
    case TextPool::last: return at::full({ids.size(0)}, ids.size(-1) - 1, ids.options().dtype(at::kLong));
    case TextPool::first: return at::zeros({ids.size(0)}, ids.options().dtype(at::kLong));
    case TextPool::first_eos: break;
  }
  // First EOS; a row without one pools at its last position.
  at::Tensor is_eos = ids.eq(options_.config().eos_token_id).to(at::kInt);
  at::Tensor first = is_eos.argmax(-1);
  return at::where(is_eos.any(-1), first, at::full_like(first, ids.size(-1) - 1));
}

torch::Tensor TextTransformerImpl::forward(const torch::Tensor& ids) {
  TORCH_CHECK(ids.dim() == 2, "TextTransformer expects token ids [N, L], got ", ids.sizes());
  TORCH_CHECK(ids.size(1) <= positional_embedding.size(0), "text of ", ids.size(1),
              " tokens is longer than the context length ", positional_embedding.size(0));
  const at::Tensor tokens = ids.to(at::kLong);
  at::Tensor x = token_embedding(tokens) + positional_embedding.narrow(0, 0, tokens.size(1));
  x = ln_final(transformer(x, options_.config().causal));
  const at::Tensor rows = at::arange(x.size(0), tokens.options());
  x = x.index({rows, pool_positions(tokens)});
  if (text_projection_linear) return text_projection_linear(x);
  return text_projection.defined() ? at::matmul(x, text_projection) : x;
}

}  // namespace clip
