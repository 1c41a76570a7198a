#include "io/pickle.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "clip/util/error.h"

namespace clip::pickle {
namespace {

using Kind = Value::Kind;

ValuePtr make(Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

// torch.save's typed-storage classes and the dtypes they hold.
const std::map<std::string, at::ScalarType>& storage_types() {
  static const std::map<std::string, at::ScalarType> types = {
      {"torch.FloatStorage", at::kFloat},   {"torch.HalfStorage", at::kHalf}, {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.DoubleStorage", at::kDouble}, {"torch.LongStorage", at::kLong}, {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar}, {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool},
  };
  return types;
}

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, const StorageLoader& load, std::string source, Classes classes)
      : begin_(data), p_(data), end_(data + size), load_(load), source_(std::move(source)), classes_(classes) {}

  ValuePtr run() {
    while (true) {
      const uint8_t op = byte();
      switch (op) {
        case 0x80: byte(); break;                  // PROTO
        case 0x95: bytes(8); break;                // FRAME (length; we read unframed)
        case '.': return pop();                    // STOP
        case '(': marks_.push_back(stack_.size()); break;  // MARK
        case '0': pop(); break;                    // POP
        case '1': pop_mark(); break;               // POP_MARK
        case '2': push(top()); break;              // DUP
        case 'N': push(make(Kind::none)); break;
        case 0x88: push_bool(true); break;         // NEWTRUE
        case 0x89: push_bool(false); break;        // NEWFALSE
        case 'J': push_int(int32_t(little(4))); break;  // BININT
        case 'K': push_int(int64_t(little(1))); break;  // BININT1
        case 'M': push_int(int64_t(little(2))); break;  // BININT2
        case 0x8a: push_int(long_int(byte())); break;   // LONG1
        case 0x8b: push_int(long_int(size_t(little(4)))); break;  // LONG4
        case 'I': text_int(line()); break;         // INT (also I00/I01 booleans)
        case 'L': text_int(line()); break;         // LONG
        case 'G': push_float(big_double()); break;  // BINFLOAT
        case 'F': push_float(parse_float(line())); break;  // FLOAT
        case 'X': push_string(Kind::string, size_t(little(4))); break;  // BINUNICODE
        case 0x8c: push_string(Kind::string, byte()); break;             // SHORT_BINUNICODE
        case 0x8d: push_string(Kind::string, size_t(little(8))); break;  // BINUNICODE8
        case 'T': push_string(Kind::bytes, size_t(little(4))); break;    // BINSTRING
        case 'U': push_string(Kind::bytes, byte()); break;               // SHORT_BINSTRING
        case 'B': push_string(Kind::bytes, size_t(little(4))); break;    // BINBYTES
        case 'C': push_string(Kind::bytes, byte()); break;               // SHORT_BINBYTES
        case 0x8e: push_string(Kind::bytes, size_t(little(8))); break;   // BINBYTES8
        case ']': push(make(Kind::list)); break;   // EMPTY_LIST
        case '}': push(make(Kind::dict)); break;   // EMPTY_DICT
        case ')': push(make(Kind::tuple)); break;  // EMPTY_TUPLE
        case 0x8f: push(make(Kind::list)); break;  // EMPTY_SET (a set reads as a list)
        case 't': push(sequence(Kind::tuple, pop_mark())); break;  // TUPLE
        case 'l': push(sequence(Kind::list, pop_mark())); break;   // LIST
        case 0x91: push(sequence(Kind::list, pop_mark())); break;  // FROZENSET
        case 0x85: tuple_of(1); break;             // TUPLE1
        case 0x86: tuple_of(2); break;             // TUPLE2
        case 0x87: tuple_of(3); break;             // TUPLE3
        case 'd': dict_from(pop_mark()); break;    // DICT
        case 'a': append({pop()}); break;          // APPEND
        case 'e': case 0x90: append(pop_mark()); break;  // APPENDS, ADDITEMS
        case 's': { auto value = pop(); auto key = pop(); set_items({key, value}); break; }  // SETITEM
        case 'u': set_items(pop_mark()); break;    // SETITEMS
        case 'c': { std::string module = line(); push_global(module + "." + line()); break; }  // GLOBAL
        case 0x93: { auto name = pop(); auto module = pop(); push_global(module->text + "." + name->text); break; }
        case 'R': { auto args = pop(); auto callable = pop(); push(call(callable, args)); break; }  // REDUCE
        case 0x81: { auto args = pop(); auto cls = pop(); push(call(cls, args)); break; }  // NEWOBJ
        case 'b': build(pop()); break;             // BUILD
        case 'Q': push(persistent(pop())); break;  // BINPERSID
        case 'q': memo_[little(1)] = top(); break;   // BINPUT
        case 'r': memo_[little(4)] = top(); break;   // LONG_BINPUT
        case 'p': memo_[uint64_t(parse_int(line()))] = top(); break;  // PUT
        case 0x94: memo_[memo_.size()] = top(); break;  // MEMOIZE
        case 'h': push(get(little(1))); break;     // BINGET
        case 'j': push(get(little(4))); break;     // LONG_BINGET
        case 'g': push(get(uint64_t(parse_int(line())))); break;  // GET
        default:
          fail(source_, ": unsupported pickle opcode 0x", std::hex, int(op), " at byte ", std::dec, offset() - 1,
               "; libclip reads torch.save pickles of tensors and plain containers");
      }
    }
  }

 private:
  // ---- raw reads, all bounds-checked
  size_t offset() const { return static_cast<size_t>(p_ - begin_); }
  void need(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) fail(source_, ": data.pkl is truncated (needed ", n, " more bytes)");
  }
  uint8_t byte() {
    need(1);
    return *p_++;
  }
  const uint8_t* bytes(size_t n) {
    need(n);
    const uint8_t* at = p_;
    p_ += n;
    return at;
  }
  uint64_t little(size_t n) {
    const uint8_t* b = bytes(n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t(b[i]) << (8 * i);
    return v;
  }
  int64_t long_int(size_t n) {
    if (n > 8) fail(source_, ": an integer of ", n, " bytes does not fit 64 bits");
    const uint8_t* b = bytes(n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t(b[i]) << (8 * i);
    if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
    return static_cast<int64_t>(v);
  }
  double big_double() {
    const uint8_t* b = bytes(8);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | b[i];
    double d;
    std::memcpy(&d, &v, 8);
    return d;
  }
  std::string line() {
    const uint8_t* start = p_;
    while (p_ < end_ && *p_ != '\n') ++p_;
    if (p_ == end_) fail(source_, ": data.pkl is truncated (unterminated text field)");
    return std::string(reinterpret_cast<const char*>(start), static_cast<size_t>(p_++ - start));
  }
  int64_t parse_int(const std::string& s) {
    try {
      size_t used = 0;
      const int64_t v = std::stoll(s, &used);
      if (used == s.size() || (used + 1 == s.size() && s.back() == 'L')) return v;
    } catch (const std::exception&) {
    }
    fail(source_, ": bad integer '", s, "' in data.pkl");
  }
  double parse_float(const std::string& s) {
    try {
      return std::stod(s);
    } catch (const std::exception&) {
      fail(source_, ": bad float '", s, "' in data.pkl");
    }
  }

  // ---- the stack
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr top() {
    if (stack_.empty()) fail(source_, ": corrupt pickle (stack underflow at byte ", offset(), ")");
    return stack_.back();
  }
  ValuePtr pop() {
    ValuePtr v = top();
    if (!marks_.empty() && marks_.back() == stack_.size()) fail(source_, ": corrupt pickle (pop across a mark)");
    stack_.pop_back();
    return v;
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty() || marks_.back() > stack_.size()) fail(source_, ": corrupt pickle (no mark at byte ", offset(), ")");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  ValuePtr get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail(source_, ": corrupt pickle (memo ", index, " was never stored)");
    return it->second;
  }

  void push_bool(bool b) {
    auto v = make(Kind::boolean);
    v->boolean = b;
    push(v);
  }
  void push_int(int64_t i) {
    auto v = make(Kind::integer);
    v->integer = i;
    push(v);
  }
  void text_int(const std::string& s) {
    if (s == "00" || s == "01") return push_bool(s == "01");
    push_int(parse_int(s));
  }
  void push_float(double d) {
    auto v = make(Kind::floating);
    v->floating = d;
    push(v);
  }
  void push_string(Kind kind, size_t n) {
    auto v = make(kind);
    const uint8_t* b = bytes(n);
    v->text.assign(reinterpret_cast<const char*>(b), n);
    push(v);
  }
  void push_global(const std::string& name) {
    auto v = make(Kind::global);
    v->text = name;
    push(v);
  }
  // Records that `container` holds `child`; refuses nesting past kMaxDepth (where recursion over the value, in
  // its users or in a debugger, would run out of stack) and cycles. Python pickles a container complete before the
  // one that holds it, so a container that is already held by another is never filled again: refusing that (and a
  // container holding itself) makes a cycle impossible, which shared_ptr would leak and a walk would never leave.
  // It also keeps `depth` exact: a held child cannot grow deeper afterwards.
  void adopt(Value& container, const ValuePtr& child) {
    if (child.get() == &container || container.held) {
      fail(source_, ": corrupt pickle (a container that would contain itself, at byte ", offset() - 1,
           "); not a checkpoint libclip reads");
    }
    if (child->kind == Kind::list || child->kind == Kind::dict || child->kind == Kind::tuple ||
        child->kind == Kind::object) {
      child->held = true;
    }
    container.depth = std::max(container.depth, child->depth + 1);
    if (container.depth > kMaxDepth) {
      fail(source_, ": containers nested deeper than ", kMaxDepth, " levels (at byte ", offset(),
           "); not a checkpoint libclip reads");
    }
  }
  ValuePtr sequence(Kind kind, std::vector<ValuePtr> items) {
    auto v = make(kind);
    for (const ValuePtr& item : items) adopt(*v, item);
    v->items = std::move(items);
    return v;
  }
  void tuple_of(size_t n) {
    std::vector<ValuePtr> items(n);
    for (size_t i = n; i-- > 0;) items[i] = pop();
    push(sequence(Kind::tuple, std::move(items)));
  }
  void dict_from(const std::vector<ValuePtr>& flat) {
    push(make(Kind::dict));
    set_items(flat);
  }
  void append(const std::vector<ValuePtr>& items) {
    ValuePtr list = top();
    if (list->kind != Kind::list) fail(source_, ": corrupt pickle (append to a ", list->type_name(), ")");
    for (const ValuePtr& item : items) adopt(*list, item);
    list->items.insert(list->items.end(), items.begin(), items.end());
  }
  void set_items(const std::vector<ValuePtr>& flat) {
    ValuePtr dict = top();
    if (dict->kind != Kind::dict || flat.size() % 2 != 0) fail(source_, ": corrupt pickle (bad SETITEMS)");
    for (size_t i = 0; i < flat.size(); i += 2) {
      adopt(*dict, flat[i]);
      adopt(*dict, flat[i + 1]);
      dict->entries.emplace_back(flat[i], flat[i + 1]);
    }
  }

  // ---- classes: only containers and PyTorch's tensor-rebuild functions
  [[noreturn]] void refuse(const std::string& name) {
    fail(source_, ": the pickle holds a Python object of class ", name,
         "; libclip reads tensors and plain containers only, not custom classes");
  }

  const ValuePtr& arg(const ValuePtr& args, size_t i, Kind kind, const char* what) {
    if (args->kind != Kind::tuple || args->items.size() <= i || args->items[i]->kind != kind) {
      fail(source_, ": corrupt tensor record (", what, ")");
    }
    return args->items[i];
  }
  std::vector<int64_t> ints(const ValuePtr& tuple, const char* what) {
    std::vector<int64_t> out;
    for (const auto& item : tuple->items) {
      if (item->kind != Kind::integer) fail(source_, ": corrupt tensor record (", what, ")");
      out.push_back(item->integer);
    }
    return out;
  }

  ValuePtr call(const ValuePtr& callable, const ValuePtr& args) {
    if (callable->kind != Kind::global) fail(source_, ": corrupt pickle (calling a ", callable->type_name(), ")");
    const std::string& name = callable->text;
    if (name == "collections.OrderedDict" || name == "builtins.dict" || name == "__builtin__.dict") {
      return make(Kind::dict);
    }
    if (name == "builtins.set" || name == "__builtin__.set" || name == "builtins.frozenset") {
      auto list = make(Kind::list);
      if (args->kind == Kind::tuple && !args->items.empty()) {
        list->items = args->items[0]->items;
        list->depth = args->items[0]->depth;
      }
      return list;
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      const at::Tensor& storage = arg(args, 0, Kind::storage, "storage")->tensor;
      const int64_t offset = arg(args, 1, Kind::integer, "offset")->integer;
      const std::vector<int64_t> size = ints(arg(args, 2, Kind::tuple, "size"), "size");
      const std::vector<int64_t> stride = ints(arg(args, 3, Kind::tuple, "stride"), "stride");
      if (size.size() != stride.size()) fail(source_, ": corrupt tensor record (size and stride differ in rank)");
      int64_t last = offset;  // the largest element index the view touches must lie in the storage
      for (size_t i = 0; i < size.size(); ++i) {
        if (size[i] < 0 || stride[i] < 0) fail(source_, ": corrupt tensor record (negative size or stride)");
        if (size[i] == 0) last = -1;
        if (last >= 0) last += (size[i] - 1) * stride[i];
      }
      if (offset < 0 || last >= storage.numel()) fail(source_, ": corrupt tensor record (view outside its storage)");
      auto v = make(Kind::tensor);
      v->tensor = storage.as_strided(size, stride, offset);
      return v;
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
      auto v = make(Kind::tensor);
      v->tensor = arg(args, 0, Kind::tensor, "parameter data")->tensor;
      return v;
    }
    if (classes_ == Classes::torchscript) {
      // A TorchScript module: `__torch__.<module>.<Class>`, called with no arguments and filled by BUILD.
      if (name.rfind("__torch__.", 0) == 0) {
        if (args->kind != Kind::tuple || !args->items.empty()) {
          fail(source_, ": corrupt pickle (TorchScript object ", name, " constructed with arguments)");
        }
        auto v = make(Kind::object);
        v->text = name;
        return v;
      }
      // Type tags on lists and dicts (restore_type_tag(value, type)) and the typed-list builders of older
      // archives (build_intlist(list), ...): the value itself.
      static const char* const kPassThrough[] = {
          "torch.jit._pickle.restore_type_tag", "torch.jit._pickle.build_intlist",
          "torch.jit._pickle.build_doublelist", "torch.jit._pickle.build_boollist",
          "torch.jit._pickle.build_tensorlist", "torch.jit._pickle.build_list"};
      for (const char* pass : kPassThrough) {
        if (name == pass) {
          if (args->kind != Kind::tuple || args->items.empty()) fail(source_, ": corrupt pickle (", name, "())");
          return args->items[0];
        }
      }
    }
    refuse(name);
  }

  void build(const ValuePtr& state) {
    const ValuePtr target = top();
    if (target->kind == Kind::object) {
      // A TorchScript object's state: the dict of its attributes, given once.
      if (state->kind != Kind::dict) {
        fail(source_, ": TorchScript object ", target->text, " has a state of type ", state->type_name(),
             ", not a dict of attributes; libclip reads modules whose attributes are tensors and submodules");
      }
      if (!target->entries.empty()) fail(source_, ": corrupt pickle (TorchScript object ", target->text, " built twice)");
      adopt(*target, state);
      target->entries = state->entries;
      return;
    }
    // OrderedDict state (a state dict's `_metadata`) carries nothing we need.
    if (target->kind != Kind::dict && target->kind != Kind::tensor) {
      fail(source_, ": corrupt pickle (BUILD on a ", target->type_name(), ")");
    }
  }

  ValuePtr persistent(const ValuePtr& pid) {
    // ('storage', <torch.FloatStorage>, key, location, numel)
    if (pid->kind != Kind::tuple || pid->items.size() < 5 || pid->items[0]->text != "storage" ||
        pid->items[1]->kind != Kind::global || pid->items[2]->kind != Kind::string ||
        pid->items[4]->kind != Kind::integer) {
      fail(source_, ": corrupt pickle (unknown persistent id)");
    }
    const std::string& type = pid->items[1]->text;
    auto dtype = storage_types().find(type);
    if (dtype == storage_types().end()) fail(source_, ": unsupported storage type ", type);
    const std::string& key = pid->items[2]->text;
    if (pid->items[4]->integer < 0) fail(source_, ": corrupt pickle (storage '", key, "' has a negative size)");
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    auto v = make(Kind::storage);
    v->tensor = load_(key, dtype->second, pid->items[4]->integer);
    storages_[key] = v;
    return v;
  }

  const uint8_t* begin_;
  const uint8_t* p_;
  const uint8_t* end_;
  const StorageLoader& load_;
  std::string source_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, ValuePtr> memo_;
  std::map<std::string, ValuePtr> storages_;
  Classes classes_;
};

}  // namespace

Value::~Value() {
  std::vector<ValuePtr> pending;
  const auto take_children = [&pending](Value& v) {
    for (ValuePtr& item : v.items) pending.push_back(std::move(item));
    for (auto& [key, item] : v.entries) {
      pending.push_back(std::move(key));
      pending.push_back(std::move(item));
    }
    v.items.clear();
    v.entries.clear();
  };
  take_children(*this);
  while (!pending.empty()) {
    ValuePtr v = std::move(pending.back());
    pending.pop_back();
    if (v && v.use_count() == 1) take_children(*v);  // its last owner: empty it, so that it dies without recursing
  }
}

const char* Value::type_name() const {
  switch (kind) {
    case Kind::none: return "None";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::floating: return "float";
    case Kind::string: return "str";
    case Kind::bytes: return "bytes";
    case Kind::list: return "list";
    case Kind::tuple: return "tuple";
    case Kind::dict: return "dict";
    case Kind::tensor: return "tensor";
    case Kind::global: return "class";
    case Kind::storage: return "storage";
    case Kind::object: return "TorchScript object";
  }
  return "unknown";
}

ValuePtr unpickle(const uint8_t* data, size_t size, const StorageLoader& load_storage, const std::string& source,
                  Classes classes) {
  return Unpickler(data, size, load_storage, source, classes).run();
}

}  // namespace clip::pickle
