#include "clip/dist/launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "clip/util/error.h"
#include "clip/util/log.h"
#include "util/process.h"

namespace clip {
namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

int env_int(const char* name, int fallback) {
  const char* v = env(name);
  if (v == nullptr) return fallback;
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || errno != 0 || n < 0 || n > 1'000'000) {
    fail("environment variable ", name, "=", v, " is not a non-negative integer");
  }
  return static_cast<int>(n);
}

// SLURM_NTASKS_PER_NODE may read "4" or "4(x2)"; the first number is the tasks on this node.
int leading_int(const char* v, int fallback) {
  if (v == nullptr) return fallback;
  const int n = std::atoi(v);
  return n > 0 ? n : fallback;
}

std::vector<pid_t>* g_children = nullptr;

void forward_signal(int sig) {
  if (g_children == nullptr) return;
  for (pid_t pid : *g_children) {
    if (pid > 0) ::kill(pid, sig);
  }
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // The first entry ends at a comma outside brackets.
  std::string first;
  int depth = 0;
  for (char c : nodelist) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (c == ',' && depth == 0) break;
    first += c;
  }
  const auto open = first.find('[');
  if (open == std::string::npos) return first;
  // "prefix[003-005,007]suffix" -> prefix + the first number of the range (zero padding kept).
  const auto close = first.find(']', open);
  if (close == std::string::npos) fail("SLURM_JOB_NODELIST '", nodelist, "': unbalanced brackets");
  const std::string ranges = first.substr(open + 1, close - open - 1);
  const std::string head = ranges.substr(0, ranges.find_first_of(",-"));
  return first.substr(0, open) + head + first.substr(close + 1);
}

DistEnv detect_dist_env() {
  DistEnv e;
  if (env("RANK") != nullptr || env("WORLD_SIZE") != nullptr) {
    e.launcher = "torchrun";
    e.rank = env_int("RANK", 0);
    e.world_size = env_int("WORLD_SIZE", 1);
    e.local_rank = env_int("LOCAL_RANK", 0);
    e.local_world_size = env_int("LOCAL_WORLD_SIZE", e.world_size);
  } else if (env("SLURM_PROCID") != nullptr && env_int("SLURM_NTASKS", 1) > 1) {
    e.launcher = "slurm";
    e.rank = env_int("SLURM_PROCID", 0);
    e.world_size = env_int("SLURM_NTASKS", 1);
    e.local_rank = env_int("SLURM_LOCALID", 0);
    e.local_world_size = leading_int(env("SLURM_NTASKS_PER_NODE"), 1);
    if (env("SLURM_JOB_NODELIST") != nullptr && env("MASTER_ADDR") == nullptr) {
      e.master_addr = first_slurm_host(env("SLURM_JOB_NODELIST"));
    }
  }
  if (e.launcher == "torchrun" && env("TORCHELASTIC_USE_AGENT_STORE") != nullptr &&
      std::string(env("TORCHELASTIC_USE_AGENT_STORE")) == "True") {
    e.agent_store = true;
    const char* restart = env("TORCHELASTIC_RESTART_COUNT");
    e.store_prefix = std::string("/worker/attempt_") + (restart != nullptr ? restart : "0");
  }
  if (const char* addr = env("MASTER_ADDR")) e.master_addr = addr;
  e.master_port = env_int("MASTER_PORT", e.master_port);
  if (e.world_size < 1) fail("world size ", e.world_size, " must be at least 1 (", e.launcher, ")");
  if (e.rank >= e.world_size) fail("rank ", e.rank, " is not below the world size ", e.world_size, " (", e.launcher, ")");
  if (e.local_rank >= std::max(e.local_world_size, 1)) {
    fail("local rank ", e.local_rank, " is not below the local world size ", e.local_world_size, " (", e.launcher, ")");
  }
  if (e.master_port <= 0 || e.master_port > 65535) fail("MASTER_PORT ", e.master_port, " is not a TCP port");
  return e;
}

int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("cannot open a socket to find a free port (", std::strerror(errno), ")");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    fail("cannot find a free TCP port (", std::strerror(errno), ")");
  }
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

int run_local_workers(int nproc, const std::string& program, const std::vector<std::string>& args) {
  if (nproc < 1) fail("--nproc-per-node ", nproc, " must be at least 1");
  const int port = free_tcp_port();
  // The forwarded signals wait (blocked) until the handlers are in place, here and in each worker: the mask
  // survives exec, and clip_train unblocks them once its own handlers are installed.
  sigset_t forwarded;
  ::sigemptyset(&forwarded);
  for (int sig : {SIGINT, SIGTERM, SIGUSR1}) ::sigaddset(&forwarded, sig);
  ::pthread_sigmask(SIG_BLOCK, &forwarded, nullptr);
  // Workers that are this program again run under its own argv[0], so their command line (recorded in
  // metrics.jsonl) is the one that was typed, not /proc/self/exe.
  const std::vector<std::string> own = program == "/proc/self/exe" ? process_arguments() : std::vector<std::string>();
  const std::string name = own.empty() ? program : own.front();
  std::vector<pid_t> children;
  for (int rank = 0; rank < nproc; ++rank) {
    const pid_t pid = ::fork();
    if (pid < 0) fail("cannot start worker ", rank, " (", std::strerror(errno), ")");
    if (pid == 0) {
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(name.c_str()));
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(program.c_str(), argv.data());
      std::fprintf(stderr, "worker %d: cannot run %s (%s)\n", rank, program.c_str(), std::strerror(errno));
      ::_exit(127);
    }
    children.push_back(pid);
  }
  g_children = &children;
  struct sigaction action {};
  action.sa_handler = forward_signal;
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  ::sigaction(SIGUSR1, &action, nullptr);
  ::pthread_sigmask(SIG_UNBLOCK, &forwarded, nullptr);  // also a mask inherited from our parent

  int result = 0;
  bool stopped_early = false;
  size_t running = children.size();
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    --running;
    const int rank = static_cast<int>(std::find(children.begin(), children.end(), pid) - children.begin());
    if (rank < static_cast<int>(children.size())) children[size_t(rank)] = -pid;  // reaped: never signalled again
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code == kExitStoppedToResume) {
      stopped_early = true;
      continue;
    }
    if (code != 0 && result == 0) {
      result = code;
      log_warning("worker ", rank, " (rank ", rank, ") ", WIFEXITED(status) ? "exited with " : "was killed by signal ",
                  WIFEXITED(status) ? code : WTERMSIG(status), "; stopping the other workers");
      for (pid_t other : children) {
        // SIGKILL: no stop can be agreed with a dead rank, and a survivor blocked in a collective or in the
        // rendezvous would otherwise wait out --dist-timeout. Checkpoints are written atomically.
        if (other != pid && other > 0) ::kill(other, SIGKILL);
      }
    }
  }
  g_children = nullptr;
  return result == 0 && stopped_early ? kExitStoppedToResume : result;
}

}  // namespace clip
