# Sourced by scripts/build, scripts/test and scripts/gpu_check: which LibTorch to build against and where.
#   CLIP_TORCH=system (default)  Debian's libtorch-dev (1.13, CPU), build folder build/
#   CLIP_TORCH=pip               PyPI's torch 2.x with CUDA (pinned in python/requirements-torch.txt, installed by
#                                scripts/venv), build folder build-torch2/; CLIP_PYTHON=<python3 with torch> uses that
#                                interpreter's torch instead (a GPU machine's own PyTorch)
#   CLIP_BUILD_DIR               another build folder
# Sets clip_torch, clip_build_dir and clip_torch_args (the configure arguments that select the LibTorch).
clip_torch=${CLIP_TORCH:-system}
clip_torch_args=()
case "$clip_torch" in
  system) clip_build_dir=${CLIP_BUILD_DIR:-build} ;;
  pip) clip_build_dir=${CLIP_BUILD_DIR:-build-torch2} ;;
  *) echo "CLIP_TORCH='$clip_torch': expected system (Debian's LibTorch) or pip (PyPI's torch 2.x)" >&2; exit 1 ;;
esac

# clip_resolve_torch: fills clip_torch_args (and clip_python for pip); makes the virtual environment if needed.
clip_resolve_torch() {
  [[ "$clip_torch" == pip ]] || return 0
  if [[ -n "${CLIP_PYTHON:-}" ]]; then
    clip_python=$CLIP_PYTHON
  else
    local venv
    venv=$(scripts/venv) || return 1
    clip_python=$venv/bin/python
  fi
  local torch_root
  torch_root=$("$clip_python" -c 'import os, torch; print(os.path.dirname(torch.__file__))') ||
    { echo "CLIP_TORCH=pip: $clip_python cannot import torch" >&2; return 1; }
  # Torch_ROOT, not CMAKE_PREFIX_PATH: see cmake/Torch.cmake. CUDA and NCCL must be there (test_build checks).
  clip_torch_args=("-DTorch_ROOT=$torch_root" "-DCLIP_TORCH_PYTHON=$clip_python" -DCLIP_REQUIRE_CUDA=ON)
  # The reference environment has the reference packages: the tests against them (tests/reference/) run.
  [[ -z "${CLIP_PYTHON:-}" ]] && clip_torch_args+=(-DCLIP_REFERENCE_TESTS=ON)
  [[ -d /usr/local/cuda && -z "${CUDAToolkit_ROOT:-}" ]] && clip_torch_args+=(-DCUDAToolkit_ROOT=/usr/local/cuda)
  [[ -x /usr/local/cuda/bin/nvcc && -z "${CUDACXX:-}" ]] &&
    clip_torch_args+=(-DCUDA_TOOLKIT_ROOT_DIR=/usr/local/cuda -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
  return 0
}

# clip_needs_configure DIR: whether DIR has no build yet, or its cache lacks one of clip_torch_args (another LibTorch).
clip_needs_configure() {
  local dir=$1 arg name value
  [[ -f "$dir/build.ninja" && -f "$dir/CMakeCache.txt" ]] || return 0
  for arg in "${clip_torch_args[@]}"; do
    arg=${arg#-D}
    name=${arg%%=*} value=${arg#*=}
    grep -qE "^${name}:[A-Z]+=" "$dir/CMakeCache.txt" || return 0
    [[ "$(grep -E "^${name}:[A-Z]+=" "$dir/CMakeCache.txt" | head -1 | cut -d= -f2-)" == "$value" ]] || return 0
  done
  return 1
}
