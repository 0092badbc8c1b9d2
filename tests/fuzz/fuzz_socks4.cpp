// Fuzzes the SOCKS4 / SOCKS4a request parser of ss-local's mixed port (client/inbound/socks4.h):
//   results are consistent under resumption (every prefix gives NeedMore or exactly the whole
//   input's result; an Ok result is reached at exactly `consumed` bytes); an Ok request matches
//   the bytes it came from (command, port, USERID, IPv4 address or host name through
//   make_address); every failure names a cause the bytes show; make_reply stays in its 8 bytes.

#include <cstring>
#include <string_view>

#include "client/inbound/socks4.h"
#include "relay/address.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ss;
using namespace ss::socks4;
using Bytes = std::span<const uint8_t>;

struct Result {
  ParseStatus status;
  Request request;
  size_t consumed;
  Failure failure;
  bool operator==(const Result& o) const {
    return status == o.status && consumed == o.consumed && failure == o.failure &&
           (status != ParseStatus::Ok ||
            (request.target == o.request.target && request.user_id == o.request.user_id &&
             request.socks4a == o.request.socks4a));
  }
};

Result parse(Bytes in) {
  Result r{ParseStatus::NeedMore, {}, static_cast<size_t>(-1), Failure::None};
  r.status = parse_request(in, r.request, r.consumed, r.failure);
  if (r.status != ParseStatus::Ok) r.consumed = static_cast<size_t>(-1);  // unspecified
  return r;
}

std::string_view text(Bytes b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

void check_ok(Bytes in, const Result& r) {
  FUZZ_CHECK(r.failure == Failure::None);
  FUZZ_CHECK(r.consumed >= kFixedLen + 1 && r.consumed <= in.size());
  FUZZ_CHECK(r.consumed <= kMaxRequestLen);
  FUZZ_CHECK(in[0] == kVersion && in[1] == static_cast<uint8_t>(Command::Connect));
  const auto port = static_cast<uint16_t>((in[2] << 8) | in[3]);
  FUZZ_CHECK(port != 0 && r.request.target.port == port);
  const Request& q = r.request;
  FUZZ_CHECK(q.user_id.size() <= kMaxUserIdLen);
  FUZZ_CHECK(text(in.subspan(kFixedLen, q.user_id.size())) == q.user_id);
  const size_t user_end = kFixedLen + q.user_id.size();
  FUZZ_CHECK(in[user_end] == 0);
  const bool is_4a = in[4] == 0 && in[5] == 0 && in[6] == 0 && in[7] != 0;
  FUZZ_CHECK(q.socks4a == is_4a);
  if (is_4a) {
    const size_t host_len = r.consumed - user_end - 2;
    FUZZ_CHECK(host_len >= 1 && host_len <= kMaxHostLen && in[r.consumed - 1] == 0);
    const Bytes host = in.subspan(user_end + 1, host_len);
    FUZZ_CHECK(std::memchr(host.data(), 0, host.size()) == nullptr);
    const std::optional<Address> expected = make_address(text(host), port);
    FUZZ_CHECK(expected && *expected == q.target);
  } else {
    FUZZ_CHECK(r.consumed == user_end + 1);
    FUZZ_CHECK(q.target.type == Address::Type::IPv4);
    FUZZ_CHECK(std::memcmp(q.target.ip.data(), in.data() + 4, 4) == 0);
  }
  FUZZ_CHECK(parse(in.first(r.consumed)) == r);
  FUZZ_CHECK(parse(in.first(r.consumed - 1)).status == ParseStatus::NeedMore);

  uint8_t reply[kReplyLen + 1];
  reply[kReplyLen] = 0xA5;
  FUZZ_CHECK(make_reply(Reply::Granted, &q.target, reply) == kReplyLen);
  FUZZ_CHECK(reply[0] == 0 && reply[1] == 0x5A && reply[kReplyLen] == 0xA5);
  if (q.target.type == Address::Type::IPv4) {
    FUZZ_CHECK(reply[2] == in[2] && reply[3] == in[3]);
    FUZZ_CHECK(std::memcmp(reply + 4, q.target.ip.data(), 4) == 0);
  }
}

void check_error(Bytes in, const Result& r) {
  FUZZ_CHECK(!in.empty());
  switch (r.failure) {
    case Failure::NotSocks4:
      FUZZ_CHECK(in[0] != kVersion);
      break;
    case Failure::UnsupportedCommand:
      FUZZ_CHECK(in[0] == kVersion && in.size() >= 2 && in[1] != 1);
      break;
    case Failure::PortZero:
      FUZZ_CHECK(in[1] == 1 && in.size() >= 4 && in[2] == 0 && in[3] == 0);
      break;
    case Failure::UserIdTooLong:
      FUZZ_CHECK(in.size() > kFixedLen + kMaxUserIdLen);
      FUZZ_CHECK(std::memchr(in.data() + kFixedLen, 0, kMaxUserIdLen + 1) == nullptr);
      break;
    case Failure::HostTooLong:
    case Failure::BadHost:
      FUZZ_CHECK(in.size() >= kFixedLen && in[4] == 0 && in[5] == 0 && in[6] == 0 && in[7] != 0);
      break;
    case Failure::None:
      FUZZ_CHECK(false);
  }
}

void check_whole(Bytes in, const Result& r) {
  if (r.status == ParseStatus::Ok) {
    check_ok(in, r);
  } else if (r.status == ParseStatus::Error) {
    check_error(in, r);
  } else {
    FUZZ_CHECK(r.failure == Failure::None && in.size() < kMaxRequestLen);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Bytes in(data, size);
  const Result whole = parse(in);
  check_whole(in, whole);
  fuzz::check_prefixes(in, kMaxRequestLen, parse, whole);
  return 0;
}
