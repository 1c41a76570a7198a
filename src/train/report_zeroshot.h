#pragma once
// The training report's zero-shot section, from zeroshot_details.json (MetricsFile writes it): per-class accuracy
// sorted, the confusion matrix as a heatmap, the most confused pairs, and example test images with their top-3
// predictions. Internal.
//
//   html += clip::report::zeroshot_section("runs/x/zeroshot_details.json");
#include <cstdint>
#include <string>

namespace clip::report {

/// The section's HTML; "" when the file does not exist. A file that cannot be read or does not hold what
/// MetricsFile writes gives a paragraph saying so (a report is never lost to it), as does an evaluation after
/// `last_step` (of steps a resume went back on: the run's next evaluation replaces it).
std::string zeroshot_section(const std::string& details_path, int64_t last_step);

}  // namespace clip::report
