// The restricted unpickler on any bytes: a torch.save file's data.pkl, and (inputs whose length is odd) a TorchScript
// archive's, where module objects are allowed. Storages are served as a real archive would
// serve them: a record of at most 1 MiB, so a hostile element count is refused as the archive reader refuses it.
#include <ATen/ATen.h>

#include "fuzz.h"
#include "io/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const clip::pickle::StorageLoader load = [](const std::string& key, at::ScalarType dtype, int64_t numel) {
    constexpr int64_t kRecordBytes = 1 << 20;
    if (numel < 0 || numel > kRecordBytes / int64_t(c10::elementSize(dtype))) {
      clip::fail("fuzz.pt: storage '", key, "' holds ", kRecordBytes, " bytes, fewer than its ", numel,
                 " elements need");
    }
    return at::zeros({numel}, at::TensorOptions().dtype(dtype));
  };
  const auto classes = size % 2 ? clip::pickle::Classes::torchscript : clip::pickle::Classes::plain;
  clip::fuzz::expect_clip_errors([&] { clip::pickle::unpickle(data, size, load, "fuzz.pt (data.pkl)", classes); });
  return 0;
}
