// The SSRF guard: which addresses are private, and ss-server refusing them by default, after DNS,
// with no byte back and no outbound connection (hostile-inputs A11). The client authenticated, so
// the connection is closed at once rather than held like a probe.

#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

#include "crypto/cipher_spec.h"
#include "crypto/kdf.h"
#include "crypto/stream.h"
#include "relay/address.h"
#include "relay/ip_policy.h"
#include "relay/log.h"
#include "relay/net/listener.h"
#include "server/inbound_ss.h"
#include "tests/relay/server_fixture.h"
#include "tests/support/net.h"

using namespace ss;
using namespace ss::test;
using namespace std::chrono_literals;

namespace {

bool private_literal(const char* text) {
  sockaddr_storage ss{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
  } else {
    REQUIRE(inet_pton(AF_INET6, text, &v6->sin6_addr) == 1);
    v6->sin6_family = AF_INET6;
  }
  return is_private_address(reinterpret_cast<sockaddr*>(&ss));
}

}  // namespace

TEST_CASE("SSRF guard: private, loopback, link-local, multicast and mapped forms", "[relay]") {
  for (const char* a : {"127.0.0.1",
                        "127.255.255.254",
                        "0.0.0.0",
                        "10.0.0.1",
                        "172.16.0.1",
                        "172.31.255.255",
                        "192.168.1.1",
                        "169.254.169.254",
                        "100.64.0.1",
                        "224.0.0.1",
                        "239.255.255.250",
                        "255.255.255.255",
                        "240.0.0.1",
                        "192.0.0.8",
                        "198.18.0.1",
                        "::",
                        "::1",
                        "fe80::1",
                        "fc00::1",
                        "fd12:3456::1",
                        "fec0::1",
                        "ff02::1",
                        "::ffff:127.0.0.1",
                        "::ffff:10.1.2.3",
                        "::ffff:169.254.169.254",
                        "::127.0.0.1",
                        "64:ff9b::a00:1"}) {
    INFO(a);
    CHECK(private_literal(a));
  }
  for (const char* a :
       {"1.1.1.1", "8.8.8.8", "93.184.216.34", "172.32.0.1", "100.128.0.1", "192.169.0.1",
        "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"}) {
    INFO(a);
    CHECK_FALSE(private_literal(a));
  }
}

TEST_CASE("SSRF guard: IANA special-purpose ranges and IPv6 forms that embed an IPv4 address",
          "[relay]") {
  // Refused: each special spelling of loopback/private, and the special-purpose blocks that are
  // not globally reachable (IANA IPv4 and IPv6 Special-Purpose Address Registries).
  for (const char* a :
       {"0.1.2.3",
        "0.255.255.255",
        "192.0.2.1",
        "198.51.100.7",
        "203.0.113.200",
        "240.0.0.0",
        "254.255.255.255",
        "255.255.255.255",
        "192.88.99.1",
        "198.19.255.255",
        "192.0.0.170",
        "192.0.0.0",
        "::ffff:0:7f00:1",
        "::ffff:0:a00:1",
        "::ffff:0:c0a8:101",  // IPv4-translated
        "2002:7f00:1::",
        "2002:a00:1::1",
        "2002:c0a8:101::",  // 6to4
        "2002:a9fe:a9fe::",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",  // NAT64 /96
        "64:ff9b:1::808:808",
        "64:ff9b:1:ffff::1",  // NAT64 local /48
        "::ffff:192.0.2.2",
        "::ffff:0.0.0.0",
        "::ffff:240.0.0.1",
        "::2",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  // Teredo, client 127.0.0.1 (inverted)
        "2001:2::1",
        "2001:10::1",
        "2001:100::1",  // 2001::/23 rest
        "2001:db8::1",
        "2001:db8:ffff::1",
        "3fff::1",
        "3fff:fff::1",
        "100::1",
        "100:0:0:1::1",
        "5f00::1"}) {
    INFO(a);
    CHECK(private_literal(a));
  }
  // Allowed: public addresses, whatever their spelling, and the globally reachable blocks inside
  // refused ones.
  for (const char* a : {"192.0.0.9",        "192.0.0.10",
                        "192.0.3.1",        "203.0.114.1",
                        "223.255.255.255",  "11.22.33.44",
                        "::ffff:0:808:808", "2002:808:808::1",
                        "64:ff9b::101:101", "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
                        "2001:1::1",        "2001:3::1",
                        "2001:4:112::1",    "2001:20::1",
                        "2001:200::1",      "2001:db9::1",
                        "3fff:1000::1",     "64:ff9b:2::1",
                        "100:0:0:2::1",     "2a00:1450:4001::1"}) {
    INFO(a);
    CHECK_FALSE(private_literal(a));
  }
}

namespace {

sockaddr_storage literal(const char* text) {
  sockaddr_storage ss{};
  REQUIRE(literal_to_sockaddr(text, 80, ss));
  return ss;
}

HostAddresses::Key key_of(const char* text) {
  sockaddr_storage ss = literal(text);
  HostAddresses::Key k{};
  if (ss.ss_family == AF_INET) {
    k[10] = k[11] = 0xFF;
    std::memcpy(k.data() + 12, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, 4);
  } else {
    std::memcpy(k.data(), &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, 16);
  }
  return k;
}

}  // namespace

TEST_CASE("SSRF guard: the host's interface addresses, in every spelling, refreshed per period",
          "[relay]") {
  std::vector<HostAddresses::Key> interfaces = {key_of("11.22.33.44"), key_of("2a00:1::5")};
  int reads = 0;
  HostAddresses host(
      [&] {
        ++reads;
        return interfaces;
      },
      10'000);
  CHECK(reads == 1);
  const uint64_t t0 = monotonic_ms();
  auto has = [&](const char* a, uint64_t now) {
    sockaddr_storage ss = literal(a);
    return host.contains(reinterpret_cast<sockaddr*>(&ss), now);
  };
  for (const char* a : {"11.22.33.44", "::ffff:11.22.33.44", "::ffff:0:b16:212c",
                        "2002:b16:212c::", "64:ff9b::b16:212c", "2a00:1::5"}) {
    INFO(a);
    CHECK(has(a, t0));
  }
  CHECK_FALSE(has("11.22.33.45", t0));
  CHECK_FALSE(has("2a00:1::6", t0));
  // An address added later is seen once the period has passed, not before, and the set is read
  // once per period however many lookups there are.
  interfaces.push_back(key_of("11.22.33.99"));
  CHECK_FALSE(has("11.22.33.99", t0 + 9'000));
  CHECK(reads == 1);
  CHECK(has("11.22.33.99", t0 + 10'001));
  CHECK(has("11.22.33.99", t0 + 10'002));
  CHECK(reads == 2);
  // On demand.
  interfaces.erase(interfaces.begin());
  host.refresh(t0 + 10'003);
  CHECK_FALSE(has("11.22.33.44", t0 + 10'004));
  CHECK(host.size() == 2);
}

TEST_CASE("SSRF guard: getifaddrs lists this host's addresses, loopback among them", "[relay]") {
  HostAddresses host;
  CHECK(host.size() >= 1);
  for (const char* a : {"127.0.0.1", "::ffff:127.0.0.1"}) {
    sockaddr_storage ss = literal(a);
    INFO(a);
    CHECK(host.contains(reinterpret_cast<sockaddr*>(&ss)));
    CHECK(is_refused_target(reinterpret_cast<sockaddr*>(&ss)));
  }
  sockaddr_storage pub = literal("93.184.216.34");
  CHECK_FALSE(is_refused_target(reinterpret_cast<sockaddr*>(&pub)));
}

TEST_CASE("ss-server refuses private targets by default, literal or resolved", "[relay]") {
  const CipherSpec& spec = *find_cipher("chacha20-ietf-poly1305");
  TargetServer target(TargetBehavior::echo(), /*dual_stack=*/true);
  // The default policy: no private targets.
  LoopServer server(server_config(spec, "ssrf test", /*allow_private_targets=*/false));
  auto try_target = [&](const Address& a) {
    StreamEncryptor enc(spec, server.config().key);
    Bytes pt(kMaxAddressLen + 5);
    size_t n = encode_address(a, pt.data());
    std::memcpy(pt.data() + n, "hello", 5);
    pt.resize(n + 5);
    Bytes flight(enc.sealed_size(pt.size()));
    flight.resize(enc.seal(pt.data(), pt.size(), flight.data()));
    Socket s = connect_tcp("127.0.0.1", server.port());
    send_all(s, flight);
    // Closed at once (well before the 5 s handshake deadline), without a byte.
    const auto t0 = std::chrono::steady_clock::now();
    Bytes got = recv_until_eof(s, 1000ms);
    CHECK(std::chrono::steady_clock::now() - t0 < 1000ms);
    return got;
  };
  for (const char* host : {"127.0.0.1", "::1", "::ffff:127.0.0.1", "localhost", "[::1]"}) {
    INFO(host);
    auto a = make_address(host, target.port());
    if (!a) {  // "[::1]" stays a name on the wire (S12): send it as a domain
      Address d;
      d.type = Address::Type::Domain;
      d.host = host;
      d.port = target.port();
      a = d;
    }
    CHECK(try_target(*a).empty());
  }
  std::this_thread::sleep_for(100ms);
  CHECK(target.accepted() == 0);
  CHECK(server.finish() == 0);
}
