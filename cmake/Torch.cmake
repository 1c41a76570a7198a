# LibTorch wrapped once as clip_torch, an INTERFACE target whose include directories are SYSTEM so that
# -Wall -Wextra -Werror applies to our code and not to Torch's headers. The installed package defines the
# same thing as clip::torch against the consumer's own find_package(Torch) (see clip-config.cmake.in).
#
# Which LibTorch: Debian's (libtorch-dev, /usr) by default; another one with -DTorch_ROOT=<its folder> (for pip's
# torch: python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))'; scripts/build does this for
# CLIP_TORCH=pip). Torch_ROOT rather than CMAKE_PREFIX_PATH: TorchConfig.cmake finds its libraries with
# find_library(... PATHS <prefix>/lib), which searches the system's folders first, so with Debian's libtorch-dev
# also installed a CMAKE_PREFIX_PATH build would silently link Debian's libtorch.so and c10 beside the other
# LibTorch's headers. <Package>_ROOT is searched before the system's folders (policy CMP0074).
if(Torch_DIR AND NOT Torch_ROOT AND NOT DEFINED ENV{Torch_ROOT})
  get_filename_component(Torch_ROOT "${Torch_DIR}/../../.." ABSOLUTE)
endif()
# A build folder reconfigured with another Torch_ROOT still caches the previous LibTorch's Torch_DIR and library
# paths (find_package and find_library keep what they found): forget every cached LibTorch path outside Torch_ROOT.
if(Torch_ROOT)
  get_filename_component(clip_new_root "${Torch_ROOT}" REALPATH)
  get_cmake_property(clip_cached CACHE_VARIABLES)
  foreach(var IN LISTS clip_cached)
    set(value "${${var}}")
    if(value MATCHES "/lib(torch|c10|caffe2)[^/]*\\.so[.0-9]*$|/cmake/(Torch|Caffe2)$")
      get_filename_component(real "${value}" REALPATH)
      string(FIND "${real}" "${clip_new_root}/" at)
      if(NOT at EQUAL 0)
        message(STATUS "clip: forgetting ${var}=${value} (not in Torch_ROOT ${Torch_ROOT})")
        unset(${var} CACHE)
      endif()
    endif()
  endforeach()
endif()
find_package(Torch REQUIRED)
# Every LibTorch library must come from the LibTorch whose headers we compile against.
get_filename_component(clip_torch_prefix "${TORCH_INSTALL_PREFIX}" REALPATH)
foreach(lib IN LISTS TORCH_LIBRARY TORCH_LIBRARIES)
  if(IS_ABSOLUTE "${lib}" AND lib MATCHES "/lib(torch|c10)[^/]*\\.so$")
    get_filename_component(real "${lib}" REALPATH)
    string(FIND "${real}" "${clip_torch_prefix}/" at)
    if(NOT at EQUAL 0)
      message(FATAL_ERROR "clip: LibTorch ${Torch_VERSION} at ${TORCH_INSTALL_PREFIX} would link ${lib}, which "
                          "belongs to another LibTorch. Configure with -DTorch_ROOT=${TORCH_INSTALL_PREFIX}.")
    endif()
  endif()
endforeach()
# PyPI's libtorch.so defines some of libstdc++'s own functions (std::filesystem::remove_all and others, linked in
# statically from the compiler it was built with; pytorch/pytorch#133437), and calling its copies from our code
# jumps to address 0. A program takes each symbol from the first library in its link order that defines it, so
# libstdc++ is linked ahead of LibTorch (CLIP_STDCXX_FIRST; the installed package does the same for its users).
set(CLIP_STDCXX_FIRST "")
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang" AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  set(CLIP_STDCXX_FIRST "-Wl,--push-state,--no-as-needed,-lstdc++,--pop-state")
endif()
add_library(clip_torch INTERFACE)
target_include_directories(clip_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
target_link_libraries(clip_torch INTERFACE ${CLIP_STDCXX_FIRST} ${TORCH_LIBRARIES})
message(STATUS "clip: LibTorch ${Torch_VERSION} from ${TORCH_INSTALL_PREFIX}")
