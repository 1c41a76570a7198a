#include "clip/io/tensor_map.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include "clip/util/error.h"

namespace clip {

std::string shape_string(at::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

TensorMap state_dict(const torch::nn::Module& module) {
  TensorMap out;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) out[item.key()] = item.value().detach();
  for (const auto& item : module.named_buffers(/*recurse=*/true)) out[item.key()] = item.value().detach();
  return out;
}

std::vector<std::string> nonfinite_tensors(const TensorMap& tensors) {
  std::vector<std::string> out;
  for (const auto& [name, t] : tensors) {
    if (t.defined() && t.is_floating_point() && !t.isfinite().all().item<bool>()) out.push_back(name);
  }
  return out;
}

std::string name_list(const std::vector<std::string>& names, size_t shown) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < shown; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > shown) out += str(" and ", names.size() - shown, " more");
  return out;
}

StateDictMismatch compare_state_dict(const torch::nn::Module& module, const TensorMap& sd) {
  StateDictMismatch m;
  const TensorMap own = state_dict(module);
  for (const auto& [key, tensor] : own) {
    auto it = sd.find(key);
    if (it == sd.end()) {
      m.missing.push_back(key);
    } else if (it->second.sizes() != tensor.sizes()) {
      m.wrong_shape.push_back(str(key, ": expected ", shape_string(tensor.sizes()), ", got ",
                                  shape_string(it->second.sizes())));
    }
  }
  for (const auto& [key, tensor] : sd) {
    if (own.count(key) == 0) m.unexpected.push_back(key);
  }
  return m;
}

namespace {

std::string list(const std::vector<std::string>& items, size_t limit = 8) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < limit; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > limit) out += str(", ... (", items.size() - limit, " more)");
  return out;
}

}  // namespace

void load_state_dict(torch::nn::Module& module, const TensorMap& sd, const std::string& source,
                     const LoadStateDictOptions& options) {
  StateDictMismatch m = compare_state_dict(module, sd);
  if (options.allow_missing) m.missing.clear();
  if (options.allow_unexpected) m.unexpected.clear();
  if (!m.empty()) {
    std::string message = source + ": state dict does not match the model:";
    if (!m.wrong_shape.empty()) message += " wrong shape: " + list(m.wrong_shape) + ";";
    if (!m.missing.empty()) message += str(" missing ", m.missing.size(), " keys: ", list(m.missing), ";");
    if (!m.unexpected.empty()) message += str(" unexpected ", m.unexpected.size(), " keys: ", list(m.unexpected), ";");
    message += " check that the checkpoint and the model config describe the same architecture";
    throw Error(message);
  }
  torch::NoGradGuard no_grad;
  for (auto& [key, tensor] : state_dict(module)) {
    auto it = sd.find(key);
    if (it != sd.end()) tensor.copy_(it->second);
  }
}

}  // namespace clip
