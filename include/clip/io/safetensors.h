#pragma once
/// safetensors files: read (validated) and write (atomically).
///
///   clip::Safetensors file = clip::read_safetensors("model.safetensors");
///   clip::write_safetensors("out.safetensors", file.tensors, {{"format", "pt"}});
///
/// Format: 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}, ...,
/// "__metadata__": {string: string}}, then the tensor bytes. The reader checks the header length, the JSON,
/// the dtypes, that every byte range lies inside the file, matches its shape and overlaps no other; a bad file
/// throws clip::Error naming the file and the problem, before any tensor is read.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>

#include "clip/io/tensor_map.h"

namespace clip {

/// Tensors and string metadata of one safetensors file.
struct Safetensors {
  TensorMap tensors;
  std::map<std::string, std::string> metadata;
};

/// Reads and validates a safetensors file. Dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL.
Safetensors read_safetensors(const std::string& path);

/// Validates and decodes safetensors bytes held in memory; `source` names them in errors.
Safetensors parse_safetensors(const uint8_t* data, size_t size, const std::string& source);

/// Writes tensors (any device, made contiguous on the CPU) and metadata. The file appears complete or not at
/// all: bytes go to a temporary file beside it, which is flushed to disk and renamed over `path`.
void write_safetensors(const std::string& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata = {});

/// True when the file starts like a safetensors file (a plausible header length followed by '{').
bool looks_like_safetensors(const std::string& path);

}  // namespace clip
