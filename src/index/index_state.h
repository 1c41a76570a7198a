#pragma once
// What an ImageIndex holds, and the table of its files; shared by image_index.cpp (load, save, search) and
// index_build.cpp (build, update). Internal.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clip/index/image_index.h"
#include "index/file_table.h"
#include "index/vectors.h"

namespace clip {

struct ImageIndex::State {
  IndexInfo info;
  int64_t ivf_lists_requested = 0;  // 0: chosen from N when the index is (re)built
  int64_t scanned_ns = 0;           // wall clock when the folder was listed (files changed after it are hashed again)
  std::vector<FileRecord> files;
  std::vector<ItemError> skipped;
  std::unique_ptr<detail::Vectors> vectors;
  std::optional<IndexRecall> recall;
};

/// The state behind an ImageIndex, for libclip's own code above the index (the search benchmark).
struct IndexAccess {
  static const ImageIndex::State& state(const ImageIndex& index) { return *index.state_; }
};

}  // namespace clip
