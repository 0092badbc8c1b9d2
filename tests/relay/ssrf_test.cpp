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
        "2606:4700:4700::1111", "2001:db8::1", "::ffff:8.8.8.8", "64:ff9b::808:808"}) {
    INFO(a);
    CHECK_FALSE(private_literal(a));
  }
}

namespace {}  // namespace

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
