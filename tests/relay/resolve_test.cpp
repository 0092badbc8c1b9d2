// relay/resolve.h: pick_address.

#include "relay/resolve.h"

#include <sys/socket.h>

#include <catch2/catch.hpp>

namespace ss {
namespace {

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
