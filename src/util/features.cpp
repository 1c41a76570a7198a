#include "clip/util/features.h"

#include "clip_features.h"

namespace clip {

const Features& features() {
  static const Features f{CLIP_WITH_JPEG != 0,   CLIP_WITH_PNG != 0,  CLIP_WITH_LIBDEFLATE != 0,
                          CLIP_WITH_OPENCV != 0, CLIP_WITH_SHARDS != 0, CLIP_WITH_GLOO != 0,
                          CLIP_WITH_NCCL != 0,   CLIP_WITH_FAISS != 0,  CLIP_WITH_HTTP != 0,
                          CLIP_WITH_HUB != 0};
  return f;
}

std::string features_summary() {
  const Features& f = features();
  const std::pair<const char*, bool> all[] = {{"JPEG", f.jpeg},     {"PNG", f.png},       {"LIBDEFLATE", f.libdeflate},
                                              {"OPENCV", f.opencv}, {"SHARDS", f.shards}, {"GLOO", f.gloo},
                                              {"NCCL", f.nccl},     {"FAISS", f.faiss},   {"HTTP", f.http},
                                              {"HUB", f.hub}};
  std::string with, without;
  for (const auto& [name, in] : all) {
    std::string& list = in ? with : without;
    list += list.empty() ? name : std::string(" ") + name;
  }
  return "with " + (with.empty() ? std::string("nothing optional") : with) + "; without " +
         (without.empty() ? std::string("nothing") : without);
}

}  // namespace clip
