#pragma once
/// Named tensors (a state dict) and the checked copy of one into a module.
///
///   clip::TensorMap sd = clip::read_safetensors("model.safetensors").tensors;
///   clip::load_state_dict(*model, sd, "model.safetensors");   // throws clip::Error listing every mismatch
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

namespace torch::nn {
class Module;
}

namespace clip {

/// Name -> tensor, sorted by name.
using TensorMap = std::map<std::string, at::Tensor>;

/// What load_state_dict found wrong, all at once.
struct StateDictMismatch {
  std::vector<std::string> missing;      ///< in the module, not in the state dict
  std::vector<std::string> unexpected;   ///< in the state dict, not in the module
  std::vector<std::string> wrong_shape;  ///< "key: expected [a, b], got [c, d]"
  bool empty() const { return missing.empty() && unexpected.empty() && wrong_shape.empty(); }
};

/// Options of load_state_dict.
struct LoadStateDictOptions {
  bool allow_missing = false;     ///< keep the module's values for keys the state dict lacks
  bool allow_unexpected = false;  ///< ignore keys the module does not have
  /// a module tensor whose dtype, device and shape are the state dict's takes the state dict tensor's storage
  /// instead of a copy of it (for a state dict read from a file that nothing else holds: read_safetensors' tensors
  /// view the file's copy-on-write mapping, so loading costs neither a copy nor the memory of one)
  bool share_storage = false;
};

/// Compares a state dict with a module's parameters and buffers (names and shapes).
StateDictMismatch compare_state_dict(const torch::nn::Module& module, const TensorMap& state_dict);

/// Copies a state dict into the module's parameters and buffers (converting dtype and device to the module's).
/// Any missing or unexpected key or any shape mismatch throws clip::Error naming `source` and every problem;
/// on error nothing is copied.
void load_state_dict(torch::nn::Module& module, const TensorMap& state_dict, const std::string& source,
                     const LoadStateDictOptions& options = {});

/// The module's parameters and buffers by name (detached tensors sharing storage with the module).
TensorMap state_dict(const torch::nn::Module& module);

/// The names of the floating-point tensors that hold NaN or an infinity (empty when all are finite).
std::vector<std::string> nonfinite_tensors(const TensorMap& tensors);

/// "a, b, c and 4 more": the first few names of a list, for a one-line message.
std::string name_list(const std::vector<std::string>& names, size_t shown = 3);

/// "[2, 3]": a shape as the error messages print it.
std::string shape_string(at::IntArrayRef shape);

}  // namespace clip
