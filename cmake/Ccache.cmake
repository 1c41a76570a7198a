# Use ccache for every compile when it is installed (LibTorch headers make each translation unit slow).
# The sloppiness settings let it cache compiles that use a precompiled header (cmake/Pch.cmake; ccache's manual,
# "Precompiled headers"); base_dir makes hits independent of the folder the checkout is in (CI clones anew).
find_program(CLIP_CCACHE ccache)
if(CLIP_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env
      CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
      CCACHE_BASEDIR=${PROJECT_SOURCE_DIR} ${CLIP_CCACHE})
  message(STATUS "clip: compiling through ${CLIP_CCACHE}")
endif()
