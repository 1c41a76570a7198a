// A PyTorch zip archive as the checkpoint loader meets it: is it a zip, TorchScript or torch.save, and its tensors:
// a torch.save file's state dict (PyTorch's zip reader, the restricted unpickler, the storage records) or a TorchScript
// module's parameters and buffers.
#include "fuzz.h"
#include "io/torch_archive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = clip::fuzz::temp_file(data, size, ".pt");
  if (!clip::is_zip_file(path)) return 0;
  clip::fuzz::expect_clip_errors([&] {
    if (clip::is_torchscript_archive(path)) {
      clip::read_torchscript_tensors(path);
    } else {
      clip::read_torch_save_state_dict(path);
    }
  });
  return 0;
}
