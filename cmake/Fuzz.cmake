# CLIP_FUZZ=ON: libclip and its fuzz targets built with AddressSanitizer, UndefinedBehaviorSanitizer and libFuzzer's
# coverage instrumentation (Clang only; Debian: clang and libclang-rt-14-dev). scripts/fuzz configures a separate
# build folder with it; LibTorch and the image libraries stay uninstrumented (the sanitizers still see every access
# our code makes, and every heap block they allocate).
option(CLIP_FUZZ "Build libclip with ASan + UBSan and the libFuzzer targets in fuzz/ (Clang)" OFF)
if(CLIP_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "CLIP_FUZZ needs Clang (libFuzzer), not ${CMAKE_CXX_COMPILER_ID}: configure with "
                        "-DCMAKE_CXX_COMPILER=clang++ (scripts/fuzz does)")
  endif()
  # vptr is left out: it needs the RTTI of every class across the boundary into the uninstrumented LibTorch.
  set(CLIP_SANITIZERS -fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=undefined)
  add_compile_options(${CLIP_SANITIZERS} -fsanitize=fuzzer-no-link -fno-omit-frame-pointer)
  add_link_options(${CLIP_SANITIZERS})
endif()
