// relay/net/resolve.h: LookupArgs, pick_address.

#include "relay/net/resolve.h"

#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <string>

namespace ss {
namespace {

TEST_CASE("LookupArgs: any family, the given type and flags, the port as text", "[relay]") {
  const LookupArgs a(SOCK_STREAM, AI_PASSIVE | AI_NUMERICSERV, 65535);
  CHECK(a.hints.ai_family == AF_UNSPEC);
  CHECK(a.hints.ai_socktype == SOCK_STREAM);
  CHECK(a.hints.ai_flags == (AI_PASSIVE | AI_NUMERICSERV));
  CHECK(a.hints.ai_protocol == 0);
  CHECK(a.hints.ai_addr == nullptr);
  CHECK(a.hints.ai_next == nullptr);
  CHECK(std::string(a.port) == "65535");
  const LookupArgs b(SOCK_DGRAM, 0, 0);
  CHECK(b.hints.ai_socktype == SOCK_DGRAM);
  CHECK(b.hints.ai_flags == 0);
  CHECK(std::string(b.port) == "0");
}

TEST_CASE("pick_address: the preferred family first, else the resolver's first answer", "[relay]") {
  addrinfo v4a{};
  addrinfo v6{};
  addrinfo v4b{};
  v4a.ai_family = AF_INET;
  v4a.ai_next = &v6;
  v6.ai_family = AF_INET6;
  v6.ai_next = &v4b;
  v4b.ai_family = AF_INET;
  CHECK(pick_address(&v4a, false) == &v4a);
  CHECK(pick_address(&v4a, true) == &v6);
  CHECK(pick_address(&v6, false) == &v4b);
  CHECK(pick_address(&v6, true) == &v6);
  CHECK(pick_address(&v4b, true) == &v4b);  // no IPv6 answer: the first one
  v4b.ai_family = AF_INET6;
  CHECK(pick_address(&v6, false) == &v6);  // no IPv4 answer: the first one
}

}  // namespace
}  // namespace ss
