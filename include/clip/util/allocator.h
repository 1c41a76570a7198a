#pragma once
/// How the process's memory allocator treats LibTorch's large CPU tensors.
///
///   clip::keep_freed_memory();   // once, at start-up: the tools do

namespace clip {

/// Makes glibc's malloc keep freed blocks of up to 1 GB for reuse instead of returning each to the kernel:
/// LibTorch allocates a CPU tensor's memory with malloc, so a model's activations of a few to tens of MB (a
/// ViT-B/32 batch of 32: 20 MB per MLP layer) are otherwise mapped, zeroed by page faults and unmapped at every
/// layer of every batch (with int8 inference at batch 32, about a sixth of the time: docs/performance.md). The
/// process then keeps its peak memory until it exits. Changes process-wide settings; nothing elsewhere than glibc.
void keep_freed_memory();

}  // namespace clip
