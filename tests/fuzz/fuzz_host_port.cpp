// Fuzzes the text forms of addresses (relay/address.h): parse_host_port ("host:port",
// "[v6]:port") and make_address (a bare host) on arbitrary text.
//   - parse_host_port: Ok means a port from 1 to 65535, and to_string() parses back to the same
//     address; domains hold no ':' and are valid host names (they encode and parse back);
//   - make_address: Ok domains are the text itself; every result encodes to at most
//     kMaxAddressLen bytes and parse_address reads it back unchanged.

#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "relay/address.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ss;

void check_wire_round_trip(const Address& a) {
  FUZZ_CHECK(a.encoded_size() <= kMaxAddressLen);
  uint8_t buf[kMaxAddressLen];
  const size_t n = encode_address(a, buf);
  FUZZ_CHECK(n == a.encoded_size());
  Address back;
  size_t used = 0;
  FUZZ_CHECK(parse_address(std::span<const uint8_t>(buf, n), back, used) == ParseStatus::Ok);
  FUZZ_CHECK(used == n && back == a);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const std::optional<Address> hp = parse_host_port(text);
  if (hp) {
    FUZZ_CHECK(hp->port != 0);
    FUZZ_CHECK(text.size() > 2);
    if (hp->type == Address::Type::Domain) {
      FUZZ_CHECK(hp->host.find(':') == std::string::npos);
      FUZZ_CHECK(!hp->host.empty() && hp->host.size() <= 255);
      FUZZ_CHECK(text.substr(0, hp->host.size()) == hp->host);
    }
    check_wire_round_trip(*hp);
    const std::string again = hp->to_string();
    const std::optional<Address> back = parse_host_port(again);
    FUZZ_CHECK(back && *back == *hp);
  }

  // The same text as a bare host; the port comes from the length so it varies without a byte.
  const auto port = static_cast<uint16_t>(size * 257);
  const std::optional<Address> made = make_address(text, port);
  if (made) {
    FUZZ_CHECK(made->port == port);
    FUZZ_CHECK(!text.empty() && text.size() <= 255);
    if (made->type == Address::Type::Domain) {
      FUZZ_CHECK(made->host == text);
      FUZZ_CHECK(text.front() != '[');
    }
    check_wire_round_trip(*made);
    if (port != 0) {
      const std::optional<Address> back = parse_host_port(made->to_string());
      // A domain with a ':' prints bracketed, which parse_host_port keeps for IPv6 only.
      if (made->type != Address::Type::Domain || made->host.find(':') == std::string::npos) {
        FUZZ_CHECK(back && *back == *made);
      } else {
        FUZZ_CHECK(!back || back->type == Address::Type::IPv6);
      }
    }
  }
  return 0;
}
