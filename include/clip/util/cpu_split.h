#pragma once
/// Where the machine's CPU time went during a piece of work (embedding a folder: clip_zeroshot, clip_index).
///
///   clip::ImageFeatureStream stream(*model, paths);
///   ...
///   std::puts(clip::describe(stream.cpu_split()).c_str());   // "2 cores x 12.9 s: model 71%, decoding 27%, idle 3%"
#include <string>

namespace clip {

/// Core-seconds: the cores times the wall time, split between the decoding threads, the rest of the process (the
/// model and LibTorch's threads) and nothing (idle: a core neither kept busy).
struct CpuSplit {
  int cores = 0;            ///< cores this process may run on (its CPU affinity)
  double wall_seconds = 0;
  double decoding = 0;      ///< CPU time of the loader's threads: reading, decoding, preprocessing (and hashing)
  double model = 0;         ///< the rest of the process's CPU time: the model, its threads, the caller's work
  double idle = 0;          ///< cores x wall_seconds - decoding - model, at least 0
};

/// One line: "2 cores x 12.9 s: model 71%, decoding 27%, idle 3%".
std::string describe(const CpuSplit& split);

/// The cores this process may run on (its CPU affinity; hardware_concurrency where that is unknown).
int usable_cores();

}  // namespace clip
