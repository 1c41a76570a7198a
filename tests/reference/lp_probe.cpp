// clip::linear_probe on features given as JSON, for tests/reference/test_linear_probe.py (against scikit-learn).
//   clip_lp_probe IN.json OUT.json
// IN: {"classes": K, "train_x": [[...]], "train_y": [...], "val_x", "val_y", "test_x", "test_y", "fit_c": C,
//      "tolerance": gradient tolerance}
// OUT: {"lambda", "c", "test_acc1", "search": [[lambda, val_acc1], ...], "fit": {"weight": [[...]], "bias": [...]}}
//      (fit: LogisticRegression::fit on train at fit_c, to compare coefficients)
#include <ATen/ATen.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "clip/eval/linear_probe.h"

namespace {

at::Tensor matrix(const nlohmann::json& j) {
  const auto rows = j.get<std::vector<std::vector<double>>>();
  at::Tensor t = at::empty({int64_t(rows.size()), int64_t(rows.at(0).size())}, at::kDouble);
  auto a = t.accessor<double, 2>();
  for (size_t i = 0; i < rows.size(); ++i) {
    for (size_t k = 0; k < rows[i].size(); ++k) a[int64_t(i)][int64_t(k)] = rows[i][k];
  }
  return t;
}

at::Tensor labels(const nlohmann::json& j) { return at::tensor(j.get<std::vector<int64_t>>(), at::kLong); }

nlohmann::json to_json(const at::Tensor& t) {
  const at::Tensor c = t.contiguous().to(at::kDouble);
  if (c.dim() == 1) return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t i = 0; i < c.size(0); ++i) rows.push_back(to_json(c[i]));
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: clip_lp_probe IN.json OUT.json\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  const nlohmann::json j = nlohmann::json::parse(in);
  const int64_t k = j.at("classes");
  const at::Tensor train_x = matrix(j.at("train_x")), train_y = labels(j.at("train_y"));
  const double tolerance = j.at("tolerance");
  const clip::LinearProbeResult r =
      clip::linear_probe(train_x, train_y, matrix(j.at("val_x")), labels(j.at("val_y")), matrix(j.at("test_x")),
                         labels(j.at("test_y")), k, clip::LinearProbeOptions().tolerance(tolerance));
  nlohmann::json out;
  out["lambda"] = r.lambda;
  out["c"] = r.c;
  out["test_acc1"] = r.test.acc1;
  out["search"] = nlohmann::json::array();
  for (const auto& p : r.search) out["search"].push_back({p.lambda, p.validation_acc1});
  const clip::LogisticRegression fit =
      clip::LogisticRegression::fit(train_x, train_y, k,
                                    clip::LogisticRegressionOptions().c(j.at("fit_c")).tolerance(tolerance));
  out["fit"] = {{"weight", to_json(fit.weight)}, {"bias", to_json(fit.bias)}, {"converged", fit.converged}};
  std::ofstream(argv[2]) << out.dump();
  return 0;
}
