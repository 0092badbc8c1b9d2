#include "tests/support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace ss::test {
namespace {

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

std::vector<Process*>& registry() {
  static std::vector<Process*> live;
  return live;
}

std::string find_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::stringstream ss(dirs);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  throw std::runtime_error("cannot find executable '" + name + "' in PATH");
}

[[noreturn]] void throw_errno(const std::string& what, int err) {
  throw std::system_error(err, std::generic_category(), what);
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-_./:=,@+") == std::string::npos) {
    return s;
  }
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) {
    ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    return static_cast<int>(fd);
  }
#else
  (void)pid;
#endif
  return -1;
}

}  // namespace

int decode_wait_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

Process::Process(std::vector<std::string> argv, std::filesystem::path log_path, std::string label,
                 ProcessOptions options)
    : argv_(std::move(argv)),
      log_path_(std::move(log_path)),
      label_(std::move(label)),
      uncaught_at_start_(std::uncaught_exceptions()) {
  if (argv_.empty()) throw std::invalid_argument("Process: empty argv");
  if (label_.empty()) label_ = std::filesystem::path(argv_[0]).filename().string();
  const std::string exe = find_executable(argv_[0]);

  if (log_path_.has_parent_path()) std::filesystem::create_directories(log_path_.parent_path());
  const int log_fd =
      ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw_errno("open " + log_path_.string(), errno);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    const int err = errno;
    ::close(log_fd);
    throw_errno("open /dev/null", err);
  }
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(log_fd);
    ::close(null_fd);
    throw_errno("pipe2", err);
  }

  // Everything the child needs is prepared before fork(): after it only async-signal-safe calls.
  std::vector<char*> cargv;
  cargv.reserve(argv_.size() + 1);
  for (auto& a : argv_) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  const pid_t parent = ::getpid();
  // What the child reports through err_pipe when it cannot exec: {stage, errno}.
  enum : int { kStageExec = 0, kStageRlimit = 1 };

  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT}) ::signal(sig, SIG_DFL);
    ::setpgid(0, 0);  // own group: a Ctrl-C in the terminal goes to the runner, which kills us
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    if (options.nofile_limit != 0) {
      const rlimit lim{static_cast<rlim_t>(options.nofile_limit),
                       static_cast<rlim_t>(options.nofile_limit)};
      if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        const int report[2] = {kStageRlimit, errno};
        ssize_t ignored = ::write(err_pipe[1], report, sizeof report);
        (void)ignored;
        ::_exit(127);
      }
    }
#ifdef SYS_close_range
    ::syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
#endif
    ::execv(exe.c_str(), cargv.data());
    const int report[2] = {kStageExec, errno};
    ssize_t ignored = ::write(err_pipe[1], report, sizeof report);
    (void)ignored;
    ::_exit(127);
  }
  const int fork_err = errno;
  ::close(err_pipe[1]);
  ::close(log_fd);
  ::close(null_fd);
  if (pid < 0) {
    ::close(err_pipe[0]);
    throw_errno("fork", fork_err);
  }
  int report[2] = {kStageExec, 0};
  ssize_t n;
  do {
    n = ::read(err_pipe[0], report, sizeof report);
  } while (n < 0 && errno == EINTR);
  ::close(err_pipe[0]);
  if (n > 0) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (report[0] == kStageRlimit) {
      throw_errno(
          "setrlimit(RLIMIT_NOFILE, " + std::to_string(options.nofile_limit) + ") for " + exe,
          report[1]);
    }
    throw_errno("exec " + exe, report[1]);
  }
  pid_ = pid;
  pidfd_ = open_pidfd(pid);
  std::lock_guard lock(registry_mutex());
  registry().push_back(this);
}

Process::~Process() {
  const bool unwinding = std::uncaught_exceptions() > uncaught_at_start_;
  {
    std::lock_guard lock(registry_mutex());
    auto& live = registry();
    live.erase(std::remove(live.begin(), live.end(), this), live.end());
  }
  try {
    if (!status_) stop();
    if (unwinding || dump_requested_) dump_log_once();
  } catch (...) {
    // Destructors must not throw; stop() only throws on impossible waitpid errors.
  }
  if (pidfd_ >= 0) ::close(pidfd_);
}

std::string Process::command_line() const {
  std::string out;
  for (const auto& a : argv_) {
    if (!out.empty()) out += ' ';
    out += shell_quote(a);
  }
  return out;
}

std::optional<int> Process::reap(bool block) {
  if (status_) return status_;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (r == pid_) {
      status_ = decode_wait_status(status);
      return status_;
    }
    if (r == 0) return std::nullopt;
    if (errno == EINTR) continue;
    throw_errno("waitpid", errno);
  }
}

bool Process::running() {
  return !reap(false).has_value();
}

std::optional<int> Process::wait_exit(std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (auto st = reap(false)) return st;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    if (pidfd_ >= 0) {
      pollfd p{pidfd_, POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(left.count()) + 1);
    } else {
      // No pidfd (old kernel): there is no readiness notification to wait on, so poll waitpid.
      std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(5)));
    }
  }
}

void Process::signal(int signo) {
  if (status_) return;
  if (reap(false)) return;
  ::kill(pid_, signo);
}

int Process::stop(std::chrono::milliseconds grace, bool* killed) {
  if (killed != nullptr) *killed = false;
  if (status_) return *status_;
  signal(SIGTERM);
  if (auto st = wait_exit(grace)) return *st;
  if (killed != nullptr) *killed = true;
  ::kill(pid_, SIGKILL);
  return *reap(true);
}

std::string Process::log_text() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Process::dump_log_once() {
  if (dumped_) return;
  dumped_ = true;
  constexpr size_t kMaxDump = 64 * 1024;
  std::string text = log_text();
  std::string note;
  if (text.size() > kMaxDump) {
    note = " (last " + std::to_string(kMaxDump) + " of " + std::to_string(text.size()) + " bytes)";
    text = text.substr(text.size() - kMaxDump);
  }
  std::string state = status_ ? "exit status " + std::to_string(*status_) : "running";
  std::fprintf(stderr, "----- log of %s [pid %d, %s]: %s%s\n$ %s\n%s%s----- end of %s log\n",
               label_.c_str(), static_cast<int>(pid_), state.c_str(), log_path_.c_str(),
               note.c_str(), command_line().c_str(), text.c_str(),
               (text.empty() || text.back() == '\n') ? "" : "\n", label_.c_str());
  std::fflush(stderr);
}

void Process::for_each_live(const std::function<void(Process&)>& fn) {
  std::vector<Process*> copy;
  {
    std::lock_guard lock(registry_mutex());
    copy = registry();
  }
  for (Process* p : copy) fn(*p);
}

}  // namespace ss::test
