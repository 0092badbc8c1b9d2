// Fuzzes the address header codec (relay/address.h): parse_address on arbitrary bytes.
//   - Ok: `consumed` is encoded_size(), encode_address() writes back exactly those bytes, and the
//     address survives the other conversions (sockaddr for IPs, make_address for domains,
//     to_string + parse_host_port where that form is unambiguous);
//   - resumption: every prefix gives NeedMore or exactly the whole input's result, and an Ok
//     result is reached at exactly `consumed` bytes;
//   - NeedMore only for inputs shorter than the longest header.

#include <cstring>
#include <span>
#include <string>

#include "relay/address.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ss;
using Bytes = std::span<const uint8_t>;

struct Result {
  ParseStatus status;
  Address address;
  size_t consumed;
  bool operator==(const Result& o) const {
    return status == o.status &&
           (status != ParseStatus::Ok || (address == o.address && consumed == o.consumed));
  }
};

Result parse(Bytes in) {
  Result r{ParseStatus::NeedMore, {}, 0};
  r.status = parse_address(in, r.address, r.consumed);
  return r;
}

bool is_ip_literal(const std::string& host) {
  const std::optional<Address> a = make_address(host, 1);
  return a && a->type != Address::Type::Domain;
}

void check_ok(Bytes in, const Result& r) {
  const Address& a = r.address;
  FUZZ_CHECK(r.consumed <= in.size() && r.consumed <= kMaxAddressLen);
  FUZZ_CHECK(static_cast<uint8_t>(a.type) == in[0]);
  FUZZ_CHECK(a.encoded_size() == r.consumed);
  uint8_t buf[kMaxAddressLen];
  FUZZ_CHECK(encode_address(a, buf) == r.consumed);
  FUZZ_CHECK(std::memcmp(buf, in.data(), r.consumed) == 0);
  FUZZ_CHECK(parse(in.first(r.consumed)) == r);
  FUZZ_CHECK(parse(in.first(r.consumed - 1)).status == ParseStatus::NeedMore);

  const std::string text = a.to_string();
  FUZZ_CHECK(!text.empty());

  if (a.type != Address::Type::Domain) {
    sockaddr_storage ss{};
    FUZZ_CHECK(a.to_sockaddr(ss));
    const Address back = Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss));
    FUZZ_CHECK(back == a);
    if (a.port != 0) {
      const std::optional<Address> parsed = parse_host_port(text);
      FUZZ_CHECK(parsed && *parsed == a);
    }
    return;
  }

  sockaddr_storage ss{};
  FUZZ_CHECK(!a.to_sockaddr(ss));
  FUZZ_CHECK(!a.host.empty() && a.host.size() <= 255);
  // A host name the parser accepted is one make_address accepts too, except "[...]", which
  // make_address reserves for IPv6 literals.
  const std::optional<Address> made = make_address(a.host, a.port);
  if (a.host.front() == '[') {
    FUZZ_CHECK(!made || made->type == Address::Type::IPv6);
  } else {
    FUZZ_CHECK(made.has_value());
    if (made->type == Address::Type::Domain) FUZZ_CHECK(*made == a);
  }
  // "host:port" comes back unchanged when the host has no ':' and does not start with '['.
  if (a.port != 0 && a.host.find(':') == std::string::npos && a.host.front() != '[' &&
      !is_ip_literal(a.host)) {
    const std::optional<Address> parsed = parse_host_port(text);
    FUZZ_CHECK(parsed && *parsed == a);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Bytes in(data, size);
  const Result whole = parse(in);
  switch (whole.status) {
    case ParseStatus::Ok:
      check_ok(in, whole);
      break;
    case ParseStatus::Error:
      FUZZ_CHECK(!in.empty());
      break;
    case ParseStatus::NeedMore:
      FUZZ_CHECK(in.size() < kMaxAddressLen);
      break;
  }
  const size_t dense = std::min(in.size(), kMaxAddressLen + 1);
  for (size_t n = 0; n <= dense; ++n) {
    const Result r = parse(in.first(n));
    FUZZ_CHECK(r.status == ParseStatus::NeedMore || r == whole);
  }
  return 0;
}
