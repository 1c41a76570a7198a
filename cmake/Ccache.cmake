# Use ccache for every compile when it is installed (LibTorch headers make each translation unit slow).
find_program(CLIP_CCACHE ccache)
if(CLIP_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CLIP_CCACHE})
  message(STATUS "clip: compiling through ${CLIP_CCACHE}")
endif()
