#pragma once
/// Loading a model from any checkpoint people have, and saving one.
///
///   clip::CLIP model = clip::load_model("ViT-B-32.pt");                    // OpenAI's release file
///   clip::CLIP model = clip::load_model("epoch_32.pt", clip::LoadOptions().config_path("ViT-B-32.json"));
///   clip::save_model(*model, "model.safetensors");                          // loads alone afterwards
///
/// Formats, told apart by content, not by file name:
/// - TorchScript archives (OpenAI's released `RN50.pt` ... `ViT-L-14-336px.pt`, fp16 weights);
/// - `torch.save` zip archives: a bare state dict, or open_clip's `{"epoch", "name", "state_dict"}` (a DDP
///   `module.` prefix is stripped);
/// - safetensors with the reference's key names (a config in `__metadata__["config"]` is used);
/// - HF transformers folders (`config.json` + `model.safetensors` or `pytorch_model.bin`, or a sharded index);
/// - open_clip hub folders (`open_clip_config.json` + `open_clip_model.safetensors` or `..._pytorch_model.bin`);
/// - a Hugging Face hub name, `hf-hub:org/name` or `org/name` (clip/model/pretrained.h): one of those folders,
///   fetched into the local hub cache when missing.
/// The architecture comes from, in order: an explicit config (file or registry name), a config stored with the
/// checkpoint, or the reference's inference rules applied to the state dict (infer_model_config).
#include <ATen/core/ScalarType.h>
#include <torch/arg.h>

#include <optional>
#include <string>

#include "clip/io/tensor_map.h"
#include "clip/model/clip_model.h"

namespace clip {

/// The checkpoint formats libclip reads.
enum class CheckpointFormat { safetensors, torch_zip, torchscript, hf_folder, open_clip_folder };

/// "TorchScript archive", "HF transformers folder", ...
const char* format_name(CheckpointFormat format);

/// What a checkpoint holds, in the reference's key names and the stored dtypes.
struct Checkpoint {
  CheckpointFormat format;
  TensorMap state_dict;
  std::optional<ModelConfig> config;  ///< a config stored with the weights (safetensors metadata, HF config)
  /// The activation the checkpoint's origin states: OpenAI's releases and HF configs say; plain state dicts do not.
  std::optional<bool> quick_gelu;
};

/// Tells the format of a file or folder from its content; throws clip::Error naming the formats libclip reads
/// when it is none of them.
CheckpointFormat detect_format(const std::string& path);

/// Reads a checkpoint of any supported format into reference key names. Errors name the file and the problem.
Checkpoint read_checkpoint(const std::string& path);

/// The architecture implied by a reference-layout state dict (openai/CLIP's build_model rules: ViT when
/// `visual.proj` exists; widths, depths, patch size and resolution from tensor shapes; heads = width / 64;
/// QuickGELU, as in every OpenAI release). Throws clip::Error naming `source` when it is not a CLIP state dict.
ModelConfig infer_model_config(const TensorMap& state_dict, const std::string& source);

/// Options of load_model: clip::LoadOptions().config_path("ViT-B-32.json").device("cuda").
struct LoadOptions {
  /// open_clip-schema JSON; overrides what the checkpoint says
  TORCH_ARG(std::string, config_path);
  /// a registry name ("ViT-B-32"): its config, unless config_path is set
  TORCH_ARG(std::string, model_name);
  /// floating-point weights are converted to this dtype
  TORCH_ARG(at::ScalarType, dtype) = at::kFloat;
  /// "cpu", "cuda", "cuda:1", ...
  TORCH_ARG(std::string, device) = "cpu";
  /// with model_name: check the file's SHA-256 against the release (a mismatch warns on stderr)
  TORCH_ARG(bool, verify) = false;
  /// refuse weights that hold NaN or infinity (by default they load with a warning naming them)
  TORCH_ARG(bool, strict) = false;
  /// the arithmetic of inference on the CPU (clip/model/precision.h): fp32, bf16 or int8
  TORCH_ARG(InferencePrecision, precision) = InferencePrecision::fp32;
  /// let config_path / model_name differ from the config the checkpoint stores (by default refused, naming the
  /// differences: the weights would load into another architecture and give garbage)
  TORCH_ARG(bool, override_config) = false;
  /// a config already made (load_pretrained's: the registry's with the release's QuickGELU and preprocessing);
  /// wins over config_path and model_name
  TORCH_ARG(std::shared_ptr<const ModelConfig>, config);
};

/// Reads any supported checkpoint, builds the model its config describes and copies the weights in (every key
/// and shape checked), converted to options.dtype on options.device, in eval mode. A config that states a
/// different activation (QuickGELU vs GELU) than the checkpoint's origin is refused.
CLIP load_model(const std::string& path, const LoadOptions& options = {});

/// Writes the weights as safetensors with the config (activation included) in `__metadata__["config"]`, so
/// that the file alone loads. Floating-point tensors are written in `dtype`.
void save_model(CLIPImpl& model, const std::string& path, at::ScalarType dtype = at::kFloat);

/// Strips a prefix that every key shares, such as DDP's `module.` or torch.compile's `_orig_mod.`.
TensorMap strip_common_prefixes(TensorMap state_dict);

}  // namespace clip
