#pragma once
/// Who this process is in a multi-process job, and starting local workers.
///
///   clip::DistEnv env = clip::detect_dist_env();   // torchrun's or Slurm's variables, else a single process
///   if (env.world_size > 1) ...
///
/// torchrun (--no-python) sets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT; Slurm's
/// srun sets SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE and SLURM_JOB_NODELIST (the
/// rendezvous host is MASTER_ADDR when set, else the node list's first host).
#include <string>
#include <vector>

namespace clip {

/// The process's place in the job.
struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string launcher = "single";  ///< "torchrun", "slurm" or "single"
  /// torchrun's agent already serves the store at MASTER_ADDR:MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE=True):
  /// every rank is a client and the keys live under store_prefix ("/worker/attempt_<restart>"), as PyTorch's own
  /// ranks do. Otherwise rank 0 serves the store.
  bool agent_store = false;
  std::string store_prefix;
};

/// Reads the launcher's variables; throws clip::Error naming a variable that is malformed or inconsistent.
DistEnv detect_dist_env();

/// The first host of a Slurm node list: "gpu[003-005,007],cpu01" -> "gpu003".
std::string first_slurm_host(const std::string& nodelist);

/// A free TCP port on this machine (for a single-node job).
int free_tcp_port();

/// The exit status of a worker that stopped early on request (SIGTERM/SIGUSR1) after writing a checkpoint:
/// sysexits.h's EX_TEMPFAIL, "try again later". Schedulers read it as a failure (torchrun restarts the group under
/// --max-restarts, Slurm requeues with --requeue); a wrapper can tell it from 0 (done) and 1 (an error).
constexpr int kExitStoppedToResume = 75;

/// Runs `nproc` copies of `argv[0]` with `args` as one single-node job (RANK, WORLD_SIZE, LOCAL_RANK, ...
/// set for each), forwards SIGINT, SIGTERM and SIGUSR1 to them, and waits. When one fails, the others are
/// stopped (SIGTERM); a worker exiting kExitStoppedToResume has not failed, and the others finish their own stop.
/// Returns the job's exit code: 0 when every worker exited 0, the first failing worker's code when one failed,
/// else kExitStoppedToResume when a worker stopped early.
int run_local_workers(int nproc, const std::string& program, const std::vector<std::string>& args);

}  // namespace clip
