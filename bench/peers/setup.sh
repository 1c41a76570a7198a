#!/usr/bin/env bash
# Rebuilds the CPU-inference peers of bench/peers/README.md into $PEERS (default /tmp/peers), idempotently:
# a step whose output is already there is skipped (FORCE=1 redoes every step).
#
#   bench/peers/setup.sh [all|clipcpp|hf|gguf|bench|onnx]...      (default: all)
#
#   clipcpp  clip.cpp at $CLIPCPP_COMMIT + ggml at the commit clip.cpp pins (its `ggml` gitlink), Release, default
#            CPU flags (-march=native -mf16c -mfma -mavx -mavx2), targets clip + quantize, into $PEERS/clip.cpp/build
#   hf       a random-weight HF CLIPModel with openai/clip-vit-base-patch32's config, written by hand (no Hub
#            access needed; the tokenizer files come from open_clip's bundled BPE file) -> $PEERS/hf_vitb32
#   gguf     clip.cpp's models/convert_hf_to_gguf.py (f32, f16, vision-only) + its quantize tool (q8_0, q4_0)
#            -> $PEERS/gguf/vitb32_ggml-vision-model-{f32,f16,q8_0,q4_0}.gguf
#   bench    bench/peers/clip_cpp_bench.cpp built against that build -> $PEERS/clip.cpp/build/bin/clip_cpp_bench
#   onnx     the same HF weights' image tower (vision_model + visual_projection) to ONNX, opset 17, dynamic batch
#            -> $PEERS/vitb32_image.onnx, and quantize_dynamic (QInt8 weights, per channel) -> vitb32_image.int8.onnx
#
# Sources: bare git mirrors $CLIPCPP_GIT and $GGML_GIT (defaults: the fetched /work/.mirror ones); where a mirror
# is missing, it is cloned from GitHub into $PEERS/mirrors. Python: $PY (a venv with torch, transformers,
# open_clip_torch; gguf, onnx, onnxruntime, onnxscript are pip-installed into it when missing).
# Compiles with $JOBS jobs (default 1).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PEERS=${PEERS:-/tmp/peers}
PY=${PY:-/root/.cache/libclip/venv-torch2.11.0-py3.11/bin/python}
JOBS=${JOBS:-1}
FORCE=${FORCE:-0}
CLIPCPP_GIT=${CLIPCPP_GIT:-/work/.mirror/monatis+clip.cpp/repo}
GGML_GIT=${GGML_GIT:-/work/.mirror/ggerganov+ggml/repo}
CLIPCPP_COMMIT=${CLIPCPP_COMMIT:-3484ffc405b7c7409d095bcaaea39d0bb2534823} # clip.cpp master, 2025-06-19
SEED=${SEED:-0}

SRC=$PEERS/clip.cpp
BUILD=$SRC/build
HF=$PEERS/hf_vitb32
GGUF=$PEERS/gguf

log() { echo "setup.sh: $*" >&2; }
need() { [[ "$FORCE" == 1 || ! -e "$1" ]]; }

mirror() { # mirror <bare git dir> <github owner/name>: prints a usable git dir
  if [[ -d "$1" ]]; then echo "$1"; return; fi
  local into=$PEERS/mirrors/${2/\//+}.git
  [[ -d "$into" ]] || git clone --bare --quiet "https://github.com/$2.git" "$into"
  echo "$into"
}

pip_need() { # pip_need <module> <pip spec>...: installs into $PY's venv when the module is missing
  local mod=$1; shift
  "$PY" -c "import $mod" 2>/dev/null || "$PY" -m pip install --quiet "$@"
}

step_clipcpp() {
  if need "$BUILD/libclip.a" || need "$BUILD/bin/quantize"; then
    local cgit ggit pin
    cgit=$(mirror "$CLIPCPP_GIT" monatis/clip.cpp)
    ggit=$(mirror "$GGML_GIT" ggerganov/ggml)
    pin=$(git --git-dir="$cgit" ls-tree "$CLIPCPP_COMMIT" ggml | awk '{print $3}')
    log "clip.cpp $CLIPCPP_COMMIT, ggml $pin (its submodule pin) -> $SRC"
    rm -rf "$SRC"
    mkdir -p "$SRC/ggml"
    git --git-dir="$cgit" archive "$CLIPCPP_COMMIT" | tar -x -C "$SRC"
    # only what clip.cpp's build uses (ggml's examples/tests are off in a subproject build; the fetched mirror
    # lacks some of their large data files: git may print "invalid object ... examples/mnist/..." and still
    # extract these paths whole)
    git --git-dir="$ggit" archive "$pin" -- CMakeLists.txt LICENSE cmake ggml.pc.in include src | tar -x -C "$SRC/ggml"
    printf 'clip.cpp %s\nggml %s\n' "$CLIPCPP_COMMIT" "$pin" >"$SRC/PEER_COMMITS"
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$PEERS/clipcpp_cmake.log"
    cmake --build "$BUILD" -j"$JOBS" --target clip quantize
  fi
}

step_bench() {
  local out=$BUILD/bin/clip_cpp_bench src=$HERE/clip_cpp_bench.cpp
  if need "$out" || [[ "$src" -nt "$out" ]]; then
    log "clip_cpp_bench -> $out"
    # clip.cpp's own flags for a Release build (-O3 -DNDEBUG + its default CLIP_NATIVE/AVX/AVX2/FMA/F16C)
    g++ -std=c++17 -O3 -DNDEBUG -march=native -mf16c -mfma -mavx -mavx2 -pthread \
      -I"$SRC" -I"$SRC/ggml/include" "$src" "$BUILD/libclip.a" "$BUILD/ggml/src/libggml.a" -lm -o "$out"
  fi
}

step_hf() {
  if need "$HF/model.safetensors"; then
    log "random-weight HF CLIP ViT-B/32 (seed $SEED) -> $HF"
    "$PY" "$HERE/make_hf_vitb32.py" --out "$HF" --seed "$SEED"
  fi
}

step_gguf() {
  pip_need gguf gguf
  mkdir -p "$GGUF"
  local f32=$GGUF/vitb32_ggml-vision-model-f32.gguf f16=$GGUF/vitb32_ggml-vision-model-f16.gguf
  # convert_hf_to_gguf.py names its output after the output folder: <basename>_ggml-vision-model-<ftype>.gguf
  if need "$f32"; then
    (cd "$SRC/models" && "$PY" convert_hf_to_gguf.py -m "$HF" --vision-only --use-f32 -o "$GGUF/vitb32" >"$PEERS/convert_f32.log")
    mv "$GGUF/vitb32/vitb32_ggml-vision-model-f32.gguf" "$f32"
  fi
  if need "$f16"; then
    (cd "$SRC/models" && "$PY" convert_hf_to_gguf.py -m "$HF" --vision-only -o "$GGUF/vitb32" >"$PEERS/convert_f16.log")
    mv "$GGUF/vitb32/vitb32_ggml-vision-model-f16.gguf" "$f16"
  fi
  rmdir "$GGUF/vitb32" 2>/dev/null || true
  # quantize's types: 2 q4_0, 3 q4_1, 6 q5_0, 7 q5_1, 8 q8_0 (from the f32 file, as clip.cpp's scripts/quantize-models.sh)
  local t
  for t in q8_0:8 q4_0:2; do
    if need "$GGUF/vitb32_ggml-vision-model-${t%:*}.gguf"; then
      "$BUILD/bin/quantize" "$f32" "$GGUF/vitb32_ggml-vision-model-${t%:*}.gguf" "${t#*:}" >"$PEERS/quantize_${t%:*}.log"
    fi
  done
}

step_onnx() {
  pip_need onnx onnx
  pip_need onnxruntime onnxruntime
  pip_need onnxscript onnxscript
  if need "$PEERS/vitb32_image.onnx" || need "$PEERS/vitb32_image.int8.onnx"; then
    log "ONNX export + dynamic int8 -> $PEERS/vitb32_image{,.int8}.onnx"
    "$PY" "$HERE/export_onnx.py" --hf "$HF" --out "$PEERS/vitb32_image.onnx" --int8-out "$PEERS/vitb32_image.int8.onnx"
  fi
}

mkdir -p "$PEERS"
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(all)
for s in "${steps[@]}"; do
  case $s in
  all) step_clipcpp; step_bench; step_hf; step_gguf; step_onnx ;;
  clipcpp) step_clipcpp ;;
  bench) step_bench ;;
  hf) step_hf ;;
  gguf) step_gguf ;;
  onnx) step_onnx ;;
  *) echo "setup.sh: unknown step $s (all|clipcpp|hf|gguf|bench|onnx)" >&2; exit 2 ;;
  esac
done
log "done"
