#include "clip/eval/linear_probe.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/optim/lbfgs.h>

#include <cmath>
#include <map>

#include "clip/util/error.h"

namespace clip {
namespace {

void check_inputs(const at::Tensor& x, const at::Tensor& y, int64_t classes, const char* what) {
  if (x.dim() != 2 || y.dim() != 1 || x.size(0) != y.size(0)) {
    fail("linear probe: ", what, " features ", x.sizes(), " and labels ", y.sizes(), " do not match ([N, D] and [N])");
  }
  if (x.size(0) == 0) fail("linear probe: the ", what, " split is empty");
  const auto [lo, hi] = at::aminmax(y.to(at::kLong));
  if (lo.item<int64_t>() < 0 || hi.item<int64_t>() >= classes) {
    fail("linear probe: ", what, " labels span [", lo.item<int64_t>(), ", ", hi.item<int64_t>(), "], outside the ",
         classes, " classes");
  }
}

}  // namespace

LogisticRegression LogisticRegression::fit(const at::Tensor& features, const at::Tensor& labels, int64_t classes,
                                           const LogisticRegressionOptions& options) {
  if (classes < 2) fail("linear probe: needs at least 2 classes, got ", classes);
  if (!(options.c() > 0)) fail("linear probe: C must be positive, got ", options.c());
  check_inputs(features, labels, classes, "training");
  // Autograd on, whatever the caller's mode (InferenceMode, NoGradGuard); inputs copied out of inference tensors.
  c10::InferenceMode not_inference(false);
  at::AutoGradMode grad(true);
  const at::Tensor x = features.to(at::kCPU, at::kDouble).clone();
  const at::Tensor y = labels.to(at::kCPU, at::kLong).clone();
  // A class without a sample has no finite optimum (its unpenalised bias runs to -infinity): refused, as
  // scikit-learn fits only the classes it sees.
  const at::Tensor counts = at::bincount(y, {}, classes);
  if (const int64_t empty = (counts == 0).sum().item<int64_t>(); empty > 0) {
    fail("linear probe: ", empty, " of the ", classes, " classes have no training sample (the first: class ",
         (counts == 0).nonzero()[0][0].item<int64_t>(), ")");
  }
  const int64_t n = x.size(0), d = x.size(1);
  const double penalty = 1.0 / (2.0 * options.c() * static_cast<double>(n));
  const bool binary = classes == 2;  // scikit-learn fits one logistic vector for two classes
  const int64_t rows = binary ? 1 : classes;
  at::Tensor w = at::zeros({rows, d}, x.options()).requires_grad_(true);
  at::Tensor b = at::zeros({rows}, x.options()).requires_grad_(true);
  const at::Tensor sign = binary ? (y.to(at::kDouble) * 2 - 1) : at::Tensor();

  auto objective = [&] {
    const at::Tensor z = at::addmm(b, x, w.t());  // [n, rows]
    const at::Tensor data = binary ? at::softplus(-sign * z.squeeze(1)).mean() : at::cross_entropy_loss(z, y);
    return data + penalty * w.pow(2).sum();
  };
  torch::optim::LBFGS optimizer({w, b}, torch::optim::LBFGSOptions(1.0)
                                            .max_iter(options.max_iter())
                                            .max_eval(options.max_iter() * 5 / 4 + 1)
                                            .tolerance_grad(options.tolerance())
                                            .tolerance_change(1e-12)
                                            .history_size(10)
                                            .line_search_fn(std::string("strong_wolfe")));
  int64_t evaluations = 0;
  optimizer.step([&] {
    optimizer.zero_grad();
    at::Tensor loss = objective();
    loss.backward();
    ++evaluations;
    return loss;
  });

  LogisticRegression out;
  // The iterations L-BFGS ran (its state holds them, for the first parameter; the map's key type differs between
  // LibTorch versions, so it is walked).
  for (const auto& entry : optimizer.state()) {
    out.iterations = static_cast<const torch::optim::LBFGSParamState&>(*entry.second).n_iter();
  }
  {
    optimizer.zero_grad();
    at::Tensor loss = objective();
    loss.backward();
    out.loss = loss.item<double>();
    const double worst = std::max(w.grad().abs().max().item<double>(), b.grad().abs().max().item<double>());
    // Converged: the gradient is within the tolerance, or L-BFGS stopped before its budget because the loss and the
    // step stopped changing (scipy's ftol criterion, which scikit-learn also accepts).
    out.converged = worst <= options.tolerance() ||
                    (out.iterations < options.max_iter() && evaluations < options.max_iter() * 5 / 4 + 1);
  }
  const at::Tensor wd = w.detach(), bd = b.detach();
  if (binary) {  // logits [0, z]: the softmax of which is the logistic model
    out.weight = at::cat({at::zeros({1, d}, wd.options()), wd});
    out.bias = at::cat({at::zeros({1}, bd.options()), bd});
  } else {
    out.weight = wd.clone();
    out.bias = bd.clone();
  }
  return out;
}

at::Tensor LogisticRegression::logits(const at::Tensor& features) const {
  TORCH_CHECK(features.dim() == 2 && features.size(1) == weight.size(1), "linear probe: features ", features.sizes(),
              " do not match the model's ", weight.size(1), " dimensions");
  return at::addmm(bias, features.to(at::kCPU, at::kDouble), weight.t());
}

LinearProbeResult linear_probe(const at::Tensor& train_x, const at::Tensor& train_y, const at::Tensor& val_x,
                               const at::Tensor& val_y, const at::Tensor& test_x, const at::Tensor& test_y,
                               int64_t classes, const LinearProbeOptions& options) {
  check_inputs(train_x, train_y, classes, "training");
  check_inputs(val_x, val_y, classes, "validation");
  check_inputs(test_x, test_y, classes, "test");
  if (options.steps_per_decade() < 1 || options.start_step_decades() < 1 ||
      !(options.log10_lambda_max() > options.log10_lambda_min())) {
    fail("linear probe: a search grid needs steps_per_decade >= 1, start_step_decades >= 1 and a range");
  }
  // The grid: lambda_i = 10^(min + i / steps), i in [0, last].
  const int64_t steps = options.steps_per_decade();
  const auto last = static_cast<int64_t>(
      std::llround((options.log10_lambda_max() - options.log10_lambda_min()) * static_cast<double>(steps)));
  const auto lambda_at = [&](int64_t i) {
    return std::pow(10.0, options.log10_lambda_min() + static_cast<double>(i) / static_cast<double>(steps));
  };
  LinearProbeResult result;
  std::map<int64_t, ClassificationMetrics> tried;  // grid index -> validation metrics
  const auto accuracy_at = [&](int64_t i) {
    if (auto it = tried.find(i); it != tried.end()) return it->second.acc1;
    const LogisticRegression m = LogisticRegression::fit(
        train_x, train_y, classes,
        LogisticRegressionOptions().c(1.0 / lambda_at(i)).max_iter(options.max_iter()).tolerance(options.tolerance()));
    const ClassificationMetrics v = classification_metrics(m.logits(val_x), val_y);
    result.search.push_back({lambda_at(i), v.acc1, m.iterations});
    if (options.on_point()) options.on_point()(result.search.back());
    tried[i] = v;
    return v.acc1;
  };
  // find_peak: the first candidate with the highest accuracy (strictly better replaces).
  const auto peak = [&](const std::vector<int64_t>& candidates) {
    int64_t best = candidates.front();
    double best_acc = -1;
    for (const int64_t i : candidates) {
      const double acc = accuracy_at(i);
      if (acc > best_acc) {
        best = i;
        best_acc = acc;
      }
    }
    return best;
  };
  const int64_t start = options.start_step_decades() * steps;
  std::vector<int64_t> first;
  for (int64_t i = 0; i <= last; i += start) first.push_back(i);
  if (first.back() != last) first.push_back(last);
  int64_t best = peak(first);
  for (int64_t span = start / 2; span >= 1; span /= 2) {
    best = peak({std::max<int64_t>(best - span, 0), best, std::min(best + span, last)});
  }
  result.lambda = lambda_at(best);
  result.c = 1.0 / result.lambda;
  const LogisticRegressionOptions chosen =
      LogisticRegressionOptions().c(result.c).max_iter(options.max_iter()).tolerance(options.tolerance());
  result.validation = tried.at(best);  // the search's own fit at the chosen lambda
  result.model = LogisticRegression::fit(at::cat({train_x.to(at::kDouble), val_x.to(at::kDouble)}),
                                         at::cat({train_y.to(at::kLong), val_y.to(at::kLong)}), classes, chosen);
  result.test = classification_metrics(result.model.logits(test_x), test_y);
  return result;
}

}  // namespace clip
