#pragma once
// A restricted unpickler for PyTorch's zip archives: Python pickles of plain containers (dict, OrderedDict,
// list, tuple, set), scalars, strings and tensors, and (when asked) the module objects of a TorchScript archive's
// data.pkl. Any other class is refused by name, so a checkpoint can never make us construct arbitrary objects;
// malformed data is an error, never an out-of-bounds read.
//
// LibTorch's own unpickler is not enough: it lacks SETITEM and APPEND, which Python emits for every
// one-element dict or list (and for the last item of a dict whose size is 1 mod 1000).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace clip::pickle {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

/// One unpickled Python value.
struct Value {
  enum class Kind { none, boolean, integer, floating, string, bytes, list, tuple, dict, tensor, global, storage, object };
  Kind kind = Kind::none;
  bool boolean = false;
  int64_t integer = 0;
  double floating = 0;
  std::string text;                                  // string, bytes, a global's or an object's "module.name"
  std::vector<ValuePtr> items;                       // list, tuple
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // dict, in insertion order; an object's attributes
  at::Tensor tensor;                                 // tensor, or a storage as a flat tensor
  int depth = 1;                                     // 1 + the deepest child's depth (bounded by the reader)
  bool held = false;                                 // already inside another container (see the reader's adopt)

  Value() = default;
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;
  /// Releases nested children iteratively, not by recursion: a hostile pickle cannot overflow the stack here.
  ~Value();

  /// "dict", "list", "tensor", "int", ...: the Python-side name, for error messages.
  const char* type_name() const;
};

/// Loads the bytes of a storage record: (key, dtype, element count) -> flat tensor.
using StorageLoader = std::function<at::Tensor(const std::string& key, at::ScalarType dtype, int64_t numel)>;

/// Containers nested deeper than this are refused (a state dict is 2-4 levels deep).
constexpr int kMaxDepth = 100;

/// What a pickle may hold besides containers, scalars and tensors.
enum class Classes {
  plain,        ///< torch.save's: nothing else
  torchscript,  ///< also TorchScript's module objects: a `__torch__.*` class built from a dict of attributes
                ///< (Kind::object), and the type-tag helpers of torch.jit._pickle
};

/// Unpickles `data`. Throws clip::Error naming `source` for truncated or corrupt data, unsupported opcodes,
/// nesting deeper than kMaxDepth and classes other than the allowed containers and tensor-rebuild functions.
ValuePtr unpickle(const uint8_t* data, size_t size, const StorageLoader& load_storage, const std::string& source,
                  Classes classes = Classes::plain);

}  // namespace clip::pickle
