// Fuzzes ss-local's mixed port as the connection drives it (client/inbound/mixed_inbound.h and
// the SOCKS5, SOCKS4 and HTTP inbounds behind it), bytes in and actions out.
//
// Input: [mode][client bytes...]. Mode bit 0: a user table (alice, bob) is configured; bit 1: UDP
// is relayed; bit 2: udp_only (CONNECT not served); bits 3-5: which libuv error a failed connect
// reports. The client bytes are fed three times, each time to a new inbound:
//   A  whole, in one feed, with a large early data buffer;
//   B  split at input-chosen points, same buffer size: after Connect the rest goes through
//      forwardable() piece by piece, as the connection relays it;
//   C  split at other points into an exact-size buffer (ASan sees any write past it) that is
//      already partly used and has input-chosen room left.
// Checks: a decision (any action but NeedMore) is final and reached by A and B alike, with the
// same reply bytes, target, upstream bytes (early data, then what forwardable() passed), user and
// auth outcome; C decides the same, or closes where the early data did not fit; replies stay
// within ReplyBytes::kCapacity and early data within early.cap, never touching what the buffer
// held; a Reply always says something, a first byte that is no protocol gets Close and nothing;
// forwardable() never passes more than it is given, and after it held back bytes it passes none;
// the replies for connected, failed, refused and UDP are non-empty where the protocol has them.
// HTTP keep-alive: once a forwarded request is done, each run answers it with a canned response
// and reads the next request from the bytes the inbound held (as the connection does between
// exchanges), up to 8 times; A, B and C must see the same chain of requests.

#include <uv.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/inbound/mixed_inbound.h"
#include "client/inbound/users_file.h"
#include "relay/address.h"
#include "relay/inbound.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ss;
using Bytes = std::span<const uint8_t>;

constexpr size_t kBigCap = 64 * 1024;  // more than any input plus a rewritten head

const int kErrors[8] = {UV_ECONNREFUSED, UV_ENETUNREACH, UV_EHOSTUNREACH, UV_ETIMEDOUT,
                        UV_EAI_NONAME,   UV_ECONNRESET,  UV_EAI_AGAIN,    UV_ECANCELED};

const UserTable& users() {
  static const UserTable t = [] {
    UserTable u;
    u.add("alice", "secret");
    u.add("bob", "hunter2");
    return u;
  }();
  return t;
}

struct Mode {
  bool with_users;
  bool udp;
  bool connect;
  int uv_err;
};

struct Outcome {
  InboundAction action = InboundAction::NeedMore;
  std::string reply;
  std::string upstream;
  Address target;
  std::string user;
  bool auth_failed = false;
  bool forward_stopped = false;  // forwardable() held bytes back
  std::string chain;             // the later exchanges: each action, target, early data, reply
};

std::string as_string(const uint8_t* p, size_t n) {
  return std::string(reinterpret_cast<const char*>(p), n);
}

std::string reply_text(const ReplyBytes& r) {
  FUZZ_CHECK(r.len <= ReplyBytes::kCapacity);
  return as_string(r.data, r.len);
}

// Whether the protocol picked by the first byte is one the mixed port serves.
bool served_first_byte(uint8_t b, const Mode& m) {
  return b == 5 || (m.connect && (b == 4 || (b >= 'A' && b <= 'Z')));
}

// The replies after a decision: sizes, and that they say something where the protocol must.
void check_after(Inbound& ib, const Outcome& o, const Mode& m, uint8_t first) {
  ReplyBytes r;
  switch (o.action) {
    case InboundAction::Connect: {
      FUZZ_CHECK(o.target.port != 0);
      FUZZ_CHECK(o.target.type != Address::Type::Domain ||
                 (!o.target.host.empty() && o.target.host.size() <= 255));
      ib.connected_reply(r);
      const std::string ok = reply_text(r);
      // SOCKS5 10 bytes, SOCKS4 8, HTTP CONNECT its 200; a forwarded HTTP request nothing.
      if (first == 5) FUZZ_CHECK(ok.size() == 10 && ok[1] == 0);
      if (first == 4) FUZZ_CHECK(ok.size() == 8 && static_cast<uint8_t>(ok[1]) == 0x5A);
      ReplyBytes f;
      ib.failed_reply(m.uv_err, f);
      FUZZ_CHECK(f.len > 0);
      if (first == 5) FUZZ_CHECK(f.len == 10 && f.data[1] != 0);
      ReplyBytes x;
      ib.refused_reply(x);
      FUZZ_CHECK(x.len > 0);
      break;
    }
    case InboundAction::UdpAssociate: {
      FUZZ_CHECK(first == 5 && m.udp);
      Address relay;
      relay.type = Address::Type::IPv6;
      relay.ip[15] = 1;
      relay.port = 1080;
      ib.udp_reply(relay, r);
      FUZZ_CHECK(r.len == 22 && r.data[1] == 0);
      break;
    }
    case InboundAction::Reply:
    case InboundAction::Close:
    case InboundAction::NeedMore:
      break;
    case InboundAction::Reject:
    case InboundAction::Handover:  // followed by drive(); never an outcome
      FUZZ_CHECK(false);           // the mixed port never uses the probe-resistant reject
  }
  if (!m.with_users) FUZZ_CHECK(!o.auth_failed);
  if (o.auth_failed) FUZZ_CHECK(o.action == InboundAction::Reply);
  if (!o.user.empty()) {
    // Authenticated (the request that followed may still have been refused, or its early data
    // not have fitted).
    FUZZ_CHECK(m.with_users && (o.user == "alice" || o.user == "bob"));
    FUZZ_CHECK(!o.auth_failed);
  }
  if (m.with_users &&
      (o.action == InboundAction::Connect || o.action == InboundAction::UdpAssociate)) {
    FUZZ_CHECK(!o.user.empty());  // nobody gets through without authenticating
  }
}

// One exchange after another on an HTTP inbound whose request is done: a response, then the next
// request from the held bytes.
void run_exchanges(Inbound& ib, Outcome& o) {
  static std::vector<uint8_t> buf(kBigCap);
  constexpr std::string_view kResponses[] = {
      "HTTP/1.1 204 No Content\r\n\r\n",
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"};
  for (int i = 0; i < 8 && ib.request_done(); ++i) {
    const std::string_view resp = kResponses[i % 3];
    size_t take = 0;
    const ResponseEnd end =
        ib.response(reinterpret_cast<const uint8_t*>(resp.data()), resp.size(), take);
    FUZZ_CHECK(take <= resp.size());  // less for a HEAD request: no body
    FUZZ_CHECK(end == ResponseEnd::Reuse || end == ResponseEnd::Last);
    o.chain += end == ResponseEnd::Reuse ? "R" : "L";
    if (end != ResponseEnd::Reuse) return;
    ReplyBytes reply;
    EarlyData early{buf.data(), buf.size(), 0};
    const InboundAction a = ib.feed(nullptr, 0, reply, early);
    FUZZ_CHECK(a != InboundAction::Handover && a != InboundAction::Reject);
    FUZZ_CHECK(early.len <= early.cap);
    if (a == InboundAction::Reply) FUZZ_CHECK(reply.len > 0);
    if (a != InboundAction::Connect) FUZZ_CHECK(early.len == 0);
    o.chain += "|" + std::to_string(static_cast<int>(a)) + " " + ib.target().to_string() + " " +
               as_string(early.data, early.len) + reply_text(reply);
    if (a != InboundAction::Connect) return;
  }
}

// Feeds `in` in pieces from `rng` (or whole if rng is null) to a new inbound. `cap`: room for
// early data, of which `held` bytes are already used.
Outcome drive(Bytes in, const Mode& m, fuzz::Rng* rng, size_t cap, size_t held) {
  std::unique_ptr<Inbound> owner =
      std::make_unique<MixedInbound>(m.connect, m.udp, m.with_users ? &users() : nullptr);
  Inbound* ibp = owner.get();
  fuzz::ExactBuffer buf(cap);
  std::memset(buf.data(), 0xA5, held);
  Outcome o;
  size_t off = 0;
  bool decided = false;
  while (off < in.size()) {
    const size_t n = rng != nullptr ? rng->piece(in.size() - off) : in.size() - off;
    const uint8_t* p = in.data() + off;
    off += n;
    if (decided) {
      // Relaying: only Connect gets here.
      const size_t keep = ibp->forwardable(p, n);
      FUZZ_CHECK(keep <= n);
      FUZZ_CHECK(!o.forward_stopped || keep == 0);
      o.upstream.append(as_string(p, keep));
      if (keep < n) o.forward_stopped = true;
      continue;
    }
    ReplyBytes reply;
    EarlyData early{buf.data(), cap, held};
    InboundAction a = ibp->feed(p, n, reply, early);
    if (a == InboundAction::Handover) {
      // As the connection does: the protocol's inbound takes over and gets the same bytes.
      FUZZ_CHECK(reply.len == 0 && early.len == held);
      std::unique_ptr<Inbound> next = ibp->take_next();
      FUZZ_CHECK(next != nullptr);
      owner = std::move(next);
      ibp = owner.get();
      a = ibp->feed(p, n, reply, early);
      FUZZ_CHECK(a != InboundAction::Handover);
    }
    FUZZ_CHECK(early.cap == cap && early.len >= held && early.len <= cap);
    for (size_t i = 0; i < held; ++i) FUZZ_CHECK(buf.data()[i] == 0xA5);
    o.reply += reply_text(reply);
    if (a == InboundAction::NeedMore) {
      FUZZ_CHECK(early.len == held);
      continue;
    }
    if (a == InboundAction::Reply) FUZZ_CHECK(reply.len > 0);
    if (a != InboundAction::Connect) FUZZ_CHECK(early.len == held || a == InboundAction::Close);
    decided = true;
    o.action = a;
    o.target = ibp->target();
    o.user = std::string(ibp->user());
    o.auth_failed = ibp->auth_failed();
    if (a == InboundAction::Connect) o.upstream = as_string(buf.data() + held, early.len - held);
    if (a != InboundAction::Connect) break;
  }
  if (!in.empty()) {
    check_after(*ibp, o, m, in[0]);
    if (!served_first_byte(in[0], m)) {
      FUZZ_CHECK(o.action == InboundAction::Close && o.reply.empty());
    }
  }
  if (o.action == InboundAction::Connect) run_exchanges(*ibp, o);
  return o;
}

bool same(const Outcome& a, const Outcome& b) {
  return a.action == b.action && a.reply == b.reply && a.upstream == b.upstream &&
         a.target == b.target && a.user == b.user && a.auth_failed == b.auth_failed &&
         a.chain == b.chain;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode_byte = data[0];
  Mode m{};
  m.with_users = (mode_byte & 1) != 0;
  m.udp = (mode_byte & 2) != 0;
  m.connect = (mode_byte & 4) == 0;
  if (!m.connect) m.udp = true;  // udp_only
  m.uv_err = kErrors[(mode_byte >> 3) & 7];
  const Bytes in(data + 1, size - 1);
  fuzz::Rng rng(fuzz::hash_bytes({data, size}));

  const Outcome whole = drive(in, m, nullptr, kBigCap, 0);
  const Outcome split = drive(in, m, &rng, kBigCap, 0);
  FUZZ_CHECK(same(whole, split));
  // Fed whole, everything after the request went into the early data: forwardable() never ran.
  FUZZ_CHECK(!whole.forward_stopped);

  const size_t held = rng.below(64);
  const size_t room = rng.below(in.size() + 128);
  const Outcome tight = drive(in, m, &rng, held + room, held);
  if (tight.action == whole.action) {
    FUZZ_CHECK(same(tight, whole));
  } else {
    // Only the early data may not fit: then the connection is closed instead.
    FUZZ_CHECK(whole.action == InboundAction::Connect && tight.action == InboundAction::Close);
    FUZZ_CHECK(tight.reply == whole.reply);
  }
  return 0;
}
