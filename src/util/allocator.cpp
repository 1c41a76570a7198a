#include "clip/util/allocator.h"

#include <malloc.h>

namespace clip {

void keep_freed_memory() {
#if defined(__GLIBC__)
  // Blocks up to 32 MB (glibc's largest mmap threshold) come from the heap, and up to 1 GB freed at its top stays
  // there: LibTorch's activations of a few to tens of MB are then reused without page faults.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

}  // namespace clip
