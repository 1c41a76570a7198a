// clip_train: contrastive training from a JSON config and flags (every key is a flag).
#include <cstdio>

#include <unistd.h>

#include <cstdlib>

#include "clip/dist/launch.h"
#include "clip/train/train_config.h"
#include "clip/train/trainer.h"
#include "clip/util/error.h"
#include "train_flags.h"
#include "tool_main.h"

int main(int argc, char** argv) {
  return clip::tools::run_tool("clip_train", [&] {
    const clip::TrainConfig config = clip::tools::parse_train_args(argc, argv);
    // --nproc-per-node N: this process only starts and watches N workers (which see RANK set and train).
    if (config.distributed.nproc_per_node > 1 && std::getenv("RANK") == nullptr) {
      return clip::run_local_workers(config.distributed.nproc_per_node, "/proc/self/exe",
                                     std::vector<std::string>(argv + 1, argv + argc));
    }
    const clip::TrainResult r = clip::train(config);
    if (clip::detect_dist_env().rank != 0) return 0;
    std::printf("trained %lld steps, last loss %.4f, %lld non-finite steps skipped\n", static_cast<long long>(r.steps),
                r.last_loss, static_cast<long long>(r.nonfinite_skipped));
    if (r.zeroshot_top1 >= 0) std::printf("zero-shot top-1: %.2f%%\n", 100 * r.zeroshot_top1);
    std::printf("checkpoint: %s\nmetrics: %s\n", r.last_checkpoint.c_str(), r.metrics.c_str());
    if (!r.model.empty()) std::printf("model: %s\n", r.model.c_str());
    if (!r.report.empty()) std::printf("report: %s\n", r.report.c_str());
    return 0;
  });
}
