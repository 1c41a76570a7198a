#pragma once
/// Linear probes as the CLIP paper evaluates them (Radford et al. 2021, appendix A.3): L2-regularised multinomial
/// logistic regression on frozen image features, trained with L-BFGS (at most 1,000 iterations), its strength chosen
/// on a validation split by a parametric binary search over lambda in [1e-6, 1e6] at 8 steps per decade.
///
///   clip::LinearProbeResult r = clip::linear_probe(train_x, train_y, val_x, val_y, test_x, test_y, classes);
///   std::printf("C = %g, test acc1 %.4f\n", r.c, r.test.acc1);
///
/// The objective is scikit-learn's LogisticRegression(C, solver="lbfgs") with lambda = 1 / C:
///   mean_i CE(softmax(W x_i + b), y_i) + ||W||^2 / (2 C n),   the intercept b not penalised,
/// a softmax over all classes for three or more, a single logistic vector for two (as scikit-learn). Computed in
/// float64 from zeros, so a fit is deterministic.
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "clip/zeroshot/metrics.h"

namespace clip {

/// How one logistic regression is fitted.
struct LogisticRegressionOptions {
  TORCH_ARG(double, c) = 1.0;            ///< inverse regularisation strength (scikit-learn's C; lambda = 1 / C)
  TORCH_ARG(int64_t, max_iter) = 1000;   ///< L-BFGS iterations, at most (the paper's)
  /// stop when every gradient entry is this small. Tighter than scikit-learn's default tol (1e-4), at which its
  /// optimizer and this one stop at points different enough to choose another lambda (tests/reference)
  TORCH_ARG(double, tolerance) = 1e-6;
};

/// A fitted classifier: logits = x W^T + b.
struct LogisticRegression {
  at::Tensor weight;  ///< [C, D] float64
  at::Tensor bias;    ///< [C] float64
  int64_t iterations = 0;  ///< L-BFGS iterations run
  /// the gradient reached the tolerance, or the loss and the step stopped changing, within max_iter
  bool converged = false;
  double loss = 0;         ///< the objective at the end

  /// Fits `features` [N, D] (floating point) with integer `labels` [N] in [0, classes).
  static LogisticRegression fit(const at::Tensor& features, const at::Tensor& labels, int64_t classes,
                                const LogisticRegressionOptions& options = {});
  /// [N, C] float64 logits.
  at::Tensor logits(const at::Tensor& features) const;
};

struct LinearProbePoint;

/// The search and the final fit.
struct LinearProbeOptions {
  TORCH_ARG(int64_t, max_iter) = 1000;
  TORCH_ARG(double, tolerance) = 1e-6;
  TORCH_ARG(double, log10_lambda_min) = -6;
  TORCH_ARG(double, log10_lambda_max) = 6;
  TORCH_ARG(int64_t, steps_per_decade) = 8;  ///< the search's final resolution
  TORCH_ARG(int64_t, start_step_decades) = 2;  ///< the first sweep: every 2 decades (1e-6, 1e-4, ..., 1e6)
  /// Called after each lambda is tried (progress; on the calling thread).
  TORCH_ARG(std::function<void(const LinearProbePoint&)>, on_point) = nullptr;
};

/// One lambda the search tried.
struct LinearProbePoint {
  double lambda = 0;
  double validation_acc1 = 0;
  int64_t iterations = 0;  ///< of its fit
};

struct LinearProbeResult {
  double lambda = 0, c = 0;               ///< chosen (c = 1 / lambda)
  std::vector<LinearProbePoint> search;   ///< in the order tried
  LogisticRegression model;               ///< fitted on train + validation with the chosen lambda
  ClassificationMetrics validation;       ///< of the chosen lambda's search fit (train only) on the validation split
  ClassificationMetrics test;             ///< of the final model on the test split
};

/// The search: fit on train for lambda = 10^-6, 10^-4, ..., 10^6 (indices 0, 16, ..., 96 of the 97-point grid at 8
/// per decade); then, with a span of 8, 4, 2 and 1 grid steps, fit the neighbours at +-span of the best so far and
/// keep the best of the three. Best: the highest validation acc1; ties keep the earlier of [left, best, right]
/// (CLIP_benchmark's find_peak). Then the final fit on train + validation, measured on test.
LinearProbeResult linear_probe(const at::Tensor& train_x, const at::Tensor& train_y, const at::Tensor& val_x,
                               const at::Tensor& val_y, const at::Tensor& test_x, const at::Tensor& test_y,
                               int64_t classes, const LinearProbeOptions& options = {});

}  // namespace clip
