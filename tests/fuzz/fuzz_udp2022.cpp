// Fuzzes the Shadowsocks 2022 UDP codec (crypto/udp2022.h) and the per-session packet-ID window
// (crypto/sliding_window.h) under the known keys of tests/fuzz/fuzz_2022.h, for every 2022
// method, with and without SIP023 users.
//
// Every packet goes through the receive order udp2022.h prescribes: open the header, check the
// session's window, open the body, and only then accept the packet ID. Sessions are keyed by
// (user, sender's session ID); each window is checked against a model (a set of every accepted ID
// and the newest: an ID is new if it is ahead, or at most 8128 behind and not seen). For every
// packet: the output buffer is exactly the packet's size; a packet shorter than the smallest
// header is TooShort; errors are those the phase can give; an accepted packet has a fresh
// timestamp, the header's IDs (and user), a well-formed address followed by a payload that ends
// where the body ends, all inside the output buffer; a Timestamp error reports the true skew.
//
// Input: [setup][clock][mode][seed][bytes...]. `setup` picks method, users and the client's user
// (fuzz_2022.h); in modes 0 and 1 the receiver's clock is kT0 + (int8) clock.
//   mode 0: the bytes are one request packet for the server (§6.4 (c), (d), (f) open); mode 1: one
//     response packet for the client of the setup's user. Received twice: the second time it
//     must be refused as a replay if the first accepted it, else fail exactly as before (a
//     refused packet leaves the window as it was).
//   mode 2, 3: structure-aware: the bytes are 8-byte records, each sealing one packet with the
//     real sealers (Udp2022Client requests, Udp2022Server responses), then perhaps damaging it,
//     and receiving it on the other side, whose clock is kT0. Per record:
//       b0  bit 0: request or response; bits 1-2: session (4 per user); bits 3-4: user (with
//           users; 3 = the stranger for requests); bits 5-7: how the packet ID follows the
//           session's last one (next, same, v back, v ahead, 64 v ahead, v, 2^64 - 1 - v)
//       b1 b2  v;  b3  the sender's clock skew (int8);  b6  payload length
//       b4 bits 0-2: damage (0-2 none, 3 flip a bit, 4 truncate, 5 append a byte, 6 the first 16
//           bytes of the previous packet, 7 deliver to the other side: a reflection);
//           bits 3-7 with b5: the position
//       b7  bits 0-1: address kind (IPv4, IPv6, domain, or 0..23 arbitrary bytes, which the
//           receiver must judge); bit 2: payload sealed in place; bits 3-7: padding / 29
//     An undamaged packet from a known user is refused iff the model window refuses its ID;
//     else it fails on a skew beyond 30 s (reporting it), then on a malformed address header at
//     the start of address + payload, and is otherwise accepted, yielding that address header
//     and the rest as payload. A damaged one (bytes changed) or a stranger's is never accepted.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "crypto/sliding_window.h"
#include "crypto/udp2022.h"
#include "tests/fuzz/fuzz_2022.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ss;
using ss::fuzz::ExactBuffer;
using ss::fuzz::kT0;
using ss::fuzz::Rng;
using ss::fuzz::Setup2022;
using Bytes = std::vector<uint8_t>;

constexpr uint64_t kClientSession = 0x0102030405060708;  // §6.4 (c)
constexpr uint64_t kServerSession = 0xa1a2a3a4a5a6a7a8;
constexpr size_t kSessions = 4;

// XChaCha nonces: a counter, reset per input, so every run reproduces.
uint64_t g_nonce = 0;
void counting_nonce(std::span<uint8_t> out) {
  ++g_nonce;
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(g_nonce >> (8 * (i % 8)));
}

struct ModelWindow {
  std::set<uint64_t> seen;
  uint64_t last = 0;
  bool check(uint64_t id) const {
    return id > last || (last - id <= SlidingWindow::kWindowSize && seen.count(id) == 0);
  }
  void accept(uint64_t id) {
    seen.insert(id);
    last = std::max(last, id);
  }
};

struct Session {
  explicit Session(const Method2022& m) : key(m) {}
  SlidingWindow window;
  ModelWindow model;
  Udp2022SessionKey key;
};
using Sessions = std::map<std::pair<size_t, uint64_t>, Session>;  // (user, session ID)

// The two receivers behind one interface.
Udp2022Status open_header(Udp2022Server& c, std::span<const uint8_t> p, std::span<uint8_t> out,
                          Udp2022Header& h) {
  return c.open_request_header(p, out, h);
}
Udp2022Status open_header(Udp2022Client& c, std::span<const uint8_t> p, std::span<uint8_t> out,
                          Udp2022Header& h) {
  return c.open_response_header(p, out, h);
}
Udp2022Status open_body(Udp2022Server& c, const Udp2022Header& h, Udp2022SessionKey& k, int64_t now,
                        Udp2022Request& r) {
  return c.open_request_body(h, k, now, r);
}
Udp2022Status open_body(Udp2022Client& c, const Udp2022Header& h, Udp2022SessionKey& k, int64_t now,
                        Udp2022Response& r) {
  return c.open_response_body(h, k, now, r);
}
uint64_t sender_session(const Udp2022Request& r) {
  return r.session_id;
}
uint64_t sender_session(const Udp2022Response& r) {
  return r.server_session_id;
}
std::span<const uint8_t> body_key(const Udp2022Server& c, size_t user) {
  return c.body_key(user);
}
std::span<const uint8_t> body_key(const Udp2022Client& c, size_t) {
  return c.user_key();
}

enum class Fate { Header, Replayed, Body, Accepted };

struct Received {
  Fate fate = Fate::Header;
  Udp2022Status status;
  size_t user = kUdp2022NoUser;
  uint64_t session_id = 0;
  uint64_t packet_id = 0;
  uint64_t client_session_id = 0;  // responses
  Bytes address;
  Bytes payload;
};

void check_error(Udp2022Error e, std::initializer_list<Udp2022Error> allowed) {
  FUZZ_CHECK(std::find(allowed.begin(), allowed.end(), e) != allowed.end());
}

// Receives one packet in the prescribed order, checking each phase.
template <typename Codec, typename Message>
Received receive(Codec& codec, bool users, Sessions& sessions, std::span<const uint8_t> packet,
                 int64_t now) {
  constexpr bool kRequest = std::is_same_v<Message, Udp2022Request>;
  const Method2022& m = codec.method();
  const bool aes = m.kind != Kind2022::ChaCha20Poly1305;
  const size_t n = packet.size();
  // Separate header (and identity header), or nonce + IDs; then the fixed body and the tag.
  const size_t prefix =
      aes ? kUdp2022HeaderLen + (kRequest && users ? kUdp2022EihLen : 0) : kUdp2022NonceLen;
  const size_t ids = aes ? 0 : kUdp2022ChaChaIdsLen;
  const size_t fixed = kRequest ? kUdp2022RequestFixedLen : kUdp2022ResponseFixedLen;

  Received got;
  ExactBuffer out(n);
  Udp2022Header h;
  got.status = open_header(codec, packet, std::span<uint8_t>(out.data(), n), h);
  if (n < prefix + ids + fixed + kUdp2022TagLen)
    FUZZ_CHECK(got.status.error == Udp2022Error::TooShort);
  if (!got.status.ok()) {
    FUZZ_CHECK(!got.status.message().empty());
    if (aes && kRequest && users) {
      check_error(got.status.error, {Udp2022Error::TooShort, Udp2022Error::UnknownUser});
    } else if (aes) {
      check_error(got.status.error, {Udp2022Error::TooShort});
    } else {
      check_error(got.status.error, {Udp2022Error::TooShort, Udp2022Error::BadTag});
    }
    return got;
  }
  if (!(kRequest && users)) FUZZ_CHECK(h.user == kUdp2022NoUser);
  if (kRequest && users) FUZZ_CHECK(h.user < ss::fuzz::kUsers);

  Session& ses = sessions.try_emplace({h.user, h.session_id}, m).first->second;
  const bool is_new = ses.window.check(h.packet_id);
  FUZZ_CHECK(is_new == ses.model.check(h.packet_id));
  if (!is_new) {
    got.fate = Fate::Replayed;
    return got;
  }

  Message msg;
  got.status = open_body(codec, h, ses.key, now, msg);
  if (aes) FUZZ_CHECK(ses.key.keyed_for(body_key(codec, h.user), h.session_id));
  if (!got.status.ok()) {
    got.fate = Fate::Body;
    FUZZ_CHECK(!got.status.message().empty());
    check_error(got.status.error,
                {Udp2022Error::BadTag, Udp2022Error::WrongType, Udp2022Error::Timestamp,
                 Udp2022Error::BadPadding, Udp2022Error::BadAddress});
    if (!aes) FUZZ_CHECK(got.status.error != Udp2022Error::BadTag);  // opened in phase 1
    if (got.status.error == Udp2022Error::Timestamp) {
      const int64_t skew = got.status.skew;
      FUZZ_CHECK(skew > kMaxTimeDiff2022 || skew < -kMaxTimeDiff2022);
      if (msg.timestamp <= static_cast<uint64_t>(INT64_MAX)) {
        FUZZ_CHECK(skew == static_cast<int64_t>(msg.timestamp) - now);
      } else {
        FUZZ_CHECK(skew == INT64_MAX);
      }
    }
    return got;
  }

  // Accepted: the whole packet authenticated and validated.
  FUZZ_CHECK(sender_session(msg) == h.session_id && msg.packet_id == h.packet_id);
  const int64_t skew = static_cast<int64_t>(msg.timestamp - static_cast<uint64_t>(now));
  FUZZ_CHECK(skew >= -kMaxTimeDiff2022 && skew <= kMaxTimeDiff2022);
  FUZZ_CHECK(!msg.address.empty() &&
             ss::fuzz::address_header_len(msg.address) == msg.address.size());
  // The body (after the IDs for ChaCha) sits at the start of `out`, without its tag.
  const uint8_t* body_end = out.data() + n - prefix - kUdp2022TagLen;
  FUZZ_CHECK(msg.address.data() >= out.data() + ids + fixed);
  FUZZ_CHECK(msg.payload.data() == msg.address.data() + msg.address.size());
  FUZZ_CHECK(msg.payload.data() + msg.payload.size() == body_end);
  if constexpr (kRequest) {
    FUZZ_CHECK(msg.user == h.user);
    FUZZ_CHECK(msg.user_name == codec.user_name(h.user));
    if (users) FUZZ_CHECK(msg.user_name == Setup2022::user_name(h.user));
  } else {
    got.client_session_id = msg.client_session_id;
  }
  ses.window.accept(h.packet_id);
  ses.model.accept(h.packet_id);
  FUZZ_CHECK(!ses.window.check(h.packet_id) && ses.window.last() == ses.model.last);
  got.fate = Fate::Accepted;
  got.user = h.user;
  got.session_id = h.session_id;
  got.packet_id = h.packet_id;
  got.address.assign(msg.address.begin(), msg.address.end());
  got.payload.assign(msg.payload.begin(), msg.payload.end());
  return got;
}

// Both ends of one setup: the server, and a client per user (one without users).
struct Ends {
  explicit Ends(const Setup2022& s) : setup(s), server_key(s.server_key()) {
    for (size_t k = 0; k < ss::fuzz::kUsers && s.users; ++k) {
      users.push_back({Setup2022::user_name(k), s.user_key(k)});
    }
    server = std::make_unique<Udp2022Server>(*s.method, server_key, users);
    FUZZ_CHECK(server->valid() && server->error().empty());
    server->set_random_source(&counting_nonce);
    for (size_t k = 0; k < (s.users ? ss::fuzz::kUsers + 1 : 1); ++k) {
      const std::vector<Bytes> keys = s.client_keys(k);
      clients.push_back(std::make_unique<Udp2022Client>(*s.method, keys));
      FUZZ_CHECK(clients.back()->valid());
      clients.back()->set_random_source(&counting_nonce);
      client_sessions.emplace_back();
    }
  }
  Received to_server(std::span<const uint8_t> packet, int64_t now) {
    return receive<Udp2022Server, Udp2022Request>(*server, setup.users, server_sessions, packet,
                                                  now);
  }
  Received to_client(size_t k, std::span<const uint8_t> packet, int64_t now) {
    return receive<Udp2022Client, Udp2022Response>(*clients[k], setup.users, client_sessions[k],
                                                   packet, now);
  }

  Setup2022 setup;
  Bytes server_key;
  std::vector<Udp2022User> users;
  std::unique_ptr<Udp2022Server> server;
  std::vector<std::unique_ptr<Udp2022Client>> clients;  // [user]; the stranger's last
  Sessions server_sessions;
  std::vector<Sessions> client_sessions;  // [user]
};

void check_same(const Received& a, const Received& b) {
  FUZZ_CHECK(a.fate == b.fate && a.status.error == b.status.error &&
             a.status.skew == b.status.skew);
}

// Modes 0 and 1: one packet from the input, received twice.
void raw(Ends& ends, bool request, std::span<const uint8_t> packet, int64_t now) {
  const size_t k = ends.setup.user;
  const Received first = request ? ends.to_server(packet, now) : ends.to_client(k, packet, now);
  const Received again = request ? ends.to_server(packet, now) : ends.to_client(k, packet, now);
  if (first.fate == Fate::Accepted) {
    FUZZ_CHECK(again.fate == Fate::Replayed);
  } else {
    check_same(first, again);
  }
}

// One record of modes 2 and 3.
struct Record {
  explicit Record(const uint8_t* b)
      : response((b[0] & 1) != 0),
        session((b[0] >> 1) % kSessions),
        user((b[0] >> 3) & 3),
        id_rule(b[0] >> 5),
        v(static_cast<uint64_t>(b[1]) << 8 | b[2]),
        skew(static_cast<int8_t>(b[3])),
        damage(b[4] & 7),
        position(static_cast<size_t>(b[4] >> 3) << 8 | b[5]),
        payload_len(b[6]),
        address_kind(b[7] & 3),
        in_place((b[7] & 4) != 0),
        padding(static_cast<size_t>(b[7] >> 3) * 29) {}
  bool response;
  size_t session;
  size_t user;
  unsigned id_rule;
  uint64_t v;
  int64_t skew;
  unsigned damage;
  size_t position;
  size_t payload_len;
  unsigned address_kind;
  bool in_place;
  size_t padding;
};

// The sender's next packet ID for a session whose last one was `last` (nullopt: none yet).
uint64_t next_id(std::optional<uint64_t>& last, const Record& r) {
  const uint64_t base = last.value_or(0);
  uint64_t id = 0;
  switch (r.id_rule) {
    case 0:
    case 1:
      id = last ? base + 1 : 0;
      break;
    case 2:
      id = base;
      break;
    case 3:
      id = base - r.v;
      break;
    case 4:
      id = base + r.v;
      break;
    case 5:
      id = base + r.v * 64;
      break;
    case 6:
      id = r.v;
      break;
    default:
      id = UINT64_MAX - r.v;
      break;
  }
  last = id;
  return id;
}

// Damages `packet` as the record says; true if its bytes changed.
bool damage(Bytes& packet, const Record& r, const Bytes& previous) {
  const Bytes before = packet;
  switch (r.damage) {
    case 3:
      packet[r.position % packet.size()] ^= static_cast<uint8_t>(1u << (r.position >> 10));
      break;
    case 4:
      packet.resize(r.position % packet.size());
      break;
    case 5:
      packet.push_back(static_cast<uint8_t>(r.position));
      break;
    case 6:
      if (previous.size() >= 16) std::copy_n(previous.begin(), 16, packet.begin());
      break;
    default:
      break;
  }
  return packet != before;
}

struct Script {
  explicit Script(Ends& e) : ends(e) {}
  Ends& ends;
  std::optional<uint64_t> client_ids[ss::fuzz::kUsers + 1][kSessions];
  std::optional<uint64_t> server_ids[ss::fuzz::kUsers][kSessions];
  Bytes previous;

  void run(const Record& r, Rng& rng) {
    const Setup2022& s = ends.setup;
    const size_t k = s.users ? (r.response ? r.user % ss::fuzz::kUsers : r.user) : 0;
    const uint64_t client_session = kClientSession + r.session;
    const uint64_t server_session = kServerSession + k * kSessions + r.session;
    const uint64_t session = r.response ? server_session : client_session;
    const uint64_t id =
        next_id(r.response ? server_ids[k][r.session] : client_ids[k][r.session], r);
    Bytes address;
    if (r.address_kind < 3) {
      address = ss::fuzz::address_header(r.address_kind, rng);
    } else {
      // Any 0..23 bytes, mostly starting with a known type: the sealer takes them as they are.
      address.resize(rng.below(24));
      for (uint8_t& b : address) b = static_cast<uint8_t>(rng.next());
      const uint8_t types[] = {0x01, 0x03, 0x04};
      if (!address.empty() && rng.below(4) != 0) address[0] = types[rng.below(3)];
    }
    Bytes payload(r.payload_len);
    for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(id + i * 31);
    const int64_t sent_at = static_cast<int64_t>(kT0) + r.skew;

    const size_t size =
        r.response ? ends.server->response_size(address.size(), r.padding, payload.size())
                   : ends.clients[k]->request_size(address.size(), r.padding, payload.size());
    const size_t offset = r.response
                              ? ends.server->response_payload_offset(address.size(), r.padding)
                              : ends.clients[k]->request_payload_offset(address.size(), r.padding);
    FUZZ_CHECK(offset + payload.size() + kUdp2022TagLen == size);
    ExactBuffer out(size);
    std::span<const uint8_t> pt = payload;
    if (r.in_place && !payload.empty()) {
      // The no-copy layout: the payload already where the packet needs it.
      std::memcpy(out.data() + offset, payload.data(), payload.size());
      pt = {out.data() + offset, payload.size()};
    }
    Udp2022SessionKey key(*s.method);
    const size_t user = s.users ? k : kUdp2022NoUser;
    const size_t wrote =
        r.response ? ends.server->seal_response(key, user, server_session, id, client_session,
                                                address, r.padding, pt, sent_at, {out.data(), size})
                   : ends.clients[k]->seal_request(key, client_session, id, address, r.padding, pt,
                                                   sent_at, {out.data(), size});
    FUZZ_CHECK(wrote == size);
    Bytes packet(out.data(), out.data() + size);
    const Bytes sealed_packet = packet;

    const bool reflected = r.damage == 7;
    const bool damaged = damage(packet, r, previous) || reflected;
    previous = sealed_packet;
    const bool to_server = r.response == reflected;
    const size_t client = reflected && !r.response && k == ss::fuzz::kStranger ? 0 : k;
    const Received got = to_server ? ends.to_server(packet, static_cast<int64_t>(kT0))
                                   : ends.to_client(client, packet, static_cast<int64_t>(kT0));
    if (damaged || (s.users && k == ss::fuzz::kStranger)) {
      FUZZ_CHECK(got.fate != Fate::Accepted);
      if (!damaged) FUZZ_CHECK(got.status.error == Udp2022Error::UnknownUser);
      return;
    }
    // An undamaged packet: the window (checked against the model) may refuse it; otherwise the
    // timestamp, then the address header at the start of address + payload decide.
    FUZZ_CHECK(got.fate != Fate::Header);
    if (got.fate == Fate::Replayed) return;
    if (r.skew < -kMaxTimeDiff2022 || r.skew > kMaxTimeDiff2022) {
      FUZZ_CHECK(got.fate == Fate::Body && got.status.error == Udp2022Error::Timestamp &&
                 got.status.skew == r.skew);
      return;
    }
    Bytes sent = address;
    sent.insert(sent.end(), payload.begin(), payload.end());
    const size_t address_len = ss::fuzz::address_header_len(sent);
    if (address_len == 0) {
      FUZZ_CHECK(got.fate == Fate::Body && got.status.error == Udp2022Error::BadAddress);
      return;
    }
    FUZZ_CHECK(got.fate == Fate::Accepted);
    FUZZ_CHECK(got.session_id == session && got.packet_id == id);
    const auto split = sent.begin() + static_cast<std::ptrdiff_t>(address_len);
    FUZZ_CHECK(std::equal(got.address.begin(), got.address.end(), sent.begin(), split));
    FUZZ_CHECK(std::equal(got.payload.begin(), got.payload.end(), split, sent.end()));
    if (r.response) {
      FUZZ_CHECK(got.client_session_id == client_session);
    } else {
      FUZZ_CHECK(got.user == user);
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  g_nonce = 0;
  const Setup2022 setup = ss::fuzz::decode_setup(data[0]);
  const int64_t now = static_cast<int64_t>(kT0) + static_cast<int8_t>(data[1]);
  const uint8_t mode = data[2];
  Rng rng(data[3] * 0x0101010101010101ULL ^ size);
  const std::span<const uint8_t> bytes(data + 4, size - 4);
  Ends ends(setup);
  if ((mode & 3) < 2) {
    raw(ends, (mode & 3) == 0, bytes, now);
    return 0;
  }
  Script script(ends);
  constexpr size_t kRecord = 8;
  for (size_t pos = 0; pos + kRecord <= bytes.size(); pos += kRecord) {
    script.run(Record(bytes.data() + pos), rng);
  }
  return 0;
}
