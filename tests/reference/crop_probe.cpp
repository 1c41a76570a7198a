// clip_crop_probe: libclip's RandomResizedCrop output for a given source window, for
// tests/reference/test_preprocess.py to hold against torchvision's resized_crop with the window torchvision's
// RandomResizedCrop.get_params drew (the seed-aligned case). Reads lines "PATH X Y WIDTH HEIGHT SIZE" (PATH
// without spaces); writes OUTPUT.safetensors with uint8 [SIZE, SIZE, 3] "0", "1", ... in order (bicubic), or
// an error line on stderr and exit 1. Test-only; not installed.
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

#include <torch/torch.h>

#include "clip/image/decode.h"
#include "clip/image/transform.h"
#include "clip/io/safetensors.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: clip_crop_probe OUTPUT.safetensors < lines of 'PATH X Y WIDTH HEIGHT SIZE'\n");
    return 2;
  }
  try {
    clip::TensorMap out;
    std::string line;
    for (int index = 0; std::getline(std::cin, line); ++index) {
      std::istringstream fields(line);
      std::string path;
      clip::Window window;
      clip::PreprocessOptions options;
      if (!(fields >> path >> window.x >> window.y >> window.width >> window.height >> options.size)) {
        std::fprintf(stderr, "clip_crop_probe: line %d: expected PATH X Y WIDTH HEIGHT SIZE\n", index + 1);
        return 1;
      }
      at::Tensor rgb = torch::empty({options.size, options.size, 3}, torch::kUInt8);
      clip::resized_crop_rgb(clip::decode_image(path), window, options, rgb.data_ptr<uint8_t>());
      out[std::to_string(index)] = rgb;
    }
    clip::write_safetensors(argv[1], out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "clip_crop_probe: %s\n", e.what());
    return 1;
  }
  return 0;
}
