# The optional dependencies, one cache option each: CLIP_WITH_<NAME> is AUTO (the default: in when found), ON (must
# be found, else the configure stops and says what is missing) or OFF. What a build has is written into
# <build>/generated/clip_features.h (read by the few sources that differ, so a change recompiles only those) and is
# queried at run time with clip::features() (include/clip/util/features.h).
#
#   JPEG        libjpeg(-turbo): JPEG decoding (Pillow-exact), the DCT-scaled training decode, JPEG encoding
#   PNG         libpng (+ zlib): PNG decoding and encoding; libdeflate, when found, inflates the image data
#               twice as fast (CLIP_WITH_LIBDEFLATE)
#   OPENCV      BMP, WebP, TIFF and PNM decoding
#   SHARDS      WebDataset shards (reading, writing, training from them): libarchive, with JPEG and PNG
#   GLOO        c10d's Gloo backend (CPU collectives): a LibTorch built with it and gloo's headers
#   NCCL        c10d's NCCL backend (GPU collectives): a CUDA LibTorch built with it and nccl.h
#   FAISS       the image index (clip_index, clip_search, clip::ImageIndex): faiss (Debian: libfaiss-dev)
#   HTTP        the HTTP server (clip_serve, clip::Server): cpp-httplib (Debian: libcpp-httplib-dev)
#   HUB         downloading models from the Hugging Face hub into its cache: libcurl (Debian: libcurl4-openssl-dev);
#               without it, models already in the cache are still found
#
# Needs cmake/Torch.cmake first (GLOO and NCCL look at the LibTorch found there).

set(CLIP_FEATURES JPEG PNG LIBDEFLATE OPENCV SHARDS GLOO NCCL FAISS HTTP HUB)
set(clip_feature_doc_JPEG "JPEG decoding and encoding with libjpeg(-turbo)")
set(clip_feature_doc_PNG "PNG decoding and encoding with libpng")
set(clip_feature_doc_LIBDEFLATE "libdeflate for PNG image data (faster than zlib)")
set(clip_feature_doc_OPENCV "BMP, WebP, TIFF and PNM decoding with OpenCV")
set(clip_feature_doc_SHARDS "WebDataset shards with libarchive (needs JPEG and PNG)")
set(clip_feature_doc_GLOO "c10d's Gloo backend (LibTorch's, with gloo's headers)")
set(clip_feature_doc_NCCL "c10d's NCCL backend (a CUDA LibTorch's, with nccl.h)")
set(clip_feature_doc_FAISS "the image index (clip_index, clip_search) on faiss")
set(clip_feature_doc_HTTP "the HTTP server (clip_serve) on cpp-httplib")
set(clip_feature_doc_HUB "downloads from the Hugging Face hub with libcurl")

foreach(name IN LISTS CLIP_FEATURES)
  set(CLIP_WITH_${name} AUTO CACHE STRING "${clip_feature_doc_${name}}: AUTO, ON or OFF")
  set_property(CACHE CLIP_WITH_${name} PROPERTY STRINGS AUTO ON OFF)
  string(TOUPPER "${CLIP_WITH_${name}}" clip_value)
  if(clip_value STREQUAL "AUTO")
    set(clip_want_${name} AUTO)
  elseif(clip_value MATCHES "^(ON|YES|TRUE|Y|1)$")
    set(clip_want_${name} ON)
  elseif(clip_value MATCHES "^(OFF|NO|FALSE|N|0)$")
    set(clip_want_${name} OFF)
  else()
    message(FATAL_ERROR "clip: CLIP_WITH_${name}='${CLIP_WITH_${name}}': expected AUTO, ON or OFF")
  endif()
endforeach()

# clip_feature_found(NAME FOUND WHY_NOT): records whether NAME is in (CLIP_HAVE_NAME 0/1); stops the configure when
# it was asked for (ON) and is missing.
function(clip_feature_found name found why_not)
  if(found)
    set(CLIP_HAVE_${name} 1 PARENT_SCOPE)
  else()
    if(clip_want_${name} STREQUAL "ON")
      message(FATAL_ERROR "clip: CLIP_WITH_${name}=ON but ${why_not}. Install it, or configure with "
                          "-DCLIP_WITH_${name}=AUTO (leave it out when missing) or OFF.")
    endif()
    set(CLIP_HAVE_${name} 0 PARENT_SCOPE)
    if(clip_want_${name} STREQUAL "OFF")
      set(clip_why_not_${name} "off" PARENT_SCOPE)
    else()
      set(clip_why_not_${name} "${why_not}" PARENT_SCOPE)
    endif()
  endif()
endfunction()

# The compile definitions of LibTorch's targets (USE_C10D_GLOO, USE_C10D_NCCL live there).
set(clip_torch_definitions "")
foreach(target torch torch_cpu torch_cuda c10 c10_cuda)
  if(TARGET ${target})
    get_target_property(defs ${target} INTERFACE_COMPILE_DEFINITIONS)
    if(defs)
      list(APPEND clip_torch_definitions ${defs})
    endif()
  endif()
endforeach()

# clip_feature_package(NAME PACKAGE WHY_NOT): NAME is in when find_package(PACKAGE) finds it (unless it is OFF).
macro(clip_feature_package name package why_not)
  set(clip_found FALSE)
  if(NOT clip_want_${name} STREQUAL "OFF")
    find_package(${package} QUIET)
    set(clip_found ${${package}_FOUND})
  endif()
  clip_feature_found(${name} "${clip_found}" "${why_not}")
endmacro()

clip_feature_package(JPEG JPEG "libjpeg was not found (Debian: libjpeg-dev)")
clip_feature_package(PNG PNG "libpng was not found (Debian: libpng-dev)")

# libdeflate for PNG's image dataset(clip_found FALSE)
set(clip_why "libdeflate was not found (Debian: libdeflate-dev)")
if(NOT CLIP_HAVE_PNG)
  set(clip_why "it is only used for PNG, which is not in")
elseif(NOT clip_want_LIBDEFLATE STREQUAL "OFF")
  find_path(CLIP_LIBDEFLATE_INCLUDE libdeflate.h)
  find_library(CLIP_LIBDEFLATE deflate)
  if(CLIP_LIBDEFLATE_INCLUDE AND CLIP_LIBDEFLATE)
    set(clip_found TRUE)
  endif()
endif()
clip_feature_found(LIBDEFLATE "${clip_found}" "${clip_why}")

# OpenCV. Debian's split OpenCV -dev packages ship no OpenCVConfig.cmake: then the headers and libraries directly.
set(clip_found FALSE)
if(NOT clip_want_OPENCV STREQUAL "OFF")
  find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs)
  if(OpenCV_FOUND)
    set(clip_found TRUE)
  else()
    find_path(CLIP_OPENCV_INCLUDE opencv2/imgcodecs.hpp PATH_SUFFIXES opencv4)
    set(clip_found TRUE)
    set(clip_opencv_libs "")
    foreach(module core imgproc imgcodecs)
      find_library(CLIP_OPENCV_${module} opencv_${module})
      if(NOT CLIP_OPENCV_${module})
        set(clip_found FALSE)
      endif()
      list(APPEND clip_opencv_libs ${CLIP_OPENCV_${module}})
    endforeach()
    if(NOT CLIP_OPENCV_INCLUDE)
      set(clip_found FALSE)
    endif()
    if(clip_found)
      add_library(clip_opencv INTERFACE)
      target_include_directories(clip_opencv SYSTEM INTERFACE ${CLIP_OPENCV_INCLUDE})
      target_link_libraries(clip_opencv INTERFACE ${clip_opencv_libs})
      set(OpenCV_LIBS clip_opencv)
    endif()
  endif()
endif()
clip_feature_found(OPENCV "${clip_found}" "OpenCV (core, imgproc, imgcodecs) was not found (Debian: libopencv-dev)")

# WebDataset shards
set(clip_found FALSE)
set(clip_why "libarchive was not found (Debian: libarchive-dev)")
if(NOT CLIP_HAVE_JPEG OR NOT CLIP_HAVE_PNG)
  set(clip_why "shards need both JPEG and PNG (re-encoding and the DCT-scaled decode), and one of them is not in")
elseif(NOT clip_want_SHARDS STREQUAL "OFF")
  find_package(LibArchive 3 QUIET)
  set(clip_found ${LibArchive_FOUND})
endif()
clip_feature_found(SHARDS "${clip_found}" "${clip_why}")

# Gloo: LibTorch compiled with it (USE_C10D_GLOO) and gloo's headers (pip wheels ship none; Debian: libgloo-dev).
set(clip_found FALSE)
set(clip_why "gloo's headers (gloo/algorithm.h) were not found (Debian: libgloo-dev)")
if(NOT "USE_C10D_GLOO" IN_LIST clip_torch_definitions)
  set(clip_why "LibTorch ${Torch_VERSION} was built without Gloo (no USE_C10D_GLOO)")
elseif(NOT clip_want_GLOO STREQUAL "OFF")
  find_path(CLIP_GLOO_INCLUDE gloo/algorithm.h HINTS ${TORCH_INCLUDE_DIRS})
  if(CLIP_GLOO_INCLUDE)
    set(clip_found TRUE)
  endif()
endif()
clip_feature_found(GLOO "${clip_found}" "${clip_why}")

# NCCL: a CUDA LibTorch compiled with it (USE_C10D_NCCL) and nccl.h (pip wheels have it under nvidia/nccl, the CUDA
# toolkit under its include folder).
set(clip_found FALSE)
set(clip_why "nccl.h was not found (install NCCL's headers, or set CMAKE_PREFIX_PATH to them)")
if(NOT "USE_C10D_NCCL" IN_LIST clip_torch_definitions)
  set(clip_why "LibTorch ${Torch_VERSION} was built without NCCL (no USE_C10D_NCCL: a CPU LibTorch?)")
elseif(NOT clip_want_NCCL STREQUAL "OFF")
  set(clip_nccl_hints ${TORCH_INCLUDE_DIRS} ${CUDAToolkit_INCLUDE_DIRS} ${CUDA_INCLUDE_DIRS})
  if(TORCH_INSTALL_PREFIX)
    list(APPEND clip_nccl_hints "${TORCH_INSTALL_PREFIX}/../nvidia/nccl/include")
  endif()
  find_path(CLIP_NCCL_INCLUDE nccl.h HINTS ${clip_nccl_hints} PATHS /usr/local/cuda/include)
  if(CLIP_NCCL_INCLUDE)
    set(clip_found TRUE)
  endif()
endif()
clip_feature_found(NCCL "${clip_found}" "${clip_why}")

# faiss: Debian's libfaiss-dev is a static library (position-independent, so it links into libclip.so) whose
# package config wants OpenMP and the system BLAS/LAPACK.
set(clip_found FALSE)
if(NOT clip_want_FAISS STREQUAL "OFF")
  find_package(OpenMP QUIET COMPONENTS CXX)
  if(OpenMP_CXX_FOUND)
    find_package(faiss QUIET)
    set(clip_found ${faiss_FOUND})
  endif()
endif()
clip_feature_found(FAISS "${clip_found}" "faiss was not found (Debian: libfaiss-dev)")

# cpp-httplib: Debian builds it as a shared library whose classes depend on the configuration macros it was compiled
# with (OpenSSL, zlib, Brotli support): its pkg-config file carries them, so the headers are read as the library was
# compiled. Only src/serve/http_server.cpp includes httplib.h.
set(clip_found FALSE)
set(clip_why "cpp-httplib was not found (Debian: libcpp-httplib-dev)")
if(NOT clip_want_HTTP STREQUAL "OFF")
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(CLIP_HTTPLIB QUIET IMPORTED_TARGET cpp-httplib>=0.11)
    set(clip_found ${CLIP_HTTPLIB_FOUND})
  else()
    set(clip_why "pkg-config was not found (Debian: pkg-config), which finds cpp-httplib")
  endif()
endif()
clip_feature_found(HTTP "${clip_found}" "${clip_why}")

# libcurl: the hub downloads (src/io/hf_hub_fetch.cpp); 7.85 or later (CURLOPT_PROTOCOLS_STR).
set(clip_found FALSE)
if(NOT clip_want_HUB STREQUAL "OFF")
  find_package(CURL 7.85 QUIET)
  set(clip_found ${CURL_FOUND})
endif()
clip_feature_found(HUB "${clip_found}" "libcurl 7.85 or later was not found (Debian: libcurl4-openssl-dev)")

# One status line: what is in, and why each of the others is not.
set(clip_in "")
set(clip_out "")
foreach(name IN LISTS CLIP_FEATURES)
  if(CLIP_HAVE_${name})
    list(APPEND clip_in ${name})
  else()
    list(APPEND clip_out "${name} (${clip_why_not_${name}})")
  endif()
endforeach()
string(REPLACE ";" " " clip_in "${clip_in}")
string(REPLACE ";" ", " clip_out "${clip_out}")
if(clip_out)
  message(STATUS "clip: with ${clip_in}; without ${clip_out}")
else()
  message(STATUS "clip: with ${clip_in} (every optional feature)")
endif()

configure_file(${PROJECT_SOURCE_DIR}/cmake/clip_features.h.in ${PROJECT_BINARY_DIR}/generated/clip_features.h @ONLY)
