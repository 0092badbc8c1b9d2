// ss-redir's inbound: the target from the accepted socket (REDIRECT: SO_ORIGINAL_DST; TPROXY:
// the socket's own address), and Close when the socket does not say.

#include "client/inbound/redir_inbound.h"

#include <catch2/catch.hpp>

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
