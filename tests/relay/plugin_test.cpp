// SIP003 plugins: the config keys and flags, the specs' rewrite (relay/plugin.h), the child's
// environment, and the supervisor on a real loop with /bin/sh as the "plugin": restart after a
// crash, SIGTERM then SIGKILL at stop, every handle closed.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>
#include <sstream>

#include <uv.h>

#include "relay/config.h"
#include "relay/log.h"
#include "relay/plugin.h"
#include "relay/sip002.h"
#include "tests/support/temp_dir.h"

namespace ss {
namespace {

Config loaded(Role role, std::vector<const char*> args) {
  args.insert(args.begin(), "prog");
  std::ostringstream out, warn;
  std::optional<Config> c =
      load_config(role, static_cast<int>(args.size()), args.data(), out, warn);
  REQUIRE(c);
  return *c;
}

std::string error_of(Role role, const std::string& json) {
  try {
    std::ostringstream w;
    Config c = parse_config_json(role, json, w);
    finalize_config(c);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return {};
}

bool alive(pid_t pid) {
  return kill(pid, 0) == 0 || errno != ESRCH;
}

// A "plugin" that is /bin/sh running `script`, on loopback.
PluginLaunch sh_plugin(const std::string& script) {
  PluginLaunch l;
  l.spec.name = "sh";
  l.spec.args = {"-c", script};
  l.remote_host = l.local_host = "127.0.0.1";
  return l;
}

// Starts st.timer on `loop`: `cb` (given &st as the timer's data) after first_ms, then every
// repeat_ms.
template <typename State>
void every(uv_loop_t* loop, State& st, uint64_t first_ms, uint64_t repeat_ms, uv_timer_cb cb) {
  uv_timer_init(loop, &st.timer);
  st.timer.data = &st;
  uv_timer_start(&st.timer, cb, first_ms, repeat_ms);
}

}  // namespace

TEST_CASE("plugin: flags and flat keys give each server or listener the plugin", "[relay]") {
  Config c = loaded(Role::Local, {"-s", "203.0.113.5", "-p", "8388", "-l", "1080", "-k", "pw",
                                  "--plugin", "obfs-local", "--plugin-opts", "obfs=http"});
  REQUIRE(c.servers.size() == 1);
  CHECK(c.servers[0].plugin.name == "obfs-local");
  CHECK(c.servers[0].plugin.opts == "obfs=http");

  Config s = loaded(Role::Server, {"-s", "0.0.0.0", "-s", "::", "-p", "8388", "-k", "pw",
                                   "--plugin", "obfs-server", "--plugin-opts", "obfs=tls"});
  REQUIRE(s.listeners.size() == 2);
  for (const ListenerSpec& l : s.listeners) {
    CHECK(l.plugin.name == "obfs-server");
    CHECK(l.plugin.opts == "obfs=tls");
  }

  std::ostringstream w;
  Config j = parse_config_json(Role::Local, R"({"server": "h.example", "server_port": 1,
      "local_port": 2, "password": "x", "plugin": "ss-v2ray-plugin", "plugin_opts": "host=a",
      "plugin_args": ["-loglevel", "none"], "plugin_mode": "tcp_only"})",
                               w);
  finalize_config(j);
  REQUIRE(j.servers.size() == 1);
  CHECK(j.servers[0].plugin.args == std::vector<std::string>{"-loglevel", "none"});
  CHECK(w.str().empty());
}

TEST_CASE("plugin: servers entries and ss:// URIs have their own, and --url prints it", "[relay]") {
  std::ostringstream w;
  Config c = parse_config_json(Role::Local, R"({"local_port": 1, "servers": [
      {"server": "10.0.0.1", "server_port": 1, "password": "x", "plugin": "obfs-local",
       "plugin_opts": "obfs=tls"},
      {"server": "10.0.0.2", "server_port": 2, "password": "y"},
      {"url": "ss://cmM0LW1kNTpwYXNzd2Q@1.2.3.4:8888/?plugin=obfs-local%3bobfs%3dhttp"}]})",
                               w);
  c.servers[2].method = "aes-128-gcm";  // rc4-md5 is not supported; the plugin is what matters
  finalize_config(c);
  REQUIRE(c.servers.size() == 3);
  CHECK(c.servers[0].plugin.opts == "obfs=tls");
  CHECK(c.servers[1].plugin.empty());
  CHECK(c.servers[2].plugin.name == "obfs-local");
  CHECK(c.servers[2].plugin.opts == "obfs=http");

  std::ostringstream out;
  print_server_uris(c, out, false);
  std::istringstream lines(out.str());
  std::string first;
  std::getline(lines, first);
  std::optional<Sip002> back = parse_sip002(first, nullptr);
  REQUIRE(back);
  CHECK(back->plugin == "obfs-local");
  CHECK(back->plugin_opts == "obfs=tls");
}

TEST_CASE("plugin: what is refused names the key", "[relay]") {
  CHECK(error_of(Role::Local, R"({"server": "h", "server_port": 1, "local_port": 2,
      "password": "x", "plugin": "p", "plugin_mode": "tcp_and_udp"})")
            .rfind("plugin_mode: only \"tcp_only\"", 0) == 0);
  CHECK(error_of(Role::Local, R"({"server": "h", "server_port": 1, "local_port": 2,
      "password": "x", "plugin": "p", "plugin_args": "-v"})") ==
        "plugin_args: must be an array of strings");
  CHECK(error_of(Role::Local, R"({"local_port": 2, "plugin": "p", "servers": [{"server": "h",
      "server_port": 1, "password": "x"}]})") ==
        "plugin: with \"servers\", give each entry its own \"plugin\"");
}

TEST_CASE("plugin: ss-server refuses an ACL's client lists behind a plugin", "[relay]") {
  test::TempDir dir("ss-plugin-acl");
  const std::string acl = dir / "clients.acl";
  std::ofstream(acl) << "[black_list]\n192.0.2.1\n";
  const std::string e = error_of(Role::Server, R"({"server_port": 1, "password": "x", "plugin":
      "obfs-server", "acl": ")" + acl + "\"}");
  CHECK(e.rfind("acl: client lists", 0) == 0);
  // Outbound rules only: accepted.
  std::ofstream(acl) << "[outbound_block_list]\n192.0.2.1\n";
  CHECK(error_of(Role::Server, R"({"server_port": 1, "password": "x", "plugin": "obfs-server",
      "acl": ")" + acl + "\"}")
            .empty());
}

TEST_CASE("plugin: arrange_plugins sends TCP through loopback ports, UDP around them", "[relay]") {
  Specs specs;
  ServerSpec with;
  with.host = "203.0.113.5";
  with.port = 8388;
  with.plugin.name = "obfs-local";
  ServerSpec without;
  without.host = "203.0.113.6";
  without.port = 8389;
  specs.servers = {with, without};
  ListenerSpec l{ListenerSpec::Protocol::Shadowsocks, "0.0.0.0", 8390, {}};
  l.udp = true;
  l.plugin.name = "obfs-server";
  l.plugin.opts = "obfs=http";
  specs.listeners = {l};

  std::string error;
  std::vector<PluginLaunch> launches = arrange_plugins(specs, &error);
  CHECK(error.empty());
  REQUIRE(launches.size() == 2);
  // The client side: the plugin goes to the server, our TCP to the plugin.
  CHECK(launches[0].remote_host == "203.0.113.5");
  CHECK(launches[0].remote_port == 8388);
  CHECK(launches[0].local_host == "127.0.0.1");
  REQUIRE(specs.servers[0].tcp_via);
  CHECK(specs.servers[0].tcp_via->port == launches[0].local_port);
  CHECK(specs.servers[0].host == "203.0.113.5");  // UDP still goes here
  CHECK_FALSE(specs.servers[1].tcp_via);
  // The server side: the plugin takes the public port, our TCP listener a loopback one, and UDP
  // stays on the public port.
  CHECK(launches[1].remote_host == "0.0.0.0");
  CHECK(launches[1].remote_port == 8390);
  CHECK(launches[1].spec.opts == "obfs=http");
  REQUIRE(specs.listeners.size() == 2);
  CHECK(specs.listeners[0].address == "127.0.0.1");
  CHECK(specs.listeners[0].port == launches[1].local_port);
  CHECK(specs.listeners[0].tcp);
  CHECK_FALSE(specs.listeners[0].udp);
  CHECK(specs.listeners[1].address == "0.0.0.0");
  CHECK(specs.listeners[1].port == 8390);
  CHECK_FALSE(specs.listeners[1].tcp);
  CHECK(specs.listeners[1].udp);
  CHECK(launches[0].local_port != launches[1].local_port);
}

TEST_CASE("plugin: arrange_plugins keeps a running plugin's loopback port, new ones get others",
          "[relay]") {
  Specs specs;
  ServerSpec a;
  a.host = "203.0.113.5";
  a.port = 8388;
  a.plugin.name = "obfs-local";
  a.plugin.opts = "obfs=http";
  specs.servers = {a};
  std::string error;
  const std::vector<PluginLaunch> first = arrange_plugins(specs, &error);
  REQUIRE(first.size() == 1);
  // A refresh: the same server, and another with the same plugin; then the first's options change.
  Specs next;
  ServerSpec b = a;
  b.host = "203.0.113.6";
  next.servers = {a, b};
  const std::vector<PluginLaunch> second = arrange_plugins(next, &error, first);
  REQUIRE(second.size() == 2);
  CHECK(same_plugin(second[0], first[0]));
  CHECK(second[0].local_port == first[0].local_port);
  CHECK(next.servers[0].tcp_via->port == first[0].local_port);
  CHECK_FALSE(same_plugin(second[1], first[0]));
  CHECK(second[1].local_port != first[0].local_port);
  Specs changed;
  a.plugin.opts = "obfs=tls";
  changed.servers = {a};
  const std::vector<PluginLaunch> third = arrange_plugins(changed, &error, first);
  REQUIRE(third.size() == 1);
  CHECK_FALSE(same_plugin(third[0], first[0]));
  CHECK(third[0].local_port != first[0].local_port);
  // A listener's plugin binds the public port: binds_remote, and the public port is kept.
  Specs server;
  ListenerSpec l{ListenerSpec::Protocol::Shadowsocks, "0.0.0.0", 8390, {}};
  l.plugin.name = "obfs-server";
  server.listeners = {l};
  const std::vector<PluginLaunch> s = arrange_plugins(server, &error);
  REQUIRE(s.size() == 1);
  CHECK(s[0].binds_remote);
  CHECK_FALSE(first[0].binds_remote);
  CHECK(server.listeners[0].public_port == 8390);
  CHECK(error.empty());
}

TEST_CASE("plugin: a loopback port's connections and listeners, from /proc/net/tcp's text",
          "[relay]") {
  // Port 0x1F90 = 8080; 0100007F is 127.0.0.1 as the kernel prints it (on little-endian hosts:
  // the test builds the text from htonl so it holds on any).
  char lo[9];
  std::snprintf(lo, sizeof lo, "%08X", static_cast<unsigned>(htonl(INADDR_LOOPBACK)));
  const std::string l(lo);
  const std::string head =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
      "timeout inode\n";
  auto line = [](int n, const std::string& local, const std::string& remote, const char* st) {
    return "   " + std::to_string(n) + ": " + local + " " + remote + " " + st +
           " 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 20 4 "
           "30 10 -1\n";
  };
  const std::string listening = head + line(0, l + ":1F90", "00000000:0000", "0A");
  CHECK(loopback_port_listening(listening, 8080));
  CHECK_FALSE(loopback_port_busy(listening, 8080));
  CHECK_FALSE(loopback_port_listening(listening, 8081));
  // A connection to it, either end; TIME_WAIT (06) and CLOSE (07) do not count.
  const std::string connected = listening + line(1, l + ":1F90", l + ":D431", "01");
  CHECK(loopback_port_busy(connected, 8080));
  const std::string to = head + line(0, l + ":D431", l + ":1F90", "08");
  CHECK(loopback_port_busy(to, 8080));
  CHECK_FALSE(loopback_port_listening(to, 8080));
  const std::string waiting =
      head + line(0, l + ":1F90", l + ":D431", "06") + line(1, l + ":D431", l + ":1F90", "07");
  CHECK_FALSE(loopback_port_busy(waiting, 8080));
  // Another address with that port is not ours.
  CHECK_FALSE(loopback_port_busy(head + line(0, "0200000A:1F90", "0100000A:D431", "01"), 8080));
  CHECK_FALSE(loopback_port_busy("", 8080));
}

TEST_CASE("plugin: at run time a retired plugin gets SIGTERM once its loopback port is idle",
          "[relay]") {
  // A connection on 127.0.0.1:P stands for one through the plugin: P's listener and a client.
  const int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(listen(lfd, 4) == 0);
  REQUIRE(getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  const int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(connect(cfd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);

  uv_loop_t loop;
  uv_loop_init(&loop);
  PluginLaunch l = sh_plugin("exec sleep 60");
  l.local_port = ntohs(a.sin_port);
  l.what = "server test";
  struct State {
    PluginSupervisor sup;
    uv_timer_t timer{};
    int step = 0;
    pid_t pid = 0;
    bool alive_while_busy = false;
    int cfd = -1;
    int lfd = -1;
  } st{PluginSupervisor(&loop, {})};
  st.cfd = cfd;
  st.lfd = lfd;
  std::string error;
  REQUIRE(st.sup.start(&error));
  PluginLaunch missing = l;
  missing.spec.name = "no-such-plugin-ss-uv";
  CHECK_FALSE(st.sup.start_new({missing}, nullptr, &error));
  CHECK(error.find("no-such-plugin-ss-uv") != std::string::npos);
  std::vector<uint16_t> started;
  REQUIRE(st.sup.start_new({l}, &started, &error));
  CHECK(started == std::vector<uint16_t>{l.local_port});
  CHECK(st.sup.current().size() == 1);
  // 200 ms: it runs; retire it. 900 ms: it still runs (the connection is open); close it.
  // Then, every 100 ms: once it is gone, stop.
  every(&loop, st, 200, 100, [](uv_timer_t* t) {
    auto* s = static_cast<State*>(t->data);
    const int step = s->step++;
    if (step == 0) {
      if (s->sup.pids().size() == 1) s->pid = s->sup.pids()[0];
      s->sup.retire_except({});
    } else if (step == 7) {
      s->alive_while_busy = s->sup.running() == 1 && alive(s->pid);
      close(s->cfd);
      close(s->lfd);
    } else if (step > 7 && (s->sup.running() == 0 || step > 40)) {
      s->sup.stop();
      uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
    }
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(st.pid != 0);
  CHECK(st.alive_while_busy);
  CHECK(st.step < 40);  // ended once the connection closed, not by stop()
  CHECK_FALSE(alive(st.pid));
  CHECK(st.sup.current().empty());
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("plugin: the SIP003 environment replaces inherited SS_ variables", "[relay]") {
  PluginLaunch l;
  l.spec.name = "p";
  l.spec.opts = "obfs=http;obfs-host=a\\;b";
  l.remote_host = "::1";
  l.remote_port = 8388;
  l.local_host = "127.0.0.1";
  l.local_port = 4000;
  const std::vector<std::string> env =
      plugin_environment(l, {"PATH=/usr/bin", "SS_LOCAL_PORT=1", "SS_PLUGIN_OPTIONS=old"});
  CHECK(env == std::vector<std::string>{"PATH=/usr/bin", "SS_REMOTE_HOST=::1",
                                        "SS_REMOTE_PORT=8388", "SS_LOCAL_HOST=127.0.0.1",
                                        "SS_LOCAL_PORT=4000",
                                        "SS_PLUGIN_OPTIONS=obfs=http;obfs-host=a\\;b"});
  l.spec.opts.clear();
  CHECK(plugin_environment(l, {}).size() == 4);
}

TEST_CASE("plugin: find_program searches PATH as execvp does", "[relay]") {
  test::TempDir dir("ss-plugin-path");
  const std::string exe = dir / "my-plugin";
  std::ofstream(exe) << "#!/bin/sh\n";
  const std::string plain = dir / "not-executable";
  std::ofstream(plain) << "x";
  chmod(exe.c_str(), 0755);
  const std::string d = dir.path().string();
  CHECK(find_program("my-plugin", "/nonexistent:" + d) == exe);
  CHECK(find_program("not-executable", d).empty());
  CHECK(find_program("my-plugin", "/nonexistent").empty());
  CHECK(find_program(exe, "") == exe);
  CHECK(find_program(plain, "").empty());
  CHECK(find_program("", d).empty());
  CHECK(find_program("sh", "/usr/bin:/bin").size() > 3);
}

TEST_CASE("plugin: a crashed plugin is restarted, stop() ends it and closes every handle",
          "[relay]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  PluginLaunch l;
  l.spec.name = "sh";
  // Checks its environment, then waits: exits 3 at once if SIP003's variables are missing.
  l.spec.args = {"-c",
                 "[ \"$SS_LOCAL_PORT\" = 4000 ] && [ \"$SS_REMOTE_HOST\" = h ] || exit 3; "
                 "exec sleep 60"};
  l.remote_host = "h";
  l.remote_port = 1;
  l.local_host = "127.0.0.1";
  l.local_port = 4000;
  l.what = "test";
  struct State {
    PluginSupervisor sup;
    pid_t first = 0;
    pid_t second = 0;
    uv_timer_t timer{};
    int step = 0;
  } st{PluginSupervisor(&loop, {l})};
  std::string error;
  REQUIRE(st.sup.start(&error));
  REQUIRE(st.sup.pids().size() == 1);
  st.first = st.sup.pids()[0];
  // 300 ms: kill it; 1800 ms (after the 1 s back-off): a new one runs; then stop.
  every(&loop, st, 300, 1500, [](uv_timer_t* t) {
    auto* s = static_cast<State*>(t->data);
    if (s->step++ == 0) {
      kill(s->first, SIGKILL);
      return;
    }
    if (s->sup.pids().size() == 1) s->second = s->sup.pids()[0];
    s->sup.stop();
    uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(st.second != 0);
  CHECK(st.second != st.first);
  CHECK(st.sup.running() == 0);
  CHECK_FALSE(alive(st.first));
  CHECK_FALSE(alive(st.second));
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("plugin: what a plugin prints before it exits reaches the log", "[relay]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  test::TempDir dir("ss-plugin-log");
  const std::string log = dir / "log";
  REQUIRE(log_to_file(log).empty());
  {
    PluginLaunch l;
    l.spec.name = "sh";
    l.spec.args = {"-c", "echo '  bind failed: address in use' >&2; exit 2"};
    l.what = "listener x";
    PluginSupervisor sup(&loop, {l});
    std::string error;
    REQUIRE(sup.start(&error));
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = &sup;
    uv_timer_start(
        &t,
        [](uv_timer_t* h) {
          static_cast<PluginSupervisor*>(h->data)->stop();
          uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
        },
        500, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  log_to_stderr();
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK_THAT(text, Catch::Contains("plugin sh: bind failed: address in use\n"));
  CHECK_THAT(text,
             Catch::Contains("for listener x exited with status 2; restarting it in 1000 ms"));
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("plugin: one that ignores SIGTERM is killed; a missing program fails start", "[relay]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    PluginSupervisor sup(&loop, {sh_plugin("trap '' TERM; exec sleep 60")});
    std::string error;
    REQUIRE(sup.start(&error));
    const pid_t pid = sup.pids().at(0);
    uv_sleep(200);  // let sh set the trap
    sup.stop();
    uv_run(&loop, UV_RUN_DEFAULT);  // ends after the grace and SIGKILL
    CHECK(sup.running() == 0);
    CHECK_FALSE(alive(pid));
  }
  {
    PluginLaunch l;
    l.spec.name = "no-such-plugin-ss-uv";
    l.what = "server x";
    PluginSupervisor sup(&loop, {l});
    std::string error;
    CHECK_FALSE(sup.start(&error));
    CHECK(error ==
          "plugin: cannot start \"no-such-plugin-ss-uv\" (for server x): "
          "no such file or directory");
    sup.stop();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace ss
