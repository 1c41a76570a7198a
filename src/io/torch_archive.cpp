#include "io/torch_archive.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/import.h>

#include <fstream>

#include "clip/util/error.h"
#include "io/pickle.h"

namespace clip {
namespace {

// PyTorch's reader's message without its own name ("PytorchStreamReader failed reading zip archive: failed finding
// central directory" -> "failed finding central directory").
std::string zip_reason(const std::exception& e) {
  std::string reason = error_message(e);
  for (const char* prefix : {"PytorchStreamReader failed reading zip archive: ", "PytorchStreamReader failed "}) {
    if (reason.rfind(prefix, 0) == 0) return reason.substr(std::string(prefix).size());
  }
  return reason;
}

// Opens the zip with PyTorch's own reader; a damaged zip is a one-line error naming the file.
std::unique_ptr<caffe2::serialize::PyTorchStreamReader> open_zip(const std::string& path) {
  try {
    return std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const std::exception& e) {
    const std::string reason = zip_reason(e);
    if (error_message(e).find("hasRecord(\"version\")") != std::string::npos) {
      fail(path, ": a zip archive without PyTorch's records (version, data.pkl), so not a PyTorch checkpoint");
    }
    fail(path, ": not a readable PyTorch zip archive (", reason, "); the file is truncated or corrupt");
  }
}

// One record of the archive; PyTorch's reader throws c10::Error for a damaged entry (bad header, bad CRC, a size
// that disagrees), which becomes one line naming the file and the record.
std::tuple<at::DataPtr, size_t> read_record(caffe2::serialize::PyTorchStreamReader& zip, const std::string& name,
                                            const std::string& path) {
  try {
    return zip.getRecord(name);
  } catch (const std::exception& e) {
    fail(path, ": cannot read the record '", name, "' of the zip archive (", error_message(e),
         "); the file is truncated or corrupt");
  }
}

bool has_record(caffe2::serialize::PyTorchStreamReader& zip, const std::string& name, const std::string& path) {
  try {
    return zip.hasRecord(name);
  } catch (const std::exception& e) {
    fail(path, ": cannot read the zip archive's directory (", zip_reason(e),
         "); the file is truncated or corrupt");
  }
}

// Flattens an unpickled state dict: string keys, tensor values (made contiguous: storages may be shared).
TensorMap to_tensor_map(const pickle::Value& value, const std::string& path, const std::string& where) {
  if (value.kind != pickle::Value::Kind::dict) {
    fail(path, ": ", where, " is a ", value.type_name(), ", not a dict of tensors; libclip reads state dicts "
         "({name: tensor}) and open_clip checkpoints ({'state_dict': ...})");
  }
  TensorMap out;
  for (const auto& [key, item] : value.entries) {
    if (key->kind != pickle::Value::Kind::string) {
      fail(path, ": ", where, " has a key of type ", key->type_name(), ", not a string");
    }
    if (item->kind != pickle::Value::Kind::tensor) {
      fail(path, ": ", where, " entry '", key->text, "' is a ", item->type_name(), ", not a tensor");
    }
    out[key->text] = item->tensor.contiguous();
  }
  return out;
}

}  // namespace

bool is_zip_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
}

bool is_torchscript_archive(const std::string& path) {
  auto zip = open_zip(path);
  if (has_record(*zip, "constants.pkl", path)) return true;
  if (has_record(*zip, "data.pkl", path)) return false;
  fail(path, ": a zip archive without data.pkl or constants.pkl, so neither a torch.save file nor a TorchScript "
             "archive");
}

TensorMap read_torchscript_tensors(const std::string& path) {
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, at::kCPU);
  } catch (const std::exception& e) {
    fail(path, ": cannot load the TorchScript archive (", error_message(e), ")");
  }
  TensorMap out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) out[p.name] = p.value.detach();
  for (const auto& b : module.named_buffers(/*recurse=*/true)) out[b.name] = b.value.detach();
  return out;
}

TensorMap read_torch_save_state_dict(const std::string& path) {
  auto zip = open_zip(path);
  if (!has_record(*zip, "data.pkl", path)) fail(path, ": a zip archive without data.pkl, so not a torch.save file");
  if (has_record(*zip, "byteorder", path)) {
    auto [order, n] = read_record(*zip, "byteorder", path);
    if (std::string(static_cast<const char*>(order.get()), n) != "little") {
      fail(path, ": saved on a big-endian machine, which libclip does not read");
    }
  }
  auto [pickled, pickled_size] = read_record(*zip, "data.pkl", path);
  const pickle::StorageLoader load = [&](const std::string& key, at::ScalarType dtype, int64_t numel) {
    const std::string record = "data/" + key;
    if (key.find('/') != std::string::npos || !has_record(*zip, record, path)) {
      fail(path, ": data.pkl refers to storage '", key, "', which the archive does not hold");
    }
    auto [data, size] = read_record(*zip, record, path);
    if (numel < 0 || static_cast<size_t>(numel) > size / c10::elementSize(dtype)) {
      fail(path, ": storage '", key, "' holds ", size, " bytes, fewer than its ", numel, " elements need");
    }
    // The tensor owns the record's buffer (no copy).
    auto* owner = new at::DataPtr(std::move(data));
    return at::from_blob(owner->get(), {numel}, [owner](void*) { delete owner; }, at::TensorOptions().dtype(dtype));
  };
  const pickle::ValuePtr value =
      pickle::unpickle(static_cast<const uint8_t*>(pickled.get()), pickled_size, load, path + " (data.pkl)");
  if (value->kind == pickle::Value::Kind::dict) {
    for (const auto& [key, item] : value->entries) {
      const bool is_state_dict = key->kind == pickle::Value::Kind::string &&
                                 (key->text == "state_dict" || key->text == "model" || key->text == "model_state_dict");
      if (is_state_dict && item->kind == pickle::Value::Kind::dict) {
        return to_tensor_map(*item, path, "'" + key->text + "'");
      }
    }
  }
  return to_tensor_map(*value, path, "the pickled object");
}

}  // namespace clip
