// ss-redir's inbound: the target from the accepted socket (REDIRECT: SO_ORIGINAL_DST; TPROXY:
// the socket's own address), and Close when the socket does not say.

#include "client/inbound/redir_inbound.h"

#include <catch2/catch.hpp>

#include "relay/ip_policy.h"

namespace ss {
namespace {

Address addr(const char* host, uint16_t port) {
  std::optional<Address> a = make_address(host, port);
  REQUIRE(a);
  return *a;
}

AcceptInfo info(const char* local, uint16_t local_port, std::optional<Address> original = {}) {
  AcceptInfo i;
  i.local = addr(local, local_port);
  i.peer = addr("10.200.0.2", 40000);
  i.original_dst = std::move(original);
  return i;
}

}  // namespace

TEST_CASE("redir: REDIRECT connects to SO_ORIGINAL_DST without reading", "[client]") {
  RedirInbound in(false);
  CHECK(in.wants_original_dst());
  CHECK(in.start(info("10.200.0.1", 1080, addr("10.201.0.1", 80))) == InboundAction::Connect);
  CHECK(in.target() == addr("10.201.0.1", 80));

  RedirInbound v6(false);
  CHECK(v6.start(info("fd00:200::1", 1080, addr("fd00:201::1", 443))) == InboundAction::Connect);
  CHECK(v6.target() == addr("fd00:201::1", 443));
}

TEST_CASE("redir: an IPv4-mapped original destination becomes IPv4", "[client]") {
  RedirInbound in(false);
  CHECK(in.start(info("10.200.0.1", 1080, addr("::ffff:10.201.0.1", 80))) ==
        InboundAction::Connect);
  CHECK(in.target() == addr("10.201.0.1", 80));
  CHECK(in.target().type == Address::Type::IPv4);
}

TEST_CASE("redir: REDIRECT without a NAT entry, or one that changed nothing, closes", "[client]") {
  RedirInbound none(false);
  CHECK(none.start(info("10.200.0.1", 1080)) == InboundAction::Close);
  RedirInbound zero(false);
  CHECK(zero.start(info("10.200.0.1", 1080, Address{})) == InboundAction::Close);
  // The client connected to ss-redir's own port: the "original" destination is ss-redir.
  RedirInbound self(false);
  CHECK(self.start(info("10.200.0.1", 1080, addr("10.200.0.1", 1080))) == InboundAction::Close);
}

TEST_CASE("redir: TPROXY connects to the socket's own address", "[client]") {
  RedirInbound in(true);
  CHECK_FALSE(in.wants_original_dst());
  // SO_ORIGINAL_DST is not asked for, and ignored if present.
  CHECK(in.start(info("10.201.0.1", 80, addr("192.0.2.9", 9))) == InboundAction::Connect);
  CHECK(in.target() == addr("10.201.0.1", 80));

  RedirInbound v6(true);
  CHECK(v6.start(info("fd00:201::1", 8080)) == InboundAction::Connect);
  CHECK(v6.target() == addr("fd00:201::1", 8080));

  RedirInbound unknown(true);
  AcceptInfo no_name;  // getsockname failed
  CHECK(unknown.start(no_name) == InboundAction::Close);
}

TEST_CASE("redir: TPROXY refuses a connection made straight to its own port", "[client]") {
  // Our addresses in this test: 10.200.0.1 and ::1.
  const RedirInbound::OwnAddress own = [](const Address& a) {
    return a == addr("10.200.0.1", a.port) || a == addr("::1", a.port);
  };
  RedirInbound self(true, 1080, own);
  CHECK(self.start(info("10.200.0.1", 1080)) == InboundAction::Close);
  RedirInbound self_mapped(true, 1080, own);  // a v4 client on a dual-stack listener
  CHECK(self_mapped.start(info("::ffff:10.200.0.1", 1080)) == InboundAction::Close);
  RedirInbound self6(true, 1080, own);
  CHECK(self6.start(info("::1", 1080)) == InboundAction::Close);
  // Intercepted: the same port on a foreign address, or our address on another port.
  RedirInbound foreign(true, 1080, own);
  CHECK(foreign.start(info("10.201.0.1", 1080)) == InboundAction::Connect);
  CHECK(foreign.target() == addr("10.201.0.1", 1080));
  RedirInbound other_port(true, 1080, own);
  CHECK(other_port.start(info("10.200.0.1", 80)) == InboundAction::Connect);
}

TEST_CASE("redir: is_own_address knows loopback and refuses a documentation address", "[client]") {
  sockaddr_storage sa{};
  REQUIRE(literal_to_sockaddr("127.0.0.1", 1080, sa));
  CHECK(is_own_address(reinterpret_cast<const sockaddr*>(&sa)));
  REQUIRE(literal_to_sockaddr("192.0.2.77", 1080, sa));  // TEST-NET-1, never assigned here
  CHECK_FALSE(is_own_address(reinterpret_cast<const sockaddr*>(&sa)));
}

TEST_CASE("redir: client bytes are never parsed", "[client]") {
  RedirInbound in(false);
  REQUIRE(in.start(info("10.200.0.1", 1080, addr("10.201.0.1", 80))) == InboundAction::Connect);
  const uint8_t junk[] = {5, 1, 0, 0xFF};
  ReplyBytes reply;
  EarlyData early;
  CHECK(in.feed(junk, sizeof junk, reply, early) == InboundAction::NeedMore);
  CHECK(reply.len == 0);
  CHECK(early.len == 0);
  CHECK(in.name() == std::string("redir"));
}

}  // namespace ss
