// SOCKS5 reply codes of our ss-local (hostile-inputs §4.1 S8, S10, S18).

#include <catch2/catch.hpp>

#include "tests/integration/harness.h"

namespace ss::test {
namespace {

using namespace std::chrono_literals;

// Our ss-local, pointed at a server port where nothing listens.
Node local_with_dead_server(Impl impl) {
  const uint16_t dead_server_port = pick_free_port();
  const NodeOptions opt{"chacha20-ietf-poly1305", random_token(24), 60, {}};
  return start_local(impl, opt, dead_server_port);
}

void expect_reply_then_close(Socks5Connection& conn, uint8_t rep) {
  REQUIRE(conn.reply.has_value());
  CHECK(int{conn.reply->rep} == int{rep});
  // RFC 1928 §6: after a failure reply the server closes the connection (within 10 s).
  CHECK(wait_peer_closed(conn.socket, 10s));
}

}  // namespace

TEST_CASE("SOCKS5: ss-server refuses the connection -> REP 0x05 (S18)", "[integration]") {
  Node local = local_with_dead_server(Impl::Ours);
  TargetServer target(TargetBehavior::echo());
  auto conn = socks5_connect(local.port, AddrType::IPv4, "127.0.0.1", target.port());
  expect_reply_then_close(conn, 0x05);
  CHECK(target.accepted() == 0);
  check_clean_shutdown(local);
}

TEST_CASE("SOCKS5: BIND is not supported -> REP 0x07 (S8)", "[integration]") {
  Node local = local_with_dead_server(Impl::Ours);
  const Bytes req = socks5_request(0x02, AddrType::IPv4, "127.0.0.1", 80);
  auto conn = socks5_raw(local.port, req);
  expect_reply_then_close(conn, 0x07);
  check_clean_shutdown(local);
}

TEST_CASE("SOCKS5: unknown ATYP -> REP 0x08 (S10)", "[integration]") {
  const uint8_t atyp = GENERATE(as<uint8_t>{}, 0x00, 0x02, 0x05, 0xFF);
  INFO("ATYP " << int{atyp});
  Node local = local_with_dead_server(Impl::Ours);
  const Bytes req = {0x05, 0x01, 0x00, atyp, 127, 0, 0, 1, 0x00, 0x50};
  auto conn = socks5_raw(local.port, req);
  expect_reply_then_close(conn, 0x08);
  check_clean_shutdown(local);
}

}  // namespace ss::test
