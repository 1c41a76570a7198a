#include "clip/util/blas.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>

#include <atomic>
#include <memory>

#include "clip/util/log.h"

namespace clip {

BlasInfo blas_info() {
  BlasInfo info;
  void* sgemm = dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info where{};
  if (sgemm == nullptr || dladdr(sgemm, &where) == 0 || where.dli_fname == nullptr) return info;
  std::unique_ptr<char, decltype(&free)> resolved(realpath(where.dli_fname, nullptr), &free);
  info.library = resolved ? resolved.get() : where.dli_fname;
  // Debian installs netlib's reference BLAS as .../blas/libblas.so.3; optimized ones live in their own
  // folders (openblas-openmp/, openblas-pthread/, blis-openmp/, atlas/) or are named after themselves (MKL).
  const std::string& path = info.library;
  const bool optimized = path.find("openblas") != std::string::npos || path.find("blis") != std::string::npos ||
                         path.find("atlas") != std::string::npos || path.find("mkl") != std::string::npos;
  info.is_reference = !optimized && path.find("/blas/libblas.so") != std::string::npos;
  return info;
}

bool warn_if_reference_blas() {
  static std::atomic<bool> warned{false};
  const BlasInfo info = blas_info();
  if (!info.is_reference || warned.exchange(true)) return false;
  log_warning("CPU matmuls run on the unoptimized reference BLAS (", info.library,
              "), about 15x slower; install libopenblas0-openmp (scripts/setup does) or select it with "
              "update-alternatives --config libblas.so.3-x86_64-linux-gnu");
  return true;
}

}  // namespace clip
