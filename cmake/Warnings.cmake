# clip_warnings: an INTERFACE target carrying our own warning flags; linked PRIVATE so they never leak to users.
add_library(clip_warnings INTERFACE)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(clip_warnings INTERFACE -Wall -Wextra)
  if(CLIP_WARNINGS_AS_ERRORS)
    target_compile_options(clip_warnings INTERFACE -Werror)
  endif()
endif()
