#pragma once
// PyTorch's zip containers: TorchScript archives and torch.save files.
#include <string>

#include "clip/io/tensor_map.h"

namespace clip {

/// True when the file starts with a zip local-file header.
bool is_zip_file(const std::string& path);

/// True for a TorchScript archive (code/ and constants.pkl records), false for a torch.save file (data.pkl only);
/// throws clip::Error when the zip holds neither.
bool is_torchscript_archive(const std::string& path);

/// The parameters and buffers of a TorchScript module, by name.
TensorMap read_torchscript_tensors(const std::string& path);

/// The state dict in a torch.save file: a dict of tensors, or the `state_dict` entry of a training checkpoint.
/// Anything other than tensors and containers (custom classes, numpy objects) is refused.
TensorMap read_torch_save_state_dict(const std::string& path);

}  // namespace clip
