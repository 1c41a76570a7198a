#include "clip/io/safetensors.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "clip/util/error.h"
#include "util/atomic_file.h"
#include "util/mapped_file.h"
#include "util/json.h"

namespace clip {
namespace {

using json = nlohmann::json;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

// The Python library refuses headers over 100 MB; so do we, before parsing.
constexpr uint64_t kMaxHeader = 100'000'000;

struct DtypeName {
  const char* name;
  at::ScalarType type;
};
constexpr DtypeName kDtypes[] = {
    {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf}, {"BF16", at::kBFloat16}, {"I64", at::kLong},
    {"I32", at::kInt},    {"I16", at::kShort}, {"I8", at::kChar},  {"U8", at::kByte},       {"BOOL", at::kBool},
};

std::string dtype_list() {
  std::string out;
  for (const auto& d : kDtypes) out += (out.empty() ? "" : " ") + std::string(d.name);
  return out;
}

struct Entry {
  std::string name;
  at::ScalarType type;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& source, const std::string& name, const json& v, uint64_t data_size) {
  auto bad = [&](const std::string& what) { fail(source, ": tensor '", name, "': ", what); };
  if (!v.is_object()) bad("header entry is not a JSON object");
  Entry e{name, at::kFloat, {}, 0, 0};
  auto dtype = v.find("dtype");
  if (dtype == v.end() || !dtype->is_string()) bad("missing or non-string 'dtype'");
  const auto* match = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                                   [&](const DtypeName& d) { return dtype->get<std::string>() == d.name; });
  if (match == std::end(kDtypes)) bad("unsupported dtype '" + dtype->get<std::string>() + "' (supported: " + dtype_list() + ")");
  e.type = match->type;

  auto shape = v.find("shape");
  if (shape == v.end() || !shape->is_array()) bad("missing or non-list 'shape'");
  uint64_t numel = 1;
  for (const auto& d : *shape) {
    if (!d.is_number_unsigned()) bad("shape " + shape->dump() + " has a dimension that is not a non-negative integer");
    const uint64_t n = d.get<uint64_t>();
    if (n > uint64_t(std::numeric_limits<int64_t>::max()) || (n != 0 && numel > std::numeric_limits<uint64_t>::max() / n)) {
      bad("shape " + shape->dump() + " is too large");
    }
    numel *= n;
    e.shape.push_back(static_cast<int64_t>(n));
  }

  auto offsets = v.find("data_offsets");
  if (offsets == v.end() || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
      !(*offsets)[1].is_number_unsigned()) {
    bad("'data_offsets' must be two non-negative integers");
  }
  e.begin = (*offsets)[0].get<uint64_t>();
  e.end = (*offsets)[1].get<uint64_t>();
  if (e.begin > e.end) bad(str("data_offsets [", e.begin, ", ", e.end, "] are reversed"));
  if (e.end > data_size) {
    bad(str("data_offsets [", e.begin, ", ", e.end, "] run past the end of the data (", data_size,
            " bytes); the file is truncated or corrupt"));
  }
  const uint64_t item = c10::elementSize(e.type);
  if (numel > std::numeric_limits<uint64_t>::max() / item || numel * item != e.end - e.begin) {
    bad(str("shape ", shape->dump(), " of ", dtype->get<std::string>(), " needs ", numel, " x ", item,
            " bytes, but data_offsets hold ", e.end - e.begin));
  }
  return e;
}

}  // namespace

namespace {

// `mapping`, when given, holds `data`: tensors whose bytes are aligned for their dtype then view the mapping
// (copy-on-write, kept alive by the tensors) instead of being copied out of it.
Safetensors parse(const uint8_t* data, size_t size, const std::string& source,
                  const std::shared_ptr<MappedFile>& mapping) {
  if (size < 8) fail(source, ": ", size, " bytes is too short for a safetensors file (the 8-byte header length is missing)");
  uint64_t header_size = 0;
  std::memcpy(&header_size, data, 8);
  if (header_size > size - 8) {
    fail(source, ": header length ", header_size, " runs past the end of the file (", size,
         " bytes); the file is truncated or not safetensors");
  }
  if (header_size > kMaxHeader) fail(source, ": header length ", header_size, " exceeds the 100 MB limit");
  const json header = parse_json(std::string_view(reinterpret_cast<const char*>(data + 8), header_size),
                                 source + " (header)", /*max_depth=*/8);
  if (!header.is_object()) fail(source, ": header is not a JSON object");

  Safetensors out;
  const uint64_t data_size = size - 8 - header_size;
  std::vector<Entry> entries;
  for (const auto& item : header.items()) {
    if (item.key() == "__metadata__") {
      if (!item.value().is_object()) fail(source, ": __metadata__ is not a JSON object");
      for (const auto& m : item.value().items()) {
        if (!m.value().is_string()) fail(source, ": __metadata__ value for '", m.key(), "' is not a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(source, item.key(), item.value(), data_size));
  }
  std::vector<const Entry*> by_offset;
  for (const auto& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const Entry& prev = *by_offset[i - 1];
    const Entry& cur = *by_offset[i];
    if (cur.begin < prev.end) {
      fail(source, ": tensors '", prev.name, "' [", prev.begin, ", ", prev.end, ") and '", cur.name, "' [", cur.begin,
           ", ", cur.end, ") overlap; the file is corrupt");
    }
  }

  const uint8_t* payload = data + 8 + header_size;
  for (const auto& e : entries) {
    const auto options = at::TensorOptions().dtype(e.type);
    const uint8_t* bytes = payload + e.begin;
    const bool view = mapping && e.end > e.begin &&
                      reinterpret_cast<uintptr_t>(bytes) % static_cast<uintptr_t>(at::elementSize(e.type)) == 0;
    at::Tensor t;
    if (view) {
      t = at::from_blob(mapping->mutable_data() + (bytes - data), e.shape, [mapping](void*) {}, options);
    } else {
      t = at::empty(e.shape, options);
      if (e.end > e.begin) std::memcpy(t.data_ptr(), bytes, e.end - e.begin);
    }
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

}  // namespace

Safetensors parse_safetensors(const uint8_t* data, size_t size, const std::string& source) {
  return parse(data, size, source, nullptr);
}

Safetensors read_safetensors(const std::string& path) {
  const auto file = std::make_shared<MappedFile>(path, MappedFile::Mode::copy_on_write);
  return parse(file->data(), file->size(), path, file);
}

bool looks_like_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  uint8_t head[9] = {};
  if (!in.read(reinterpret_cast<char*>(head), sizeof head)) return false;
  uint64_t header_size = 0;
  std::memcpy(&header_size, head, 8);
  return header_size >= 2 && header_size <= kMaxHeader && head[8] == '{';
}

void write_safetensors(const std::string& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> contiguous;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    const at::ScalarType dtype = tensor.scalar_type();
    const auto* match = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                                     [dtype](const DtypeName& d) { return dtype == d.type; });
    if (match == std::end(kDtypes)) {
      fail(path, ": tensor '", name, "' has dtype ", tensor.scalar_type(), ", which safetensors cannot hold here (",
           dtype_list(), ")");
    }
    at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
    const uint64_t bytes = t.numel() * t.element_size();
    header[name] = {{"dtype", match->name}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    contiguous.push_back(std::move(t));
  }
  std::string text = dump_json(header);
  text.append((8 - text.size() % 8) % 8, ' ');  // align the data to 8 bytes, as the Python library does
  const uint64_t header_size = text.size();

  AtomicFile file(path);
  file.write(&header_size, 8);
  file.write(text.data(), text.size());
  for (const auto& t : contiguous) {
    if (t.numel() > 0) file.write(t.data_ptr(), t.numel() * t.element_size());
  }
  file.commit();
}

}  // namespace clip
