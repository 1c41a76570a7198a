// What every build has of the vectors' interface (vectors_faiss.cpp or vectors_unavailable.cpp has the rest).
#include "index/vectors.h"

#include <ATen/ATen.h>

namespace clip::detail {

void Vectors::search(const at::Tensor& queries, int64_t k, const SearchDepth& depth, at::Tensor& scores,
                     at::Tensor& rows) const {
  const at::Tensor q = queries.to(at::kCPU, at::kFloat).contiguous();
  TORCH_CHECK(q.dim() == 2 && q.size(1) == dim(), "Vectors::search: queries ", q.sizes(), " for dimension ", dim());
  scores = at::empty({q.size(0), k}, at::kFloat);
  rows = at::empty({q.size(0), k}, at::kLong);
  search(q.data_ptr<float>(), q.size(0), k, depth, scores.data_ptr<float>(), rows.data_ptr<int64_t>());
}

}  // namespace clip::detail
