// SIP003 plugin processes (shadowsocks-org's SIP003, "Plugin"; see relay/plugin.h): the specs'
// rewrite that puts a plugin between our TCP and the network, and the supervisor that spawns each
// plugin with the SIP003 environment, logs its output, restarts it with back-off when it dies and
// stops it (SIGTERM, then SIGKILL) when we exit; at run time it also starts the plugins a reload
// or refresh adds and retires those it removes once their connections have ended.

#include "relay/plugin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <uv.h>

#include "relay/log.h"

namespace ss {
namespace {

constexpr uint64_t kFirstBackoffMs = 1'000;
constexpr uint64_t kMaxBackoffMs = 30'000;
constexpr uint64_t kStableRunMs = 30'000;  // a run this long resets the back-off
constexpr uint64_t kKillGraceMs = 3'000;   // SIGTERM, then SIGKILL after this
constexpr size_t kMaxLogLine = 1'000;
constexpr uint64_t kDrainPollMs = 500;     // a retired plugin's connections: checked this often
constexpr uint64_t kRunTimeStartMs = 100;  // a listener's new plugin: after our TCP listener closed
constexpr uint64_t kReadyPollMs = 100;     // when_listening's checks
constexpr uint64_t kReadyWaitMs = 5'000;   // ... and how long it waits at most
constexpr const char* kLoopback = "127.0.0.1";

// A TCP port on 127.0.0.1 that nothing listens on now (bound to port 0, then released, as
// shadowsocks-libev does), not one of `taken`. 0 if none.
uint16_t free_loopback_port(std::set<uint16_t>& taken) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port = ntohs(a.sin_port);
    }
    close(fd);
    if (port == 0) return 0;
    if (taken.insert(port).second) return port;
  }
  return 0;
}

// The command that starts `program`: itself, or through util-linux's setpriv with a parent-death
// signal, so that the plugin gets SIGTERM even if we are killed with SIGKILL (uv_spawn has no
// hook to call prctl(PR_SET_PDEATHSIG) in the child itself). The signal follows the thread that
// spawned it: the main thread, which lives as long as the process.
std::vector<std::string> command_line(const std::string& setpriv, const std::string& program,
                                      const std::vector<std::string>& args) {
  std::vector<std::string> cmd;
  if (!setpriv.empty()) cmd = {setpriv, "--pdeathsig", "TERM", "--"};
  cmd.push_back(program);
  cmd.insert(cmd.end(), args.begin(), args.end());
  return cmd;
}

// Our PATH, where plugins are looked for (execvp's default if unset).
std::string search_path() {
  const char* path = std::getenv("PATH");
  return path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
}

std::string host_port(const std::string& host, uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// /proc/net/tcp (this network namespace's IPv4 TCP sockets), or empty if it cannot be read.
std::string tcp_table() {
  std::ifstream f("/proc/net/tcp");
  std::ostringstream out;
  out << f.rdbuf();
  return out.str();
}

// Each socket of /proc/net/tcp's text on 127.0.0.1 with `port` at either end: its state (the
// kernel's TCP_* numbers: 0x0A listening, 0x06 TIME_WAIT, 0x07 CLOSE), and whether `port` is its
// local end.
template <typename F>
void each_loopback_socket(const std::string& table, uint16_t port, F&& f) {
  std::istringstream in(table);
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    unsigned la = 0, lp = 0, ra = 0, rp = 0, st = 0;
    if (std::sscanf(line.c_str(), " %*u: %8X:%4X %8X:%4X %2X", &la, &lp, &ra, &rp, &st) != 5)
      continue;
    // The addresses are in network order, printed as a host-order number: 127.0.0.1 on a little-
    // endian machine is 0100007F.
    const uint32_t loopback = htonl(INADDR_LOOPBACK);
    const bool local = lp == port && la == loopback;
    const bool remote = rp == port && ra == loopback;
    if (local || remote) f(st, local);
  }
}

}  // namespace

bool loopback_port_busy(const std::string& table, uint16_t port) {
  bool busy = false;
  each_loopback_socket(table, port, [&](unsigned st, bool) {
    if (st != 0x0A && st != 0x06 && st != 0x07) busy = true;
  });
  return busy;
}

bool loopback_port_listening(const std::string& table, uint16_t port) {
  bool listening = false;
  each_loopback_socket(table, port, [&](unsigned st, bool local) {
    if (st == 0x0A && local) listening = true;
  });
  return listening;
}

bool same_plugin(const PluginLaunch& a, const PluginLaunch& b) {
  return a.spec.name == b.spec.name && a.spec.opts == b.spec.opts && a.spec.args == b.spec.args &&
         a.remote_host == b.remote_host && a.remote_port == b.remote_port &&
         a.local_host == b.local_host && a.what == b.what && a.binds_remote == b.binds_remote;
}

std::string find_program(const std::string& name, const std::string& path) {
  auto runnable = [](const std::string& f) {
    struct stat st {};
    return stat(f.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(f.c_str(), X_OK) == 0;
  };
  if (name.empty()) return {};
  if (name.find('/') != std::string::npos) return runnable(name) ? name : std::string();
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (dir.empty()) dir = ".";
    const std::string f = dir + "/" + name;
    if (runnable(f)) return f;
    start = end + 1;
  }
  return {};
}

std::vector<PluginLaunch> arrange_plugins(Specs& specs, std::string* error,
                                          const std::vector<PluginLaunch>& running) {
  std::vector<PluginLaunch> out;
  std::set<uint16_t> taken;
  for (const PluginLaunch& r : running) taken.insert(r.local_port);
  auto port_or_fail = [&](PluginLaunch& l) {
    for (const PluginLaunch& r : running) {
      if (same_plugin(r, l)) {
        l.local_port = r.local_port;
        return true;
      }
    }
    l.local_port = free_loopback_port(taken);
    if (l.local_port == 0 && error) *error = "plugin: no free TCP port on 127.0.0.1 for the plugin";
    return l.local_port != 0;
  };
  for (ServerSpec& s : specs.servers) {
    if (s.plugin.empty()) continue;
    if (specs.servers.size() > 1 && !specs.balancer.probe_target) {
      LOG_WARN(
          "balancer: server %s has a plugin: the default probe (a TCP handshake) reaches only "
          "the plugin; set balancer.probe_target so probes reach the server",
          host_port(s.host, s.port).c_str());
    }
    PluginLaunch l{s.plugin, s.host, s.port, kLoopback, 0, "server " + host_port(s.host, s.port)};
    if (!port_or_fail(l)) return {};
    s.tcp_via = make_address(kLoopback, l.local_port);
    out.push_back(std::move(l));
  }
  std::vector<ListenerSpec> udp_only;
  for (ListenerSpec& spec : specs.listeners) {
    if (spec.plugin.empty() || spec.protocol != ListenerSpec::Protocol::Shadowsocks) continue;
    if (!spec.tcp) continue;  // UDP only: nothing for the plugin to carry
    PluginLaunch l{spec.plugin, spec.address,
                   spec.port,   kLoopback,
                   0,           "listener " + host_port(spec.address, spec.port)};
    l.binds_remote = true;
    if (!port_or_fail(l)) return {};
    if (spec.udp) {
      ListenerSpec u = spec;
      u.tcp = false;
      u.plugin = {};
      udp_only.push_back(std::move(u));
    }
    spec.public_port = spec.port;
    spec.address = kLoopback;
    spec.port = l.local_port;
    spec.udp = false;
    spec.plugin = {};
    out.push_back(std::move(l));
  }
  for (ListenerSpec& u : udp_only) specs.listeners.push_back(std::move(u));
  return out;
}

std::vector<std::string> plugin_environment(const PluginLaunch& launch,
                                            const std::vector<std::string>& base) {
  static constexpr std::string_view kOurs[] = {
      "SS_REMOTE_HOST=", "SS_REMOTE_PORT=", "SS_LOCAL_HOST=", "SS_LOCAL_PORT=",
      "SS_PLUGIN_OPTIONS="};
  std::vector<std::string> env;
  for (const std::string& e : base) {
    const bool ours = std::any_of(std::begin(kOurs), std::end(kOurs),
                                  [&](std::string_view k) { return e.rfind(k, 0) == 0; });
    if (!ours) env.push_back(e);
  }
  env.push_back("SS_REMOTE_HOST=" + launch.remote_host);
  env.push_back("SS_REMOTE_PORT=" + std::to_string(launch.remote_port));
  env.push_back("SS_LOCAL_HOST=" + launch.local_host);
  env.push_back("SS_LOCAL_PORT=" + std::to_string(launch.local_port));
  if (!launch.spec.opts.empty()) env.push_back("SS_PLUGIN_OPTIONS=" + launch.spec.opts);
  return env;
}

// One running child: its process handle and the socket its stdout and stderr write to. Freed
// once both handles are closed.
struct PluginSupervisor::Child {
  Process* owner = nullptr;
  uv_process_t proc{};
  uv_pipe_t out{};
  int open_handles = 0;
  bool out_open = false;
  bool proc_open = false;
  std::string line;
  char buf[4096];

  void close_out() {
    if (!out_open) return;
    out_open = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&out), on_closed);
  }
  void close_proc() {
    if (!proc_open) return;
    proc_open = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&proc), on_closed);
  }
  static void on_closed(uv_handle_t* h) {
    auto* c = static_cast<Child*>(h->data);
    if (--c->open_handles == 0) delete c;
  }
  void flush_line(const char* name);
  void take(const char* data, size_t n);
  // What the exited child wrote last (its error, often) is in the socket already: read it now,
  // before the socket is closed, rather than lose it to the order of libuv's callbacks.
  void drain() {
    if (!out_open) return;
    uv_os_fd_t fd;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(&out), &fd) != 0) return;
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) take(buf, static_cast<size_t>(n));
    flush_line(owner_name());
  }
  const char* owner_name() const;
};

// One configured plugin: its launch, its current child, and its restart timer.
struct PluginSupervisor::Process {
  PluginSupervisor* sup = nullptr;
  PluginLaunch launch;
  std::string program;  // found on PATH at start
  uv_timer_t restart{};
  bool timer_open = false;
  Child* child = nullptr;  // the running one, if any
  // Run time: added, its first spawn not yet scheduled (a retired plugin holds its public port).
  bool pending = false;
  // Retired (retire_except): no restart; SIGTERM once its loopback port has no connection left
  // (polled by `drain`), SIGKILL kKillGraceMs later; freed once reaped and its timers closed.
  bool retiring = false;
  bool term_sent = false;
  bool kill_sent = false;
  uint64_t term_ms = 0;
  uv_timer_t drain{};
  bool drain_open = false;
  int open_timers = 0;
  uint64_t backoff_ms = kFirstBackoffMs;
  uint64_t started_ms = 0;
  WarnLimiter exit_warn{60'000};

  // Spawns a child. 0 or a libuv error.
  int spawn();
  static void on_exit(uv_process_t* p, int64_t status, int term_signal);
  static void on_restart(uv_timer_t* t);
  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* b);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* b);
  void schedule_restart();
  void init_timer(uv_timer_t& t);
  static void on_timer_closed(uv_handle_t* h);
  static void on_drain(uv_timer_t* t);
  void retire();
  void finish();  // retired and reaped: close the timers
};

struct PluginSupervisor::ReadyWait {
  uv_timer_t timer;
  PluginSupervisor* sup;
  std::vector<uint16_t> ports;
  std::function<void()> ready;
  uint64_t since_ms;
};

struct PluginSupervisor::KillTimer {
  uv_timer_t timer;
  PluginSupervisor* sup;
};

const char* PluginSupervisor::Child::owner_name() const {
  return owner->launch.spec.name.c_str();
}

void PluginSupervisor::Child::take(const char* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const char ch = data[i];
    if (ch == '\n' || ch == '\r') {
      flush_line(owner_name());
    } else if (line.empty() && (ch == ' ' || ch == '\t')) {
      // Leading blanks dropped.
    } else if (line.size() < kMaxLogLine) {
      line += (static_cast<unsigned char>(ch) < 0x20 && ch != '\t') ? '?' : ch;
    }
  }
}

void PluginSupervisor::Child::flush_line(const char* name) {
  if (line.empty()) return;
  LOG_NOTICE("plugin %s: %s", name, line.c_str());
  line.clear();
}

// Does a retired plugin other than `p` still hold the public port `p`'s would bind?
bool port_held(const std::vector<std::unique_ptr<PluginSupervisor::Process>>& all,
               const PluginSupervisor::Process& p) {
  if (!p.launch.binds_remote) return false;
  return std::any_of(all.begin(), all.end(), [&](const auto& q) {
    return q.get() != &p && q->retiring && q->launch.binds_remote &&
           q->launch.remote_port == p.launch.remote_port &&
           q->launch.remote_host == p.launch.remote_host;
  });
}

int PluginSupervisor::Process::spawn() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return uv_translate_sys_error(errno);

  std::vector<std::string> base;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) base.emplace_back(*e);
  const std::vector<std::string> env_strings = plugin_environment(launch, base);
  std::vector<char*> env;
  for (const std::string& e : env_strings) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  const std::vector<std::string> cmd = command_line(sup->setpriv_, program, launch.spec.args);
  std::vector<char*> args;
  for (const std::string& a : cmd) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = fds[1];
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = fds[1];
  uv_process_options_t o{};
  o.exit_cb = on_exit;
  o.file = cmd.front().c_str();
  o.args = args.data();
  o.env = env.data();
  o.stdio_count = 3;
  o.stdio = stdio;

  auto* c = new Child;
  c->owner = this;
  c->proc.data = c;
  c->out.data = c;
  const int r = uv_spawn(sup->loop_, &c->proc, &o);
  close(fds[1]);
  ++c->open_handles;
  c->proc_open = true;
  if (r != 0) {
    close(fds[0]);
    c->close_proc();  // libuv wants the handle closed even when the spawn failed
    return r;
  }
  uv_pipe_init(sup->loop_, &c->out, 0);
  ++c->open_handles;
  c->out_open = true;
  if (uv_pipe_open(&c->out, fds[0]) != 0 ||
      uv_read_start(reinterpret_cast<uv_stream_t*>(&c->out), on_alloc, on_read) != 0) {
    c->close_out();  // its output is lost, the plugin still runs
  }
  child = c;
  started_ms = monotonic_ms();
  LOG_NOTICE("plugin %s (pid %d) for %s: SS_REMOTE %s, SS_LOCAL %s", launch.spec.name.c_str(),
             c->proc.pid, launch.what.c_str(),
             host_port(launch.remote_host, launch.remote_port).c_str(),
             host_port(launch.local_host, launch.local_port).c_str());
  return 0;
}

void PluginSupervisor::Process::on_alloc(uv_handle_t* h, size_t, uv_buf_t* b) {
  auto* c = static_cast<Child*>(h->data);
  *b = uv_buf_init(c->buf, sizeof c->buf);
}

void PluginSupervisor::Process::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
  auto* c = static_cast<Child*>(s->data);
  if (n < 0) {
    c->flush_line(c->owner_name());
    c->close_out();
    return;
  }
  c->take(b->base, static_cast<size_t>(n));
}

void PluginSupervisor::Process::on_exit(uv_process_t* p, int64_t status, int term_signal) {
  auto* c = static_cast<Child*>(p->data);
  Process* self = c->owner;
  const int pid = p->pid;
  c->close_proc();
  c->drain();
  c->close_out();
  self->child = nullptr;
  if (self->sup->stopping_) {
    LOG_INFO("plugin %s (pid %d) stopped", self->launch.spec.name.c_str(), pid);
    self->sup->stop();  // closes the kill timer once no child is left
    return;
  }
  if (self->retiring) {
    LOG_NOTICE("plugin %s (pid %d) for %s: retired and stopped", self->launch.spec.name.c_str(),
               pid, self->launch.what.c_str());
    self->finish();
    return;
  }
  const uint64_t ran = monotonic_ms() - self->started_ms;
  if (ran >= kStableRunMs) self->backoff_ms = kFirstBackoffMs;
  if (const uint64_t n = self->exit_warn.hit()) {
    const std::string how = term_signal != 0 ? "was killed by signal " + std::to_string(term_signal)
                                             : "exited with status " + std::to_string(status);
    LOG_WARN(
        "plugin %s (pid %d) for %s %s; restarting it in %llu ms (%llu exit%s in the last "
        "minute)",
        self->launch.spec.name.c_str(), pid, self->launch.what.c_str(), how.c_str(),
        static_cast<unsigned long long>(self->backoff_ms), static_cast<unsigned long long>(n),
        n == 1 ? "" : "s");
  }
  self->schedule_restart();
}

void PluginSupervisor::Process::schedule_restart() {
  uv_timer_start(&restart, on_restart, backoff_ms, 0);
  backoff_ms = std::min(backoff_ms * 2, kMaxBackoffMs);
}

void PluginSupervisor::Process::on_restart(uv_timer_t* t) {
  auto* self = static_cast<Process*>(t->data);
  if (self->sup->stopping_ || self->child != nullptr || self->retiring) return;
  if (port_held(self->sup->processes_, *self)) {
    self->pending = true;  // a retired plugin still holds the public port: reaped() starts it
    return;
  }
  const int r = self->spawn();
  if (r == 0) return;
  if (const uint64_t n = self->exit_warn.hit()) {
    LOG_WARN("plugin %s for %s: cannot start it: %s; retrying in %llu ms (%llu failure%s)",
             self->launch.spec.name.c_str(), self->launch.what.c_str(), uv_strerror(r),
             static_cast<unsigned long long>(self->backoff_ms), static_cast<unsigned long long>(n),
             n == 1 ? "" : "s");
  }
  self->schedule_restart();
}

PluginSupervisor::PluginSupervisor(uv_loop_s* loop, std::vector<PluginLaunch> launches)
    : loop_(loop) {
  setpriv_ = find_program("setpriv", search_path());
  for (PluginLaunch& l : launches) {
    auto p = std::make_unique<Process>();
    p->sup = this;
    p->launch = std::move(l);
    processes_.push_back(std::move(p));
  }
}

PluginSupervisor::~PluginSupervisor() {
  // The loop has ended: every handle was closed by stop() and the children's exits.
  if (running() != 0) kill_now();
}

void PluginSupervisor::Process::init_timer(uv_timer_t& t) {
  uv_timer_init(sup->loop_, &t);
  t.data = this;
  ++open_timers;
}

void PluginSupervisor::Process::on_timer_closed(uv_handle_t* h) {
  auto* p = static_cast<Process*>(h->data);
  if (--p->open_timers == 0 && p->retiring && !p->sup->stopping_) p->sup->reaped(p);
}

void PluginSupervisor::Process::retire() {
  if (retiring) return;
  retiring = true;
  if (timer_open) uv_timer_stop(&restart);
  if (child == nullptr) {
    finish();
    return;
  }
  LOG_NOTICE("plugin %s (pid %d) for %s retired: it stops once its connections have ended",
             launch.spec.name.c_str(), child->proc.pid, launch.what.c_str());
  init_timer(drain);
  drain_open = true;
  uv_timer_start(&drain, on_drain, 0, kDrainPollMs);
}

void PluginSupervisor::Process::on_drain(uv_timer_t* t) {
  auto* self = static_cast<Process*>(t->data);
  if (self->child == nullptr) return;
  if (!self->term_sent) {
    if (loopback_port_busy(tcp_table(), self->launch.local_port)) return;
    self->term_sent = true;
    self->term_ms = monotonic_ms();
    uv_process_kill(&self->child->proc, SIGTERM);
    return;
  }
  if (!self->kill_sent && monotonic_ms() - self->term_ms >= kKillGraceMs) {
    self->kill_sent = true;
    LOG_WARN("plugin %s (pid %d) did not stop on SIGTERM in %llu ms: SIGKILL",
             self->launch.spec.name.c_str(), self->child->proc.pid,
             static_cast<unsigned long long>(kKillGraceMs));
    uv_process_kill(&self->child->proc, SIGKILL);
  }
}

void PluginSupervisor::Process::finish() {
  if (timer_open) {
    timer_open = false;
    uv_timer_stop(&restart);
    uv_close(reinterpret_cast<uv_handle_t*>(&restart), on_timer_closed);
  }
  if (drain_open) {
    drain_open = false;
    uv_timer_stop(&drain);
    uv_close(reinterpret_cast<uv_handle_t*>(&drain), on_timer_closed);
  }
}

void PluginSupervisor::start_later(Process& p) {
  if (port_held(processes_, p)) return;  // reaped() tries again
  p.pending = false;
  uv_timer_start(&p.restart, Process::on_restart, p.launch.binds_remote ? kRunTimeStartMs : 0, 0);
}

void PluginSupervisor::reaped(Process* p) {
  std::erase_if(processes_, [p](const std::unique_ptr<Process>& q) { return q.get() == p; });
  for (auto& q : processes_) {
    if (q->pending && !q->retiring) start_later(*q);
  }
}

bool PluginSupervisor::start_new(const std::vector<PluginLaunch>& launches,
                                 std::vector<uint16_t>* started, std::string* error) {
  std::vector<const PluginLaunch*> fresh;
  for (const PluginLaunch& l : launches) {
    auto same = [&](const PluginLaunch& o) { return same_plugin(o, l); };
    const bool runs = std::any_of(processes_.begin(), processes_.end(),
                                  [&](const auto& p) { return !p->retiring && same(p->launch); });
    const bool twice =
        std::any_of(fresh.begin(), fresh.end(), [&](const PluginLaunch* f) { return same(*f); });
    if (!runs && !twice) fresh.push_back(&l);
  }
  const std::string search = search_path();
  std::vector<std::string> programs;
  for (const PluginLaunch* l : fresh) {
    programs.push_back(find_program(l->spec.name, search));
    if (programs.back().empty()) {
      *error = "plugin: cannot start \"" + l->spec.name + "\" (for " + l->what +
               "): no such program on PATH";
      return false;
    }
  }
  for (size_t i = 0; i < fresh.size(); ++i) {
    auto p = std::make_unique<Process>();
    p->sup = this;
    p->launch = *fresh[i];
    p->program = programs[i];
    p->init_timer(p->restart);
    p->timer_open = true;
    p->pending = true;
    if (started) started->push_back(p->launch.local_port);
    Process& ref = *p;
    processes_.push_back(std::move(p));
    start_later(ref);
  }
  return true;
}

void PluginSupervisor::retire_except(const std::vector<PluginLaunch>& launches) {
  for (auto& p : processes_) {
    if (p->retiring) continue;
    const bool kept = std::any_of(launches.begin(), launches.end(),
                                  [&](const PluginLaunch& l) { return same_plugin(l, p->launch); });
    if (!kept) p->retire();
  }
}

bool PluginSupervisor::holds_public_port(const std::string& host, uint16_t port) const {
  return std::any_of(processes_.begin(), processes_.end(), [&](const auto& p) {
    return p->launch.binds_remote && p->launch.remote_host == host && p->launch.remote_port == port;
  });
}

std::vector<PluginLaunch> PluginSupervisor::current() const {
  std::vector<PluginLaunch> out;
  for (const auto& p : processes_) {
    if (!p->retiring) out.push_back(p->launch);
  }
  return out;
}

void PluginSupervisor::when_listening(std::vector<uint16_t> ports, std::function<void()> ready) {
  if (ports.empty()) {
    ready();
    return;
  }
  auto* w = new ReadyWait{{}, this, std::move(ports), std::move(ready), monotonic_ms()};
  uv_timer_init(loop_, &w->timer);
  w->timer.data = w;
  waits_.push_back(w);
  uv_timer_start(
      &w->timer,
      [](uv_timer_t* t) {
        auto* w = static_cast<ReadyWait*>(t->data);
        const std::string table = tcp_table();
        const bool all = std::all_of(w->ports.begin(), w->ports.end(), [&](uint16_t port) {
          return loopback_port_listening(table, port);
        });
        const bool late = monotonic_ms() - w->since_ms >= kReadyWaitMs;
        if (!all && !late) return;
        if (!all) {
          LOG_WARN("plugin: a new plugin does not listen after %llu ms; using it all the same",
                   static_cast<unsigned long long>(kReadyWaitMs));
        }
        w->sup->close_wait(w);
        w->ready();
      },
      kReadyPollMs, kReadyPollMs);
}

void PluginSupervisor::close_wait(ReadyWait* w) {
  std::erase(waits_, w);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->timer),
           [](uv_handle_t* h) { delete static_cast<ReadyWait*>(h->data); });
}

bool PluginSupervisor::start(std::string* error) {
  for (auto& p : processes_) {
    p->init_timer(p->restart);
    p->timer_open = true;
  }
  const std::string search = search_path();
  for (auto& p : processes_) {
    p->program = find_program(p->launch.spec.name, search);
    const int r = p->program.empty() ? UV_ENOENT : p->spawn();
    if (r != 0) {
      if (error) {
        *error = "plugin: cannot start \"" + p->launch.spec.name + "\" (for " + p->launch.what +
                 "): " + uv_strerror(r);
      }
      return false;
    }
  }
  return true;
}

void PluginSupervisor::stop() {
  if (!stopping_) {
    stopping_ = true;
    while (!waits_.empty()) close_wait(waits_.back());  // their callers are stopping too
    for (auto& p : processes_) {
      p->finish();  // the timers
      if (p->child != nullptr) uv_process_kill(&p->child->proc, SIGTERM);
    }
    if (running() != 0) {
      kill_timer_ = new KillTimer;
      kill_timer_->sup = this;
      uv_timer_init(loop_, &kill_timer_->timer);
      kill_timer_->timer.data = kill_timer_;
      uv_timer_start(
          &kill_timer_->timer,
          [](uv_timer_t* t) {
            auto* k = static_cast<KillTimer*>(t->data);
            for (auto& p : k->sup->processes_) {
              if (p->child == nullptr) continue;
              LOG_WARN("plugin %s (pid %d) did not stop on SIGTERM in %llu ms: SIGKILL",
                       p->launch.spec.name.c_str(), p->child->proc.pid,
                       static_cast<unsigned long long>(kKillGraceMs));
              uv_process_kill(&p->child->proc, SIGKILL);
            }
          },
          kKillGraceMs, 0);
    }
    return;
  }
  // Called again (by a child's exit while stopping): once none is left, the kill timer goes.
  if (running() == 0 && kill_timer_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(&kill_timer_->timer),
             [](uv_handle_t* h) { delete static_cast<KillTimer*>(h->data); });
    kill_timer_ = nullptr;
  }
}

void PluginSupervisor::kill_now() {
  for (auto& p : processes_) {
    if (p->child != nullptr) kill(p->child->proc.pid, SIGTERM);
  }
}

size_t PluginSupervisor::running() const {
  size_t n = 0;
  for (const auto& p : processes_) n += p->child != nullptr ? 1 : 0;
  return n;
}

std::vector<pid_t> PluginSupervisor::pids() const {
  std::vector<pid_t> out;
  for (const auto& p : processes_) {
    if (p->child != nullptr) out.push_back(p->child->proc.pid);
  }
  return out;
}

}  // namespace ss
