#pragma once
/// CPU threads for LibTorch's intra-op parallelism.
///
///   clip::set_cpu_threads(0);   // every core (LibTorch's own default here is 1)
namespace clip {

/// Sets LibTorch's intra-op threads: `requested` when positive, else one per core. Returns the count set.
int set_cpu_threads(int requested);

}  // namespace clip
