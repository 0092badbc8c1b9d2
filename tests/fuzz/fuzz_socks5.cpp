// Fuzzes the SOCKS5 parsers of ss-local (client/socks5.h) on the same bytes:
//   parse_greeting, parse_request: results are consistent under resumption (every prefix gives
//     NeedMore or exactly the whole input's result; an Ok result is reached at exactly
//     `consumed` bytes), Ok results re-encode to the bytes they came from, errors carry the
//     documented reply code;
//   parse_udp_header: never NeedMore, Ok agrees with parse_address and re-encodes exactly;
//   make_reply / make_udp_header on whatever address was parsed stay within their bounds.

#include <cstring>
#include <optional>
#include <span>

#include "client/socks5.h"
#include "relay/address.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ss;
using namespace ss::socks5;
using Bytes = std::span<const uint8_t>;

// Every address the parsers return re-encodes to exactly `wire`.
void check_encodes_to(const Address& a, Bytes wire) {
  FUZZ_CHECK(a.encoded_size() == wire.size());
  FUZZ_CHECK(wire.size() <= kMaxAddressLen);
  uint8_t buf[kMaxAddressLen];
  FUZZ_CHECK(encode_address(a, buf) == wire.size());
  FUZZ_CHECK(std::memcmp(buf, wire.data(), wire.size()) == 0);
}

// Reply and UDP header writers on an address (as a BND address and as a datagram source).
void check_writers(const Address& a) {
  uint8_t reply[kMaxReplyLen];
  for (const Address* bind : {&a, static_cast<const Address*>(nullptr)}) {
    const size_t n = make_reply(Reply::Succeeded, bind, reply);
    FUZZ_CHECK(n == 10 || n == 22);
    FUZZ_CHECK(reply[0] == kVersion && reply[2] == 0);
    Address back;
    size_t used = 0;
    FUZZ_CHECK(parse_address(Bytes(reply + 3, n - 3), back, used) == ParseStatus::Ok);
    FUZZ_CHECK(used == n - 3);
    FUZZ_CHECK(back.port == (bind ? bind->port : 0));
    FUZZ_CHECK(back.type != Address::Type::Domain);
  }
  uint8_t udp[kMaxUdpHeaderLen];
  const size_t h = make_udp_header(a, udp);
  FUZZ_CHECK(h == 3 + a.encoded_size() && h <= kMaxUdpHeaderLen);
  uint8_t frag = 0xAA;
  Address back;
  size_t header_len = 0;
  FUZZ_CHECK(parse_udp_header(Bytes(udp, h), frag, back, header_len) == ParseStatus::Ok);
  FUZZ_CHECK(frag == 0 && header_len == h && back == a);
}

// --- greeting ---

struct GreetingResult {
  ParseStatus status;
  Greeting greeting;
  size_t consumed;
  bool operator==(const GreetingResult& o) const {
    return status == o.status && consumed == o.consumed &&
           greeting.offers_no_auth == o.greeting.offers_no_auth &&
           greeting.offers_user_pass == o.greeting.offers_user_pass;
  }
};

GreetingResult greeting(Bytes in) {
  GreetingResult r{ParseStatus::NeedMore, {}, static_cast<size_t>(-1)};
  r.status = parse_greeting(in, r.greeting, r.consumed);
  if (r.status != ParseStatus::Ok) r.consumed = static_cast<size_t>(-1);  // unspecified
  if (r.status != ParseStatus::Ok) r.greeting = {};
  return r;
}

void check_greeting(Bytes in, const GreetingResult& whole) {
  if (whole.status == ParseStatus::Ok) {
    FUZZ_CHECK(in.size() >= 2 && whole.consumed == 2u + in[1] && whole.consumed <= in.size());
    bool no_auth = false, user_pass = false;
    for (uint8_t m : in.subspan(2, in[1])) {
      no_auth |= m == kMethodNoAuth;
      user_pass |= m == kMethodUserPass;
    }
    FUZZ_CHECK(whole.greeting.offers_no_auth == no_auth);
    FUZZ_CHECK(whole.greeting.offers_user_pass == user_pass);
    FUZZ_CHECK(greeting(in.first(whole.consumed)) == whole);
    FUZZ_CHECK(greeting(in.first(whole.consumed - 1)).status == ParseStatus::NeedMore);
  } else if (whole.status == ParseStatus::Error) {
    FUZZ_CHECK(!in.empty() && in[0] != kVersion);
  } else {
    FUZZ_CHECK(in.size() < kMaxGreetingLen);
  }
}

// --- request ---

struct RequestResult {
  ParseStatus status;
  Request request;
  size_t consumed;
  std::optional<Reply> error_reply;
  bool operator==(const RequestResult& o) const {
    return status == o.status && consumed == o.consumed && error_reply == o.error_reply &&
           (status != ParseStatus::Ok ||
            (request.command == o.request.command && request.target == o.request.target));
  }
};

RequestResult request(Bytes in) {
  RequestResult r{ParseStatus::NeedMore, {}, static_cast<size_t>(-1), std::nullopt};
  r.status = parse_request(in, r.request, r.consumed, r.error_reply);
  if (r.status != ParseStatus::Ok) r.consumed = static_cast<size_t>(-1);
  return r;
}

void check_request(Bytes in, const RequestResult& whole) {
  switch (whole.status) {
    case ParseStatus::Ok: {
      FUZZ_CHECK(!whole.error_reply);
      FUZZ_CHECK(whole.consumed >= 3 + 5 && whole.consumed <= in.size());  // 5: a 1-byte domain
      FUZZ_CHECK(whole.consumed <= kMaxRequestLen);
      FUZZ_CHECK(in[0] == kVersion && in[1] == static_cast<uint8_t>(whole.request.command));
      FUZZ_CHECK(in[1] >= 1 && in[1] <= 3);
      FUZZ_CHECK(whole.request.target.port != 0 || whole.request.command == Command::UdpAssociate);
      check_encodes_to(whole.request.target, in.subspan(3, whole.consumed - 3));
      FUZZ_CHECK(request(in.first(whole.consumed)) == whole);
      FUZZ_CHECK(request(in.first(whole.consumed - 1)).status == ParseStatus::NeedMore);
      check_writers(whole.request.target);
      break;
    }
    case ParseStatus::Error:
      FUZZ_CHECK(!in.empty());
      if (in[0] != kVersion) {
        FUZZ_CHECK(!whole.error_reply);
      } else if (in[1] < 1 || in[1] > 3) {
        FUZZ_CHECK(whole.error_reply == Reply::CommandNotSupported);
      } else if (in[3] != 1 && in[3] != 3 && in[3] != 4) {
        FUZZ_CHECK(whole.error_reply == Reply::AddressTypeNotSupported);
      } else {
        FUZZ_CHECK(whole.error_reply == Reply::GeneralFailure);
      }
      break;
    case ParseStatus::NeedMore:
      FUZZ_CHECK(!whole.error_reply);
      FUZZ_CHECK(in.size() < kMaxRequestLen);
      break;
  }
}

// --- UDP header ---

void check_udp(Bytes in) {
  uint8_t frag = 0xAA;
  Address target;
  size_t header_len = static_cast<size_t>(-1);
  const ParseStatus s = parse_udp_header(in, frag, target, header_len);
  FUZZ_CHECK(s != ParseStatus::NeedMore);

  Address direct;
  size_t used = 0;
  const ParseStatus d =
      in.size() > 3 ? parse_address(in.subspan(3), direct, used) : ParseStatus::NeedMore;
  FUZZ_CHECK((s == ParseStatus::Ok) == (d == ParseStatus::Ok));
  if (s != ParseStatus::Ok) return;
  FUZZ_CHECK(frag == in[2]);
  FUZZ_CHECK(header_len == 3 + used && header_len <= in.size() && target == direct);
  check_encodes_to(target, in.subspan(3, used));
  check_writers(target);
}

// Prefix lengths to compare against the whole input: every one short enough to matter (no
// SOCKS5 message is longer than kMaxRequestLen), plus a few input-chosen longer ones.
template <typename F>
void for_each_prefix(Bytes in, F&& f) {
  const size_t dense = std::min(in.size(), kMaxRequestLen + 2);
  for (size_t n = 0; n <= dense; ++n) f(in.first(n));
  if (in.size() > dense) {
    ss::fuzz::Rng rng(ss::fuzz::hash_bytes(in));
    for (int i = 0; i < 4; ++i) f(in.first(dense + 1 + rng.below(in.size() - dense)));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Bytes in(data, size);

  const GreetingResult g = greeting(in);
  check_greeting(in, g);
  for_each_prefix(in, [&](Bytes p) {
    const GreetingResult r = greeting(p);
    FUZZ_CHECK(r.status == ParseStatus::NeedMore || r == g);
  });

  const RequestResult q = request(in);
  check_request(in, q);
  for_each_prefix(in, [&](Bytes p) {
    const RequestResult r = request(p);
    FUZZ_CHECK(r.status == ParseStatus::NeedMore || r == q);
  });

  check_udp(in);
  return 0;
}
