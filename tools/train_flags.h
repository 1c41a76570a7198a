#pragma once
// clip_train's command line: `--config FILE.json` (optional), then every setting as a flag over it
// (clip::train_settings(): `batch_size` <-> `--batch-size`). Tool code, not the library's: it prints --help and
// exits, which the library never does.
#include "clip/train/train_config.h"

namespace clip::tools {

/// Parses argv; `--help` prints every flag with its default and exits 0. Throws clip::Error for unknown flags or
/// bad values.
TrainConfig parse_train_args(int argc, const char* const* argv);

}  // namespace clip::tools
