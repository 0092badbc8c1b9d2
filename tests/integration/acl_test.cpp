// --acl through the real binaries, ours beside shadowsocks-libev's on the same files, case by
// case. ss-local: its server is down, so a target reached is a target bypassed (direct) and one
// not reached was sent to the proxy; a run with the server up shows the proxied targets work.
// ss-server: targets its outbound block list refuses, by IP, by name and by resolved address,
// and clients its black list refuses. Echo targets listen on several loopback addresses
// (127.0.0.1, .2, .3, 127.0.4.5).

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "tests/integration/harness.h"

namespace ss::test {
namespace {

const NodeOptions kOpt{"aes-256-gcm", "acl-test-password", 60, {}};

std::string write_acl(const std::string& text) {
  const std::filesystem::path path = test_log_path("rules.acl");
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
  return path;
}

// One echo target per loopback address (127.0.0.1 also on ::1, for "localhost").
struct Targets {
  std::map<std::string, std::unique_ptr<TargetServer>> by_host;
  Targets() {
    by_host["127.0.0.1"] = std::make_unique<TargetServer>(TargetBehavior::echo(), true);
    for (const char* h : {"127.0.0.2", "127.0.0.3", "127.0.4.5"}) {
      by_host[h] = std::make_unique<TargetServer>(TargetBehavior::echo(), false, h);
    }
  }
  // Every target on one port would be simpler but cannot be had: each picked its own. A name
  // resolves to 127.0.0.1 (or ::1), whose target listens on both.
  uint16_t port_for(const std::string& host) const {
    auto it = by_host.find(host);
    return (it == by_host.end() ? by_host.at("127.0.0.1") : it->second)->port();
  }
};

// Whether a CONNECT to host through the SOCKS5 port reaches the echo target and echoes.
bool reaches(uint16_t socks_port, const std::string& host, uint16_t port) {
  const AddrType atyp = host.find_first_not_of("0123456789.") == std::string::npos
                            ? AddrType::IPv4
                            : AddrType::Domain;
  try {
    Socks5Connection c = socks5_connect(socks_port, atyp, host, port, Millis(5000));
    if (!c.reply || c.reply->rep != 0) return false;
    const std::string ping = "acl-ping-" + host;
    send_all(c.socket, ping, Millis(3000));
    Bytes back = recv_exact(c.socket, ping.size(), Millis(3000));
    return std::string(back.begin(), back.end()) == ping;
  } catch (const std::exception&) {
    return false;
  }
}

struct Case {
  const char* host;
  bool expect;  // reached: bypassed (ss-local, server down) or allowed (ss-server)
};

void check_local_cases(const std::string& acl_text, std::initializer_list<Case> cases) {
  Targets targets;
  const std::string path = write_acl(acl_text);
  const uint16_t dead_server = pick_free_port();
  std::map<std::string, bool> ours;
  for (Impl impl : {Impl::Ours, Impl::Libev}) {
    NodeOptions opt = kOpt;
    opt.extra_args = {"--acl", path};
    Node local = start_local(impl, opt, dead_server);
    for (const Case& c : cases) {
      const bool got = reaches(local.port, c.host, targets.port_for(c.host));
      INFO(impl_name(impl) << " ss-local, target " << c.host);
      CHECK(got == c.expect);
      if (impl == Impl::Ours) {
        ours[c.host] = got;
      } else {
        INFO("ours and libev's disagree on " << c.host);
        CHECK(ours[c.host] == got);
      }
    }
    if (impl == Impl::Ours) check_clean_shutdown(local);
  }
}

}  // namespace

TEST_CASE(
    "ACL ss-local proxy_all: bypass list by IP, CIDR and regex, bypass wins over proxy list, "
    "same as libev",
    "[integration][interop]") {
  check_local_cases(
      "# shared by the test with shadowsocks-libev\n"
      "[proxy_all]\n"
      "[bypass_list]\n"
      "127.0.0.2\n"
      "127.0.4.0/24\n"
      "(^|\\.)localhost$\n"
      "[proxy_list]\n"
      "127.0.0.0/30   # .1 .2 .3; .2 is bypassed all the same\n",
      {{"127.0.0.2", true},
       {"127.0.4.5", true},
       {"localhost", true},
       {"127.0.0.1", false},
       {"127.0.0.3", false}});
}

TEST_CASE("ACL ss-local bypass_all: only the proxy list is proxied, same as libev",
          "[integration][interop]") {
  check_local_cases(
      "[bypass_all]\n"
      "[proxy_list]\n"
      "127.0.0.3\n"
      "^localhost$\n",
      {{"127.0.0.1", true},
       {"127.0.0.2", true},
       {"127.0.4.5", true},
       {"127.0.0.3", false},
       {"localhost", false}});
}

TEST_CASE("ACL ss-local: a name no rule names is decided by its resolved address, same as libev",
          "[integration][interop]") {
  // localhost resolves to 127.0.0.1 or ::1 (both listed); no name rule matches it.
  check_local_cases("[proxy_all]\n[bypass_list]\n127.0.0.1\n::1\n(^|\\.)other\\.test$\n",
                    {{"localhost", true}, {"127.0.0.2", false}});
  check_local_cases("[bypass_all]\n[proxy_list]\n127.0.0.1\n::1\n",
                    {{"localhost", false}, {"127.0.0.2", true}});
}

TEST_CASE("ACL ss-local: proxied targets do go through ss-server, bypassed ones direct",
          "[integration]") {
  Targets targets;
  const std::string path = write_acl("[bypass_all]\n[proxy_list]\n127.0.0.3\n");
  Node server = start_server(Impl::Ours, kOpt);
  NodeOptions opt = kOpt;
  opt.extra_args = {"--acl", path, "-v"};
  Node local = start_local(Impl::Ours, opt, server.port);
  CHECK(reaches(local.port, "127.0.0.3", targets.port_for("127.0.0.3")));
  CHECK(reaches(local.port, "127.0.0.2", targets.port_for("127.0.0.2")));
  // ss-server saw only the proxied one.
  CHECK(wait_log(server, "127.0.0.3:"));
  const std::string server_log = server.proc->log_text();
  CHECK(server_log.find("127.0.0.2:") == std::string::npos);
  check_clean_shutdown(local);
  check_clean_shutdown(server);
}

TEST_CASE("ACL ss-local takes rust's | and || rules, ss-tunnel refuses --acl", "[integration]") {
  Targets targets;
  const std::string path = write_acl("[proxy_all]\n[bypass_list]\n|localhost\n||example.test\n");
  NodeOptions opt = kOpt;
  opt.extra_args = {"--acl", path};
  Node local = start_local(Impl::Ours, opt, pick_free_port());
  CHECK(reaches(local.port, "localhost", targets.port_for("localhost")));
  CHECK_FALSE(reaches(local.port, "127.0.0.1", targets.port_for("127.0.0.1")));
  check_clean_shutdown(local);

  // ss-tunnel: no --acl flag, and the key in a config file is refused.
  const std::string tunnel_json = test_log_path("tunnel.json").string();
  std::ofstream(tunnel_json) << R"({"server": "127.0.0.1", "server_port": 9, "local_port": )"
                             << pick_free_port()
                             << R"(, "password": "x", "tunnel_address": "127.0.0.1:9", "acl": ")"
                             << path << "\"}";
  {
    auto p = spawn({binary_path(Impl::Ours, "ss-tunnel"), "-c", tunnel_json}, "refused");
    CHECK(p->wait_exit(std::chrono::seconds(5)) == std::optional<int>(1));
    INFO(p->log_text());
    CHECK(p->log_text().find("acl: ss-tunnel takes no ACL") != std::string::npos);
  }
  auto bad = spawn({binary_path(Impl::Ours, "ss-local"), "-s", "127.0.0.1", "-p", "9", "-l",
                    std::to_string(pick_free_port()), "-k", "x", "--acl",
                    write_acl("[proxy_all]\n10.0.0.0/40\n")},
                   "ss-local-bad-acl");
  CHECK(bad->wait_exit(std::chrono::seconds(5)) == std::optional<int>(1));
  INFO(bad->log_text());
  CHECK(bad->log_text().find("line 2: bad prefix length in 10.0.0.0/40") != std::string::npos);
}

TEST_CASE("ACL ss-server outbound_block_list by IP, name and resolved address, same as libev",
          "[integration][interop]") {
  Targets targets;
  struct FileCases {
    std::string acl;
    std::vector<Case> cases;
  };
  const std::vector<FileCases> files = {
      {"[outbound_block_list]\n127.0.0.2\n^localhost$\n",
       {{"127.0.0.1", true}, {"127.0.0.2", false}, {"localhost", false}, {"127.0.0.3", true}}},
      // localhost is not named: its resolved address is what the list blocks.
      {"[outbound_block_list]\n127.0.0.1\n::1\n",
       {{"localhost", false}, {"127.0.0.1", false}, {"127.0.0.2", true}}},
  };
  for (const FileCases& f : files) {
    const std::string path = write_acl(f.acl);
    std::map<std::string, bool> ours;
    for (Impl impl : {Impl::Ours, Impl::Libev}) {
      NodeOptions sopt = kOpt;
      sopt.extra_args = {"--acl", path};
      Node server = start_server(impl, sopt);
      Node local = start_local(Impl::Ours, kOpt, server.port);
      for (const Case& c : f.cases) {
        const bool got = reaches(local.port, c.host, targets.port_for(c.host));
        INFO(impl_name(impl) << " ss-server, ACL:\n" << f.acl << "target " << c.host);
        CHECK(got == c.expect);
        if (impl == Impl::Ours) {
          ours[c.host] = got;
        } else {
          CHECK(ours[c.host] == got);
        }
      }
      if (impl == Impl::Ours) {
        CHECK(wait_log(server, "the ACL blocks"));
        check_clean_shutdown(server);
      }
      check_clean_shutdown(local);
    }
  }
}

TEST_CASE("ACL ss-server black_list refuses clients by address, same as libev",
          "[integration][interop]") {
  Targets targets;
  for (auto [acl, expect] : {std::pair{"[accept_all]\n[black_list]\n127.0.0.1\n", false},
                             std::pair{"[accept_all]\n[black_list]\n127.0.0.9\n", true},
                             std::pair{"[reject_all]\n[white_list]\n127.0.0.0/8\n", true}}) {
    const std::string path = write_acl(acl);
    for (Impl impl : {Impl::Ours, Impl::Libev}) {
      NodeOptions sopt = kOpt;
      sopt.extra_args = {"--acl", path};
      Node server = start_server(impl, sopt);
      Node local = start_local(Impl::Ours, kOpt, server.port);
      INFO(impl_name(impl) << " ss-server, ACL:\n" << acl);
      CHECK(reaches(local.port, "127.0.0.1", targets.port_for("127.0.0.1")) == expect);
      if (impl == Impl::Ours && !expect) CHECK(wait_log(server, "the ACL denies it"));
      check_clean_shutdown(local);
    }
  }
}

TEST_CASE("ACL ss-server -u: the outbound block list drops datagrams to blocked targets",
          "[integration][udp]") {
  // libev's ss-server applies no ACL to UDP: ours only.
  UdpTarget allowed("127.0.0.1"), blocked("127.0.0.2");
  const std::string path = write_acl("[outbound_block_list]\n127.0.0.2\n");
  NodeOptions opt = kOpt;
  opt.extra_args = {"-u"};
  NodeOptions sopt = opt;
  sopt.extra_args.insert(sopt.extra_args.end(), {"--acl", path});
  Node server = start_server(Impl::Ours, sopt);
  Node to_allowed = start_tunnel(Impl::Ours, opt, server.port, "127.0.0.1", allowed.port());
  Node to_blocked = start_tunnel(Impl::Ours, opt, server.port, "127.0.0.2", blocked.port());
  UdpSocket client("127.0.0.1");
  const Bytes ping = random_bytes(100);
  bool echoed = false;
  for (int i = 0; i < 20 && !echoed; ++i) {  // the tunnel's UDP socket may not be ready at once
    client.send_to("127.0.0.1", to_allowed.port, ping);
    auto back = client.recv(Millis(250));
    echoed = back && back->data == ping;
  }
  CHECK(echoed);
  for (int i = 0; i < 5; ++i) client.send_to("127.0.0.1", to_blocked.port, ping);
  CHECK_FALSE(client.recv(Millis(500)).has_value());
  CHECK(blocked.received() == 0);
  CHECK(wait_log(server, "the ACL blocks"));
  check_clean_shutdown(to_allowed);
  check_clean_shutdown(to_blocked);
  check_clean_shutdown(server);
}

namespace {

// A SOCKS5 UDP exchange through ss-local: sends `data` to host:port and returns the reply's
// payload if one comes back within `wait`, checking that it names host:port as its source.
std::optional<Bytes> udp_exchange(UdpSocket& udp, const Socks5UdpAssociation& assoc,
                                  const UdpTarget& target, const Bytes& data, Millis wait) {
  Socks5UdpPacket p;
  p.host = target.host();
  p.port = target.port();
  p.data = data;
  udp.send_to(assoc.relay_host, assoc.relay_port, socks5_udp_encode(p));
  for (;;) {
    auto d = udp.recv(wait);
    if (!d) return std::nullopt;
    auto r = socks5_udp_decode(d->data);
    REQUIRE(r.has_value());
    if (r->data != data) continue;  // a late echo of an earlier try
    CHECK(r->host == target.host());
    CHECK(r->port == target.port());
    return r->data;
  }
}

}  // namespace

TEST_CASE(
    "ACL ss-local -u: datagrams bypassed go direct, proxied ones through ss-server, "
    "blocked ones nowhere",
    "[integration][udp]") {
  // libev 3.3.5's ss-local applies its ACL to TCP only (with [bypass_all] and -u its datagrams
  // still go to the server): ours only.
  UdpTarget bypassed("127.0.0.2"), proxied("127.0.0.3"), blocked("127.0.0.4");
  const std::string path =
      write_acl("[proxy_all]\n[bypass_list]\n127.0.0.2\n[outbound_block_list]\n127.0.0.4\n");
  NodeOptions sopt = kOpt;
  sopt.extra_args = {"-u"};
  Node server = start_server(Impl::Ours, sopt);
  NodeOptions lopt = kOpt;
  lopt.extra_args = {"-u", "--acl", path};
  Node local = start_local(Impl::Ours, lopt, server.port);
  UdpSocket udp("127.0.0.1");
  Socks5UdpAssociation assoc = socks5_udp_associate(local.port, "127.0.0.1", udp.port());

  bool through = false;  // the UDP sockets may not be ready at once
  for (int i = 0; i < 20 && !through; ++i) {
    through = udp_exchange(udp, assoc, proxied, random_bytes(64), Millis(250)).has_value();
  }
  REQUIRE(through);
  CHECK(udp_exchange(udp, assoc, bypassed, random_bytes(64), Millis(2000)).has_value());
  for (int i = 0; i < 3; ++i) {
    CHECK_FALSE(udp_exchange(udp, assoc, blocked, random_bytes(64), Millis(200)).has_value());
  }
  CHECK(blocked.received() == 0);
  // The line names ss-local's role, not the server's.
  CHECK(wait_log(local, "local: refused target 127.0.0.4:"));
  CHECK(local.proc->log_text().find("server: refused target") == std::string::npos);
  // ss-server's socket sent to the proxied target, ss-local's own to the bypassed one.
  REQUIRE(proxied.sources().size() == 1);
  REQUIRE(bypassed.sources().size() == 1);
  CHECK(proxied.sources()[0].port != bypassed.sources()[0].port);
  // TCP: the block list refuses the same target (no route), the server being up (its log line
  // is the UDP one's kind, rate limited).
  TargetServer tcp_blocked(TargetBehavior::echo(), false, "127.0.0.4");
  CHECK_FALSE(reaches(local.port, "127.0.0.4", tcp_blocked.port()));

  // Without ss-server, the bypassed target still answers, the proxied one cannot.
  check_clean_shutdown(server);
  CHECK(udp_exchange(udp, assoc, bypassed, random_bytes(64), Millis(2000)).has_value());
  CHECK_FALSE(udp_exchange(udp, assoc, proxied, random_bytes(64), Millis(300)).has_value());
  CHECK(bypassed.sources().size() == 1);
  check_clean_shutdown(local);
}

}  // namespace ss::test
