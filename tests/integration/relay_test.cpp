// End-to-end TCP relay through ss-local -> ss-server -> a local target, for every AEAD cipher and
// every pairing of our binaries with shadowsocks-libev's.

#include <catch2/catch.hpp>

#include <atomic>

#include "tests/integration/harness.h"

namespace ss::test {
namespace {

using namespace std::chrono_literals;

constexpr size_t kBulkBytes = 10u << 20;

NodeOptions options(const std::string& method) {
  return {method, random_token(24), 60, {}};
}

// 10 MiB each way at the same time, byte-exact in both directions.
void bulk_both_ways(Impl client, Impl server) {
  const std::string method = GENERATE(from_range(kAeadCiphers.begin(), kAeadCiphers.end()));
  INFO("ss-local: " << impl_name(client) << ", ss-server: " << impl_name(server)
                    << ", method: " << method);
  const NodeOptions opt = options(method);
  TargetServer target(TargetBehavior::duplex(kBulkBytes, kBulkBytes));
  Node srv = start_server(server, opt);
  Node local = start_local(client, opt, srv.port);

  auto conn = socks5_connect(local.port, AddrType::IPv4, "127.0.0.1", target.port());
  REQUIRE(conn.reply.has_value());
  REQUIRE(conn.reply->rep == 0x00);
  const Bytes upload = random_bytes(kBulkBytes);
  const TransferResult down = duplex_transfer(conn.socket, upload, kBulkBytes, 20s);
  // The target sends FIN only once it has everything; that FIN must come through.
  CHECK(recv_until_eof(conn.socket, 20s).empty());
  conn.socket.reset();

  const auto reports = target.wait_reports(1, 20s);
  REQUIRE(reports.size() == 1);
  const ConnectionReport& r = reports[0];
  CHECK(r.error.empty());
  CHECK(r.received == kBulkBytes);
  CHECK(to_hex(r.received_sha256) == sha256_hex(upload));
  CHECK(r.sent == kBulkBytes);
  CHECK(down.received == kBulkBytes);
  CHECK(to_hex(down.received_sha256) == to_hex(r.sent_sha256));

  check_clean_shutdown(local);
  check_clean_shutdown(srv);
}

}  // namespace

TEST_CASE("interop control: 10 MiB both ways libev ss-local x libev ss-server",
          "[integration][interop][libev-only]") {
  bulk_both_ways(Impl::Libev, Impl::Libev);
}

TEST_CASE("interop: 10 MiB both ways our ss-local x libev ss-server", "[integration][interop]") {
  bulk_both_ways(Impl::Ours, Impl::Libev);
}

TEST_CASE("interop: 10 MiB both ways libev ss-local x our ss-server", "[integration][interop]") {
  bulk_both_ways(Impl::Libev, Impl::Ours);
}

TEST_CASE("10 MiB both ways our ss-local x our ss-server", "[integration]") {
  bulk_both_ways(Impl::Ours, Impl::Ours);
}

namespace {

// `n` clients connect at once through ss-local; each echoes a few KiB, byte-exact.
void concurrent_echo(Impl client, Impl server, size_t n) {
  const NodeOptions opt = options("chacha20-ietf-poly1305");
  TargetServer target(TargetBehavior::echo());
  Node srv = start_server(server, opt);
  Node local = start_local(client, opt, srv.port);

  const size_t failed = concurrent_socks_echo(local.port, target.port(), n,
                                              [](size_t i) { return 1024 + (i * 97) % 7168; });
  CHECK(failed == 0);
  CHECK(target.accepted() == n);

  check_clean_shutdown(local);
  check_clean_shutdown(srv);
}

}  // namespace

TEST_CASE("interop control: 100 concurrent connections libev x libev",
          "[integration][interop][libev-only]") {
  concurrent_echo(Impl::Libev, Impl::Libev, 100);
}

TEST_CASE("100 concurrent connections through our ss-local and ss-server", "[integration]") {
  concurrent_echo(Impl::Ours, Impl::Ours, 100);
}

namespace {

// F1: the target sends N bytes then FIN while it still reads. The client must get all N bytes
// then EOF, and what it sends before and after that EOF must still reach the target.
void half_close(Impl client, Impl server) {
  constexpr size_t kDown = 300 * 1024;
  constexpr size_t kUpBefore = 32 * 1024;
  constexpr size_t kUpAfter = 64 * 1024;
  const NodeOptions opt = options("aes-256-gcm");
  TargetServer target(TargetBehavior::fin_first(kDown));
  Node srv = start_server(server, opt);
  Node local = start_local(client, opt, srv.port);

  auto conn = socks5_connect(local.port, AddrType::IPv4, "127.0.0.1", target.port());
  REQUIRE(conn.reply.has_value());
  REQUIRE(conn.reply->rep == 0x00);
  const Bytes before = random_bytes(kUpBefore);
  send_all(conn.socket, before);
  const Bytes down = recv_until_eof(conn.socket, 20s);
  CHECK(down.size() == kDown);

  const Bytes after = random_bytes(kUpAfter);
  send_all(conn.socket, after);
  conn.socket.shutdown_write();
  const auto reports = target.wait_reports(1, 20s);
  const ConnectionReport& r = reports.at(0);
  CHECK(r.error.empty());
  CHECK(to_hex(r.sent_sha256) == sha256_hex(down));
  Bytes up = before;
  up.insert(up.end(), after.begin(), after.end());
  CHECK(r.received == up.size());
  CHECK(to_hex(r.received_sha256) == sha256_hex(up));
  // Both sides have sent FIN: the proxy must now close the client connection.
  CHECK(wait_peer_closed(conn.socket, 10s));

  check_clean_shutdown(local);
  check_clean_shutdown(srv);
}

}  // namespace

TEST_CASE("half-close F1: target FIN first while the client keeps sending (ours x ours)",
          "[integration]") {
  half_close(Impl::Ours, Impl::Ours);
}

namespace {

// CONNECT with each address type: IPv4 literal, IPv6 literal, domain name.
void address_types(Impl client, Impl server) {
  const NodeOptions opt = options("chacha20-ietf-poly1305");
  TargetServer v4(TargetBehavior::echo());
  TargetServer v6(TargetBehavior::echo(), false, "::1");
  TargetServer named(TargetBehavior::echo(), true);  // "localhost" may resolve to either family
  Node srv = start_server(server, opt);
  Node local = start_local(client, opt, srv.port);

  struct Case {
    AddrType atyp;
    std::string host;
    uint16_t port;
  };
  for (const Case& c :
       {Case{AddrType::IPv4, "127.0.0.1", v4.port()}, Case{AddrType::IPv6, "::1", v6.port()},
        Case{AddrType::Domain, "localhost", named.port()}}) {
    INFO("target " << c.host << " port " << c.port);
    auto conn = socks5_connect(local.port, c.atyp, c.host, c.port);
    REQUIRE(conn.reply.has_value());
    REQUIRE(conn.reply->rep == 0x00);
    const Bytes payload = random_bytes(20000);
    const TransferResult r = duplex_transfer(conn.socket, payload, payload.size(), 20s);
    CHECK(to_hex(r.received_sha256) == sha256_hex(payload));
  }

  check_clean_shutdown(local);
  check_clean_shutdown(srv);
}

}  // namespace

TEST_CASE("interop control: SOCKS5 CONNECT to IPv4/IPv6/domain targets libev x libev",
          "[integration][interop][libev-only]") {
  address_types(Impl::Libev, Impl::Libev);
}

TEST_CASE("SOCKS5 CONNECT to IPv4/IPv6/domain targets ours x ours", "[integration]") {
  address_types(Impl::Ours, Impl::Ours);
}

}  // namespace ss::test
