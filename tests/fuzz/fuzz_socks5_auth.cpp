// Fuzzes the RFC 1929 subnegotiation parser (client/inbound/socks5_auth.h) and the UserTable
// check behind it (client/inbound/users_file.h):
//   results are consistent under resumption; an Ok request's views are exactly UNAME and
//   PASSWD of the input; errors only for VER != 1, ULEN = 0 or PLEN = 0; a table holding the
//   parsed user accepts exactly its password (not a one-byte-different one, not another user).

#include <string>

#include "client/inbound/socks5_auth.h"
#include "client/inbound/users_file.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ss;
using namespace ss::socks5;
using Bytes = std::span<const uint8_t>;

struct Result {
  ParseStatus status;
  UserPass creds;
  size_t consumed;
  bool operator==(const Result& o) const {
    return status == o.status && consumed == o.consumed &&
           (status != ParseStatus::Ok ||
            (creds.user == o.creds.user && creds.password == o.creds.password));
  }
};

Result parse(Bytes in) {
  Result r{ParseStatus::NeedMore, {}, static_cast<size_t>(-1)};
  r.status = parse_auth_request(in, r.creds, r.consumed);
  if (r.status != ParseStatus::Ok) r.consumed = static_cast<size_t>(-1);
  return r;
}

void check_table(const UserPass& c) {
  UserTable table;
  FUZZ_CHECK(table.add(c.user, c.password));
  FUZZ_CHECK(!table.add(c.user, "other"));
  FUZZ_CHECK(table.check(c.user, c.password));
  std::string wrong(c.password);
  wrong.back() = static_cast<char>(wrong.back() ^ 1);
  FUZZ_CHECK(!table.check(c.user, wrong));
  FUZZ_CHECK(!table.check(c.user, std::string(c.password) + "x"));
  FUZZ_CHECK(!table.check(std::string(c.user) + "x", c.password));
  // Moving the boundary between name and password changes the pair.
  const std::string joined = std::string(c.user) + std::string(c.password);
  FUZZ_CHECK(!table.check(joined.substr(0, c.user.size() + 1), joined.substr(c.user.size() + 1)));
}

void check_ok(Bytes in, const Result& r) {
  const size_t ulen = in[1];
  const size_t plen = in[2 + ulen];
  FUZZ_CHECK(in[0] == kAuthVersion && ulen >= 1 && plen >= 1);
  FUZZ_CHECK(r.consumed == 3 + ulen + plen && r.consumed <= kMaxAuthRequestLen);
  const auto* base = reinterpret_cast<const char*>(in.data());
  FUZZ_CHECK(r.creds.user.data() == base + 2 && r.creds.user.size() == ulen);
  FUZZ_CHECK(r.creds.password.data() == base + 3 + ulen && r.creds.password.size() == plen);
  FUZZ_CHECK(parse(in.first(r.consumed - 1)).status == ParseStatus::NeedMore);
  check_table(r.creds);
  uint8_t reply[kAuthReplyLen];
  FUZZ_CHECK(make_auth_reply(true, reply) == kAuthReplyLen && reply[0] == 1 && reply[1] == 0);
  FUZZ_CHECK(make_auth_reply(false, reply) == kAuthReplyLen && reply[1] == 1);
}

void check_whole(Bytes in, const Result& r) {
  if (r.status == ParseStatus::Ok) {
    check_ok(in, r);
  } else if (r.status == ParseStatus::Error) {
    // VER != 1, ULEN = 0 or PLEN = 0.
    FUZZ_CHECK(!in.empty());
    FUZZ_CHECK(in[0] != kAuthVersion || (in.size() >= 2 && in[1] == 0) ||
               (in.size() >= 3u + in[1] && in[2 + in[1]] == 0));
  } else {
    FUZZ_CHECK(in.size() < kMaxAuthRequestLen);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Bytes in(data, size);
  const Result whole = parse(in);
  check_whole(in, whole);
  fuzz::check_prefixes(in, kMaxAuthRequestLen, parse, whole);
  return 0;
}
