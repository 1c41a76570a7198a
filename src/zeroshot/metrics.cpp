#include "clip/zeroshot/metrics.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "clip/util/error.h"

namespace clip {

at::Tensor ranked_topk(const at::Tensor& scores, int64_t k) {
  TORCH_CHECK(scores.dim() == 2, "ranked_topk: scores must be [N, C], got ", scores.sizes());
  const int64_t n = std::min<int64_t>(std::max<int64_t>(k, 1), scores.size(1));
  // A stable sort keeps equal scores in column order.
  const at::Tensor order = std::get<1>(at::sort(scores.to(at::kCPU), /*stable=*/true, /*dim=*/1, /*descending=*/true));
  return order.narrow(1, 0, n).contiguous();
}

ClassificationMetrics classification_metrics_from_ranks(const at::Tensor& ranked, const at::Tensor& targets,
                                                        int64_t classes) {
  TORCH_CHECK(ranked.dim() == 2 && targets.dim() == 1 && ranked.size(0) == targets.size(0),
              "classification metrics: ranked classes ", ranked.sizes(), " do not match targets ", targets.sizes());
  TORCH_CHECK(classes >= 1, "classification metrics: no classes");
  ClassificationMetrics m;
  m.samples = targets.size(0);
  m.classes = classes;
  if (m.samples == 0) fail("classification metrics: no samples");
  const at::Tensor t = targets.to(at::kCPU, at::kLong);
  const auto [lo, hi] = at::aminmax(t);
  if (lo.item<int64_t>() < 0 || hi.item<int64_t>() >= classes) {
    fail("classification metrics: targets span [", lo.item<int64_t>(), ", ", hi.item<int64_t>(), "], outside the ",
         classes, " classes");
  }
  const at::Tensor r = ranked.to(at::kCPU, at::kLong);
  const at::Tensor hit = r.eq(t.unsqueeze(1));  // [N, k]
  m.acc1 = hit.select(1, 0).to(at::kDouble).mean().item<double>();
  if (classes >= 5) {
    TORCH_CHECK(r.size(1) >= 5, "classification metrics: acc5 needs the top 5 ranked classes, got ", r.size(1));
    m.acc5 = hit.narrow(1, 0, 5).any(1).to(at::kDouble).mean().item<double>();
  } else {
    m.acc5 = std::numeric_limits<double>::quiet_NaN();
  }
  // balanced accuracy over the classes that have samples
  const at::Tensor per_class_total = at::bincount(t, {}, classes).to(at::kDouble);
  const at::Tensor per_class_hits = at::bincount(t.masked_select(hit.select(1, 0)), {}, classes).to(at::kDouble);
  const at::Tensor present = per_class_total > 0;
  m.classes_with_samples = present.sum().item<int64_t>();
  m.mean_per_class_recall = (per_class_hits.masked_select(present) / per_class_total.masked_select(present))
                                .mean()
                                .item<double>();
  return m;
}

ClassificationMetrics classification_metrics(const at::Tensor& logits, const at::Tensor& targets) {
  TORCH_CHECK(logits.dim() == 2, "classification metrics: logits must be [N, C], got ", logits.sizes());
  return classification_metrics_from_ranks(ranked_topk(logits, 5), targets, logits.size(1));
}

}  // namespace clip
