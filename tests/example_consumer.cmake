# Installs libclip into a temporary prefix, configures and builds examples/consumer against it with
# find_package(clip), and runs it on the bundled tiny model. Run by ctest (test "example_consumer").
set(prefix "${WORK_DIR}/prefix")
set(build "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")

function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "example_consumer: step failed (${rc}): ${ARGN}\n${out}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

step(${CMAKE_COMMAND} --install "${CLIP_BINARY_DIR}" --prefix "${prefix}")
# The installed library must not look for data in the source folder it was built from: no string in it is that
# folder (source file names in error messages, from __FILE__, are other strings).
file(GLOB_RECURSE installed_libs "${prefix}/lib*/libclip.so*")
foreach(lib ${installed_libs})
  if(NOT IS_SYMLINK "${lib}")
    file(STRINGS "${lib}" source_paths REGEX "^${CLIP_SOURCE_DIR}/?$")
    if(source_paths)
      message(FATAL_ERROR "example_consumer: ${lib} has the source folder ${CLIP_SOURCE_DIR} compiled in")
    endif()
    message(STATUS "example_consumer: ${lib} has no source folder compiled in")
  endif()
endforeach()
set(launcher "")
find_program(ccache ccache)
if(ccache)
  set(launcher "-DCMAKE_CXX_COMPILER_LAUNCHER=${ccache}")
endif()
step(${CMAKE_COMMAND} -S "${CLIP_SOURCE_DIR}/examples/consumer" -B "${build}" -G Ninja -DCMAKE_BUILD_TYPE=Release
     "-DCMAKE_PREFIX_PATH=${prefix}" "-DTorch_DIR=${Torch_DIR}" ${launcher})
step(${CMAKE_COMMAND} --build "${build}")
step("${build}/consumer" "${CLIP_SOURCE_DIR}/tests/data/vit_tiny.safetensors" "${CLIP_SOURCE_DIR}/tests/data/vit_tiny.json")
message(STATUS "${step_output}")
if(NOT step_output MATCHES "cosine similarity")
  message(FATAL_ERROR "example_consumer: unexpected output:\n${step_output}")
endif()

# Training through the public API on the application's own in-memory batches: the loss must fall.
step("${build}/train_in_memory" "${CLIP_SOURCE_DIR}/tests/data/vit_tiny.json" "${WORK_DIR}/train_run")
message(STATUS "${step_output}")
if(NOT step_output MATCHES "trained 48 steps in memory")
  message(FATAL_ERROR "example_consumer: unexpected output of train_in_memory:\n${step_output}")
endif()
