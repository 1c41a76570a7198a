#include "clip/model/precision.h"

#include <ATen/Context.h>

#include "clip/util/error.h"
#include "model/packed_linear.h"

namespace clip {
namespace {

thread_local InferencePrecision current = InferencePrecision::fp32;

}  // namespace

const char* to_string(InferencePrecision precision) {
  switch (precision) {
    case InferencePrecision::bf16:
      return "bf16";
    case InferencePrecision::int8:
      return "int8";
    case InferencePrecision::fp32:
      break;
  }
  return "fp32";
}

InferencePrecision parse_inference_precision(const std::string& text, const std::string& source) {
  for (const auto p : {InferencePrecision::fp32, InferencePrecision::bf16, InferencePrecision::int8}) {
    if (text == to_string(p)) return p;
  }
  fail(source, " '", text, "': expected fp32, bf16 or int8");
}

bool cpu_has_native_bf16() {
#if defined(__x86_64__) && defined(__GNUC__)
  // GCC and Clang name the feature bits as /proc/cpuinfo does; AMX implies AVX512-BF16 on every CPU that has it.
  static const bool native = __builtin_cpu_supports("avx512bf16");
  return native;
#else
  return false;
#endif
}

bool int8_available() { return preferred_int8_engine().has_value(); }

void check_inference_precision(InferencePrecision precision, bool on_cpu) {
  if (precision == InferencePrecision::fp32) return;
  if (!on_cpu) {
    fail("--precision ", to_string(precision), " is CPU inference; on a GPU run fp32 (clip_train's bf16 is autocast)");
  }
  if (precision == InferencePrecision::bf16 && !cpu_has_native_bf16()) {
    fail("--precision bf16: this CPU has no native bf16 arithmetic (AVX512-BF16 or AMX), so it would be emulated and "
         "slower than fp32; use int8 or fp32");
  }
  if (precision == InferencePrecision::int8 && !int8_available()) {
    fail("--precision int8: this LibTorch has no quantized engine for int8 linear layers (oneDNN, x86 or FBGEMM); "
         "use fp32");
  }
}

InferencePrecision current_inference_precision() { return current; }

InferencePrecisionGuard::InferencePrecisionGuard(InferencePrecision precision) : previous_(current) {
  current = precision;
}

InferencePrecisionGuard::~InferencePrecisionGuard() { current = previous_; }

}  // namespace clip
