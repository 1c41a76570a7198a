// clip_train: contrastive training from a JSON config and flags (every key is a flag).
#include <cstdio>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "clip/dist/launch.h"
#include "clip/train/train_config.h"
#include "clip/train/trainer.h"
#include "clip/util/error.h"
#include "train_flags.h"
#include "tool_main.h"

namespace {

void on_stop_signal(int signal) { clip::request_training_stop(signal); }

// Slurm: rank 0 puts the job back in the queue (the allocation ends after this process exits).
void requeue_slurm_job() {
  const char* job = std::getenv("SLURM_JOB_ID");
  if (job == nullptr || *job == '\0') {
    std::fprintf(stderr, "clip_train: --requeue-on-preempt: SLURM_JOB_ID is not set; not requeued\n");
    return;
  }
  char* args[] = {const_cast<char*>("scontrol"), const_cast<char*>("requeue"), const_cast<char*>(job), nullptr};
  pid_t pid = -1;
  if (const int e = ::posix_spawnp(&pid, "scontrol", nullptr, nullptr, args, environ); e != 0) {
    std::fprintf(stderr, "clip_train: cannot run scontrol (%s); job %s not requeued\n", std::strerror(e), job);
    return;
  }
  int status = 0;
  pid_t waited;
  do {
    waited = ::waitpid(pid, &status, 0);  // scontrol requeue signals this job: the wait may be interrupted
  } while (waited < 0 && errno == EINTR);
  if (waited < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "clip_train: 'scontrol requeue %s' failed; requeue the job by hand\n", job);
    return;
  }
  std::printf("clip_train: requeued Slurm job %s\n", job);
}

}  // namespace

int main(int argc, char** argv) {
  return clip::tools::run_tool("clip_train", [&] {
    const clip::TrainConfig config = clip::tools::parse_train_args(argc, argv);
    // --nproc-per-node N: this process only starts and watches N workers (which see RANK set and train).
    if (config.distributed.nproc_per_node > 1 && std::getenv("RANK") == nullptr) {
      return clip::run_local_workers(config.distributed.nproc_per_node, "/proc/self/exe",
                                     std::vector<std::string>(argv + 1, argv + argc));
    }
    // SIGTERM (Slurm before its kill, torchrun passing its own on) and SIGUSR1 (sbatch --signal=USR1@120): finish
    // the step, checkpoint, exit clip::kExitStoppedToResume (75).
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    action.sa_flags = SA_RESTART;
    ::sigemptyset(&action.sa_mask);
    ::sigaction(SIGTERM, &action, nullptr);
    ::sigaction(SIGUSR1, &action, nullptr);
    sigset_t stop_signals;  // a blocked mask is inherited through exec: a parent's could hide them
    ::sigemptyset(&stop_signals);
    ::sigaddset(&stop_signals, SIGTERM);
    ::sigaddset(&stop_signals, SIGUSR1);
    ::pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
    const clip::TrainResult r = clip::train(config);
    const bool main_rank = clip::detect_dist_env().rank == 0;
    if (r.stop_signal != 0) {
      if (main_rank && config.checkpoint.requeue_on_preempt) requeue_slurm_job();
      return clip::kExitStoppedToResume;
    }
    if (!main_rank) return 0;
    std::printf("trained %lld steps, last loss %.4f, %lld non-finite steps skipped\n", static_cast<long long>(r.steps),
                r.last_loss, static_cast<long long>(r.nonfinite_skipped));
    if (r.zeroshot_top1 >= 0) std::printf("zero-shot top-1: %.2f%%\n", 100 * r.zeroshot_top1);
    std::printf("checkpoint: %s\nmetrics: %s\n", r.last_checkpoint.c_str(), r.metrics.c_str());
    if (!r.model.empty()) std::printf("model: %s\n", r.model.c_str());
    if (!r.report.empty()) std::printf("report: %s\n", r.report.c_str());
    return 0;
  });
}
