# Precompiled headers: LibTorch's headers are most of every translation unit's compile time (about 10 s of each
# 15 s here). One precompiled header for libclip's sources, one that the tools share and one that the tests share
# (targets must match the flags of the header they reuse: libclip is -fPIC, executables are not). Nothing here
# changes what a source file must include: each still includes what it uses.
# ccache caches compiles that use a precompiled header only with these sloppiness settings (its manual).
set(CLIP_PCH_HEADERS
  <ATen/ATen.h>
  <torch/nn/module.h>
  <torch/nn/modules/linear.h>
  <torch/nn/modules/conv.h>
  <algorithm> <cmath> <cstdio> <cstring> <filesystem> <fstream> <functional> <map> <memory> <string> <vector>)
option(CLIP_PCH "Precompile the LibTorch headers" ON)

# clip_pch(target [EXTRA <header>...] | REUSE <pch target>)
function(clip_pch target)
  if(NOT CLIP_PCH)
    return()
  endif()
  cmake_parse_arguments(arg "" "REUSE" "EXTRA" ${ARGN})
  if(arg_REUSE)
    target_precompile_headers(${target} REUSE_FROM ${arg_REUSE})
  else()
    target_precompile_headers(${target} PRIVATE ${CLIP_PCH_HEADERS} ${arg_EXTRA})
  endif()
endfunction()

# An object library that only builds a precompiled header for executables to reuse.
function(clip_pch_for_executables name)
  if(NOT CLIP_PCH)
    return()
  endif()
  cmake_parse_arguments(arg "" "" "EXTRA;LINK" ${ARGN})
  add_library(${name} OBJECT ${PROJECT_SOURCE_DIR}/cmake/pch_anchor.cpp)
  target_link_libraries(${name} PRIVATE clip_torch clip_warnings ${arg_LINK})
  target_precompile_headers(${name} PRIVATE ${CLIP_PCH_HEADERS} ${arg_EXTRA})
endfunction()
