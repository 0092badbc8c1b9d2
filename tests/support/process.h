#pragma once
// A child process for integration tests. stdout and stderr go to one log file; the destructor
// always stops and reaps the child (SIGTERM, up to 2 s grace, then SIGKILL), so a failing
// assertion never leaves a process or a zombie behind. The child also gets SIGKILL if the test
// runner dies (PR_SET_PDEATHSIG), e.g. when CTest kills a test on timeout.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ss::test {

// How the child is set up between fork() and exec().
struct ProcessOptions {
  // If non-zero, RLIMIT_NOFILE (soft and hard) is set to this in the child before exec, as
  // `ulimit -n` would, e.g. to test descriptor exhaustion. 0 keeps the parent's limit.
  uint64_t nofile_limit = 0;
};

class Process {
 public:
  // Starts argv[0] (searched in PATH if it has no '/') with stdin from /dev/null and
  // stdout+stderr appended to `log_path` (truncated first; parent folders are created). Throws
  // std::runtime_error if the program cannot be started. `label` names the process in messages.
  // Spawn from a thread that outlives the child: PR_SET_PDEATHSIG follows the spawning thread.
  // Also throws if an option in `options` cannot be applied in the child.
  Process(std::vector<std::string> argv, std::filesystem::path log_path, std::string label = {},
          ProcessOptions options = {});
  ~Process();

  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  Process(Process&&) = delete;
  Process& operator=(Process&&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& label() const { return label_; }
  const std::vector<std::string>& argv() const { return argv_; }
  const std::filesystem::path& log_path() const { return log_path_; }
  // The command line, shell-quoted, for messages.
  std::string command_line() const;

  // True while the child has not exited (reaps it if it has).
  bool running();
  // Waits up to `timeout` for the child to exit. Returns its exit status: the exit code for a
  // normal exit, 128 + signal number if a signal killed it; nullopt if it is still running.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // SIGTERM, wait up to `grace`, then SIGKILL; always reaps. Returns the exit status as above.
  // `killed` (if given) is set when SIGKILL was needed.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(2), bool* killed = nullptr);
  // Sends a signal (no-op once the child has been reaped).
  void signal(int signo);

  // Everything the child has written so far.
  std::string log_text() const;
  // Prints the log with a header to stderr once (later calls do nothing).
  void dump_log_once();
  // Asks the destructor to print the log once the child has been stopped (so the log is complete,
  // including buffered output flushed at exit). The destructor also does this by itself when the
  // Process is destroyed during stack unwinding (a REQUIRE failed or the test threw).
  void request_log_dump() { dump_requested_ = true; }

  // Calls `fn` for every Process alive in this test process (for failure reporting).
  static void for_each_live(const std::function<void(Process&)>& fn);

 private:
  std::optional<int> reap(bool block);

  std::vector<std::string> argv_;
  std::filesystem::path log_path_;
  std::string label_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  std::optional<int> status_;
  bool dumped_ = false;
  bool dump_requested_ = false;
  int uncaught_at_start_ = 0;
};

// Converts a waitpid() status into the convention above (code, or 128 + signal).
int decode_wait_status(int status);

}  // namespace ss::test
