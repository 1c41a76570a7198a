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
/// Nothing is copied: each tensor whose bytes are aligned for its dtype (every one, in files written by libclip and
/// by the safetensors library) views a private, copy-on-write mapping of the file, kept while any of them lives;
/// writing to such a tensor changes the process's copy, never the file. As with any mapping, rewriting the file in
/// place while its tensors live changes what they hold, and truncating it makes reading them a crash (SIGBUS):
/// replace files by renaming a new one over them, as libclip's writers do.
Safetensors read_safetensors(const std::string& path);

/// Validates and decodes safetensors bytes held in memory (copied into the tensors); `source` names them in errors.
Safetensors parse_safetensors(const uint8_t* data, size_t size, const std::string& source);

/// Writes tensors (any device, made contiguous on the CPU) and metadata. The file appears complete or not at
/// all: bytes go to a temporary file beside it, which is flushed to disk and renamed over `path`.
void write_safetensors(const std::string& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata = {});

/// True when the file starts like a safetensors file (a plausible header length followed by '{').
bool looks_like_safetensors(const std::string& path);

}  // namespace clip
