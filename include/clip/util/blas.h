#pragma once
/// Which BLAS library LibTorch's CPU matmuls run on.
///
///   clip::warn_if_reference_blas();   // once at tool start-up
///
/// Debian's LibTorch calls whatever libblas.so.3 the system selects; the default (netlib's reference BLAS)
/// is about 15x slower than OpenBLAS (8 vs 116 GFLOP/s for a 1024^2 float matmul on a 2-core machine).
#include <string>

namespace clip {

/// Where sgemm comes from in this process.
struct BlasInfo {
  std::string library;        ///< resolved path of the shared object that defines sgemm_, or "" if none does
  bool is_reference = false;  ///< true for netlib's unoptimized reference BLAS
};

/// Finds the object that defines sgemm_ (the symbol LibTorch calls) and classifies it.
BlasInfo blas_info();

/// Prints one warning to stderr (once per process) when the reference BLAS is in use, naming the fix.
/// Returns true when it warned.
bool warn_if_reference_blas();

}  // namespace clip
