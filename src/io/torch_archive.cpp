#include "io/torch_archive.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>

#include "clip/util/error.h"
#include "io/pickle.h"
#include "util/mapped_file.h"

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

uint64_t le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// PyTorch's reader allocates each record's uncompressed size as the zip's central directory states it, before
// reading a byte, and checks that size against the file only for stored records of a zip without zip64 fields.
// So a few hundred bytes could ask for gigabytes. This walks the central directory (zip64 included) and refuses a
// record that claims more than its compressed bytes can hold (deflate expands at most 1032-fold; a stored record
// is its bytes). A directory this walk cannot follow is left to PyTorch's reader, which refuses it.
void check_record_sizes(const std::string& path) {
  const MappedFile file(path);
  const uint8_t* data = file.data();
  const uint64_t size = file.size();
  constexpr uint64_t kEocd = 22, kLocator = 20, kEocd64 = 56, kEntry = 46;
  if (size < kEocd) return;
  uint64_t eocd = size - kEocd;
  const uint64_t lowest = size > kEocd + 0xFFFF ? size - kEocd - 0xFFFF : 0;  // the comment is at most 64 KiB
  while (le(data + eocd, 4) != 0x06054b50) {
    if (eocd == lowest) return;
    --eocd;
  }
  uint64_t entries = le(data + eocd + 10, 2), dir_size = le(data + eocd + 12, 4), dir = le(data + eocd + 16, 4);
  if (eocd >= kLocator && le(data + eocd - kLocator, 4) == 0x07064b50) {
    const uint64_t eocd64 = le(data + eocd - kLocator + 8, 8);
    if (eocd64 > size - kEocd64 || le(data + eocd64, 4) != 0x06064b50) return;
    entries = le(data + eocd64 + 32, 8);
    dir_size = le(data + eocd64 + 40, 8);
    dir = le(data + eocd64 + 48, 8);
  }
  if (dir > size || dir_size > size - dir) return;
  const uint8_t* p = data + dir;
  const uint8_t* const end = p + dir_size;
  for (uint64_t i = 0; i < entries && end - p >= static_cast<std::ptrdiff_t>(kEntry); ++i) {
    if (le(p, 4) != 0x02014b50) return;
    const uint64_t method = le(p + 10, 2), name_size = le(p + 28, 2), extra_size = le(p + 30, 2);
    const uint64_t comment_size = le(p + 32, 2);
    uint64_t packed = le(p + 20, 4), unpacked = le(p + 24, 4);
    if (static_cast<uint64_t>(end - p) < kEntry + name_size + extra_size + comment_size) return;
    const std::string name(reinterpret_cast<const char*>(p + kEntry), name_size);
    // zip64: the sizes that read 0xFFFFFFFF follow in the extra field 0x0001, uncompressed first.
    for (const uint8_t *x = p + kEntry + name_size, *x_end = x + extra_size; x_end - x >= 4;) {
      const uint64_t id = le(x, 2), n = le(x + 2, 2);
      if (static_cast<uint64_t>(x_end - x - 4) < n) break;
      if (id == 0x0001) {
        const uint8_t* f = x + 4;
        if (unpacked == 0xFFFFFFFF && f + 8 <= x + 4 + n) unpacked = le(f, 8), f += 8;
        if (packed == 0xFFFFFFFF && f + 8 <= x + 4 + n) packed = le(f, 8);
      }
      x += 4 + n;
    }
    const bool stored = method == 0;
    if (packed > size || (stored ? unpacked != packed : unpacked / 1032 > packed)) {
      fail(path, ": the zip record '", name, "' claims ", unpacked, " bytes from ", packed, " stored ones, more than "
           "it can hold; the file is corrupt");
    }
    p += kEntry + name_size + extra_size + comment_size;
  }
}

// Opens the zip with PyTorch's own reader; a damaged zip is a one-line error naming the file.
std::unique_ptr<caffe2::serialize::PyTorchStreamReader> open_zip(const std::string& path) {
  check_record_sizes(path);
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip;
  try {
    zip = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const std::exception& e) {
    const std::string reason = zip_reason(e);
    if (error_message(e).find("hasRecord(\"version\")") != std::string::npos) {
      fail(path, ": a zip archive without PyTorch's records (version, data.pkl), so not a PyTorch checkpoint");
    }
    fail(path, ": not a readable PyTorch zip archive (", reason, "); the file is truncated or corrupt");
  }
  return zip;
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

// data.pkl, whose tensors lie in the records data/<key>; each tensor owns its record's buffer (no copy).
pickle::ValuePtr unpickle_data(caffe2::serialize::PyTorchStreamReader& zip, const std::string& path,
                               pickle::Classes classes) {
  auto [pickled, pickled_size] = read_record(zip, "data.pkl", path);
  const pickle::StorageLoader load = [&](const std::string& key, at::ScalarType dtype, int64_t numel) {
    const std::string record = "data/" + key;
    if (key.find('/') != std::string::npos || !has_record(zip, record, path)) {
      fail(path, ": data.pkl refers to storage '", key, "', which the archive does not hold");
    }
    auto [data, size] = read_record(zip, record, path);
    if (numel < 0 || static_cast<size_t>(numel) > size / c10::elementSize(dtype)) {
      fail(path, ": storage '", key, "' holds ", size, " bytes, fewer than its ", numel, " elements need");
    }
    auto* owner = new at::DataPtr(std::move(data));
    return at::from_blob(owner->get(), {numel}, [owner](void*) { delete owner; }, at::TensorOptions().dtype(dtype));
  };
  return pickle::unpickle(static_cast<const uint8_t*>(pickled.get()), pickled_size, load, path + " (data.pkl)",
                          classes);
}

// Which attributes of a TorchScript class are parameters and buffers: its source under code/ declares them,
//   class LayerNorm(Module):
//     __parameters__ = ["weight", "bias", ]
//     __buffers__ = []
// The rest (a traced model's plain tensor attributes, flags) is not part of the state dict, as in PyTorch's
// named_parameters() and named_buffers(). Only these two lines are read; the code is never compiled.
class ModuleTypes {
 public:
  ModuleTypes(caffe2::serialize::PyTorchStreamReader& zip, const std::string& path) : zip_(zip), path_(path) {}

  // The parameter and buffer names of `qualified` ("__torch__.clip.model.___torch_mangle_0.LayerNorm").
  const std::set<std::string>& tensors(const std::string& qualified) {
    auto found = cache_.find(qualified);
    if (found != cache_.end()) return found->second;
    const size_t dot = qualified.rfind('.');
    const std::string module = qualified.substr(0, dot), name = qualified.substr(dot + 1);
    for (char c : qualified) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') {
        fail(path_, ": the TorchScript class name '", qualified, "' is malformed; the archive is corrupt");
      }
    }
    std::string record = "code/" + module + ".py";
    std::replace(record.begin() + 5, record.end() - 3, '.', '/');
    if (!has_record(zip_, record, path_)) {
      fail(path_, ": the TorchScript archive has no source for class ", qualified, " (", record, "); it is corrupt");
    }
    auto [data, size] = read_record(zip_, record, path_);
    const std::string code(static_cast<const char*>(data.get()), size);
    std::set<std::string>& names = cache_[qualified];
    const std::string header = "class " + name + "(";
    size_t at = code.rfind(header, 0) == 0 ? 0 : code.find("\n" + header);
    if (at == std::string::npos) {
      fail(path_, ": ", record, " does not define class ", name, "; the TorchScript archive is corrupt");
    }
    bool declared = false;
    // The class body: the lines after its header that are indented.
    for (size_t line = code.find('\n', at + 1); line != std::string::npos && code.compare(line + 1, 1, " ") == 0;
         line = code.find('\n', line + 1)) {
      const size_t stop = std::min(code.find('\n', line + 1), code.size());
      const std::string text = code.substr(line + 1, stop - line - 1);
      for (const char* key : {"  __parameters__ = [", "  __buffers__ = ["}) {
        if (text.rfind(key, 0) != 0) continue;
        declared = true;
        for (size_t q = text.find('"'); q != std::string::npos; q = text.find('"', q + 1)) {
          const size_t close = text.find('"', q + 1);
          if (close == std::string::npos) break;
          names.insert(text.substr(q + 1, close - q - 1));
          q = close;
        }
      }
    }
    if (!declared) {
      fail(path_, ": class ", name, " in ", record, " declares no __parameters__ or __buffers__; the TorchScript "
           "archive is corrupt or from a PyTorch libclip does not read");
    }
    return names;
  }

 private:
  caffe2::serialize::PyTorchStreamReader& zip_;
  const std::string& path_;
  std::map<std::string, std::set<std::string>> cache_;
};

// The module's parameters and buffers and its submodules' under their dotted names, as named_parameters() and
// named_buffers() give them. Depth is bounded by the unpickler's nesting limit.
void collect_module_tensors(const pickle::Value& module, const std::string& prefix, ModuleTypes& types,
                            TensorMap& out) {
  const std::set<std::string> tensors = types.tensors(module.text);
  for (const auto& [key, item] : module.entries) {
    if (key->kind != pickle::Value::Kind::string) continue;
    if (item->kind == pickle::Value::Kind::object) {
      collect_module_tensors(*item, prefix + key->text + ".", types, out);
    } else if (item->kind == pickle::Value::Kind::tensor && tensors.count(key->text)) {
      out[prefix + key->text] = item->tensor.contiguous();
    }
  }
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
  auto zip = open_zip(path);
  if (!has_record(*zip, "data.pkl", path)) {
    fail(path, ": a TorchScript archive without data.pkl; archives from PyTorch before 1.4 (model.json) are not "
               "read; load it in PyTorch and save it again");
  }
  const pickle::ValuePtr module = unpickle_data(*zip, path, pickle::Classes::torchscript);
  if (module->kind != pickle::Value::Kind::object) {
    fail(path, ": the TorchScript archive's data.pkl holds a ", module->type_name(), ", not a module");
  }
  TensorMap out;
  ModuleTypes types(*zip, path);
  collect_module_tensors(*module, "", types, out);
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
  const pickle::ValuePtr value = unpickle_data(*zip, path, pickle::Classes::plain);
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
