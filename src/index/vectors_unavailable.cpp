// Builds without faiss (CLIP_WITH_FAISS off) compile this instead of vectors_faiss.cpp: the image index's entry
// points that need vectors throw saying so.
#include "clip/util/error.h"
#include "clip/util/features.h"
#include "index/vectors.h"

namespace clip::detail {
namespace {

[[noreturn]] void no_faiss(const std::string& what) {
  fail(what, ": this libclip was built without faiss, which the image index needs (CLIP_WITH_FAISS; Debian: "
       "libfaiss-dev; this build is ", features_summary(), ")");
}

}  // namespace

std::unique_ptr<Vectors> Vectors::build(const VectorSpec&, const at::Tensor&, const at::Tensor&) {
  no_faiss("building an image index");
}

std::unique_ptr<Vectors> Vectors::read(const std::string& path, uint64_t, uint32_t) { no_faiss(path); }

}  // namespace clip::detail
