#pragma once
/// The Transformer blocks shared by the ViT image tower and the text tower, named as the reference's state dict.
///
///   clip::Transformer blocks(clip::TransformerOptions(/*width=*/512, /*layers=*/12, /*heads=*/8));
///   torch::Tensor y = blocks(x, /*causal=*/true);   // x: [batch, sequence, width]
///
/// Parameter names (BlockNames::open_clip): `resblocks.N.ln_1`, `resblocks.N.attn.in_proj_weight`,
/// `resblocks.N.attn.in_proj_bias`, `resblocks.N.attn.out_proj`, `resblocks.N.ln_2`, `resblocks.N.mlp.c_fc`,
/// `resblocks.N.mlp.c_proj`, and with layer scale `resblocks.N.ls_1.gamma`, `resblocks.N.ls_2.gamma`.
/// BlockNames::timm names the same tensors as timm's ViT does: `blocks.N.norm1`, `blocks.N.attn.qkv`,
/// `blocks.N.attn.proj`, `blocks.N.norm2`, `blocks.N.mlp.fc1`, `blocks.N.mlp.fc2`, `blocks.N.ls1.gamma`, ...
/// Tensors are batch-first ([N, L, D]); the reference's [L, N, D] layout changes nothing numerically.
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <optional>

namespace clip {

class PackedLinears;

/// The MLP activation: exact (erf) GELU, QuickGELU x * sigmoid(1.702 x) (OpenAI's models), or GELU's tanh
/// approximation (nn.GELU(approximate='tanh'): SigLIP 2's text tower, several of timm's SigLIP image towers).
enum class Activation { gelu, quick_gelu, gelu_tanh };

/// Whose parameter names a Transformer's blocks carry (the computation is the same).
enum class BlockNames {
  open_clip,  ///< openai/CLIP and open_clip: `resblocks.N.ln_1`, `attn.in_proj_weight`, `mlp.c_fc`, `ls_1.gamma`
  timm,       ///< timm's ViT: `blocks.N.norm1`, `attn.qkv.weight`, `attn.proj`, `mlp.fc1`, `ls1.gamma`
};

/// Applies the activation.
torch::Tensor activate(const torch::Tensor& x, Activation activation);

/// LayerNorm that computes in fp32 whatever the input dtype and returns the input dtype (the reference's
/// `LayerNorm` subclass, needed for fp16/bf16 stability). Parameters: `weight`, `bias`.
class LayerNormImpl : public torch::nn::Module {
 public:
  explicit LayerNormImpl(int64_t width, double eps = 1e-5);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;
  torch::Tensor bias;

 private:
  int64_t width_;
  double eps_;
};
TORCH_MODULE(LayerNorm);

/// Multi-head self-attention with the fused `in_proj_weight` [3D, D] / `in_proj_bias` [3D] layout of
/// torch.nn.MultiheadAttention, and `out_proj`. Runs fused scaled-dot-product attention where LibTorch has it.
class MultiheadAttentionImpl : public torch::nn::Module {
 public:
  /// BlockNames::timm registers the fused projection as the Linear `qkv` (in_proj_weight and in_proj_bias are its
  /// weight and bias) and the output projection as `proj`.
  MultiheadAttentionImpl(int64_t width, int64_t heads, BlockNames names = BlockNames::open_clip);
  /// x: [N, L, D] -> [N, L, D]; `causal` masks attention to later positions.
  torch::Tensor forward(const torch::Tensor& x, bool causal = false);

  torch::Tensor in_proj_weight;
  torch::Tensor in_proj_bias;
  torch::nn::Linear out_proj{nullptr};  ///< `out_proj`, or timm's `proj`

 private:
  int64_t heads_;
  std::shared_ptr<PackedLinears> packed_;  // inference on the CPU (src/model/packed_linear.h)
};
TORCH_MODULE(MultiheadAttention);

/// Options of a Transformer stack (and of each of its blocks).
struct TransformerOptions {
  TransformerOptions(int64_t width, int64_t layers, int64_t heads) : width_(width), layers_(layers), heads_(heads) {}
  TORCH_ARG(int64_t, width);
  TORCH_ARG(int64_t, layers);
  TORCH_ARG(int64_t, heads);
  TORCH_ARG(double, mlp_ratio) = 4.0;
  TORCH_ARG(Activation, activation) = Activation::gelu;
  TORCH_ARG(double, layer_norm_eps) = 1e-5;
  TORCH_ARG(BlockNames, names) = BlockNames::open_clip;
  /// Each branch is scaled by a learned per-channel `gamma` before the residual add (CaiT's LayerScale:
  /// open_clip's `ls_init_value`, timm's `init_values`); its initial value.
  TORCH_ARG(std::optional<double>, layer_scale) = std::nullopt;
};

/// The block's MLP: `c_fc` (D -> mlp_ratio D) -> activation -> `c_proj` (back to D); timm's `fc1` and `fc2`.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t width, int64_t hidden, Activation activation, BlockNames names = BlockNames::open_clip);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear c_fc{nullptr};    ///< `c_fc`, or timm's `fc1`
  torch::nn::Linear c_proj{nullptr};  ///< `c_proj`, or timm's `fc2`

 private:
  Activation activation_;
  std::shared_ptr<PackedLinears> packed_;  // inference on the CPU (src/model/packed_linear.h)
};
TORCH_MODULE(Mlp);

/// Pre-norm residual block: x + attn(ln_1(x)), then x + mlp(ln_2(x)); with layer scale each branch is multiplied
/// by its `gamma` first.
class ResidualAttentionBlockImpl : public torch::nn::Module {
 public:
  explicit ResidualAttentionBlockImpl(const TransformerOptions& options);
  torch::Tensor forward(const torch::Tensor& x, bool causal = false);

  LayerNorm ln_1{nullptr};  ///< `ln_1`, or timm's `norm1`
  MultiheadAttention attn{nullptr};
  LayerNorm ln_2{nullptr};  ///< `ln_2`, or timm's `norm2`
  Mlp mlp{nullptr};
  torch::Tensor ls_1;  ///< [D] layer scale of the attention branch (`ls_1.gamma` / `ls1.gamma`); undefined without
  torch::Tensor ls_2;  ///< [D] of the MLP branch
};
TORCH_MODULE(ResidualAttentionBlock);

/// A stack of ResidualAttentionBlocks registered as `resblocks` (timm's ViT keeps them as `blocks` at its own top
/// level: TimmVisionTransformer registers this list there).
class TransformerImpl : public torch::nn::Module {
 public:
  explicit TransformerImpl(const TransformerOptions& options);
  torch::Tensor forward(torch::Tensor x, bool causal = false);
  /// The reference's initialization (open_clip's `init_parameters`): attention in_proj N(0, width^-0.5),
  /// out_proj and c_proj N(0, width^-0.5 (2 layers)^-0.5), c_fc N(0, (2 width)^-0.5).
  void initialize_parameters();
  /// Activation checkpointing: when on (and grad mode is on), each block keeps only its input and recomputes
  /// its activations during the backward pass, trading one extra forward for memory.
  void set_grad_checkpointing(bool enabled) { grad_checkpointing_ = enabled; }

  const TransformerOptions& options() const { return options_; }
  torch::nn::ModuleList resblocks{nullptr};

 private:
  TransformerOptions options_;
  bool grad_checkpointing_ = false;
};
TORCH_MODULE(Transformer);

}  // namespace clip
