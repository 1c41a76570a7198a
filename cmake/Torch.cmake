# LibTorch wrapped once as clip_torch, an INTERFACE target whose include directories are SYSTEM so that
# -Wall -Wextra -Werror applies to our code and not to Torch's headers. The installed package defines the
# same thing as clip::torch against the consumer's own find_package(Torch) (see clip-config.cmake.in).
find_package(Torch REQUIRED)
add_library(clip_torch INTERFACE)
target_include_directories(clip_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
target_link_libraries(clip_torch INTERFACE ${TORCH_LIBRARIES})
message(STATUS "clip: LibTorch ${Torch_VERSION} from ${TORCH_INSTALL_PREFIX}")
