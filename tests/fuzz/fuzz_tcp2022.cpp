// Fuzzes the Shadowsocks 2022 TCP streams (crypto/tcp2022.h) under the known keys of
// tests/fuzz/fuzz_2022.h, for every 2022 method, with and without SIP023 users.
//
// Input: [setup][clock][mode][split seed][bytes...]. `setup` picks method, users and the client's
// user (fuzz_2022.h); the receiver's clock is kT0 + (int8) clock, so a flight stamped kT0 (the
// §6.4 examples, and everything sealed here) is fresh for |clock| <= 30 and stale otherwise; the
// split seed drives every other choice.
//   mode 0: the bytes are a request stream for a server opener (§6.4 (a) and (e) open);
//   mode 1: a response stream for a client opener whose request salt is 10 11 12 ... (§6.4 (b)).
//     Each is fed whole and in input-chosen pieces, whose first holds at least salt, identity
//     header and fixed header (the server's one-read rule), and both must agree; a shorter first
//     read must fail. A request that authenticated must fail when replayed to a second opener of
//     the same suite (the salt pool).
//   mode 2, 3: structure-aware. The real client sealer seals a request at kT0: a well-formed
//     address (or, one time in four, 1..259 of the bytes, as many as the first one says), the
//     bytes as payload (sometimes stretched past one 0xFFFF chunk), input-chosen seal sizes, salt
//     and padding from the seed. The padding the flight carries (its size tells) must be at most
//     900 bytes, and some without payload. If the clock is within 30 s and the user is known, the
//     server must release exactly what a model of the variable header's rules (protocol.md
//     §2.5-2.6) says, as the right user: address + payload for a well-formed address; where the
//     model refuses, fail after authenticating and release nothing. Otherwise fail having
//     released and authenticated nothing. A flipped bit must fail; a truncation releases a
//     strict prefix, failing only for a short first read, a stale or unknown flight or a bad
//     variable header. Then the real server sealer answers with the payload, its clock at kT0 +
//     a skew from the mode byte ((mode >> 2) * 2 - 64): the client opener returns it exactly
//     iff within 30 s, and fails on a flipped bit and for a sealer other than the request's
//     (the echoed salt).
// Every feed: the output buffer is exactly max_output(n) bytes (ASan sees any overrun); Ok means
// bytes released and NeedMore none; nothing is released before authenticated(), which never
// reverts; Error is sticky, names a reason and drops what was held; at most one chunk is held.

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "crypto/tcp2022.h"
#include "tests/fuzz/fuzz_2022.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ss;
using ss::fuzz::ExactBuffer;
using ss::fuzz::is_prefix;
using ss::fuzz::kT0;
using ss::fuzz::Rng;
using ss::fuzz::Setup2022;
using Bytes = std::vector<uint8_t>;

constexpr size_t kMaxChunk = 0xFFFF;
constexpr size_t kTag = 16;
constexpr size_t kFixedHeader = 1 + 8 + 2 + kTag;
constexpr int64_t kWindow = kMaxTimeDiff2022;

bool fresh(int64_t skew) {
  return skew >= -kWindow && skew <= kWindow;
}

// What a server must read in one go: salt, identity header (with users) and fixed header.
size_t first_read(const Setup2022& s) {
  return s.method->key_len + (s.users ? 16 : 0) + kFixedHeader;
}

// Salts and padding draws: from rng, or the pattern first, first + 1, ... when rng is null.
std::function<void(std::span<uint8_t>)> random_source(Rng* rng, uint8_t first) {
  return [rng, first](std::span<uint8_t> out) {
    for (size_t i = 0; i < out.size(); ++i) {
      out[i] = rng != nullptr ? static_cast<uint8_t>(rng->next()) : static_cast<uint8_t>(first + i);
    }
  };
}

std::unique_ptr<TcpCipherSuite> make_suite(Tcp2022Options o, const Setup2022& s,
                                           const uint64_t* now) {
  o.method = s.method;
  o.clock = [now] { return *now; };
  std::string error;
  std::unique_ptr<TcpCipherSuite> suite = make_2022_suite(std::move(o), &error);
  FUZZ_CHECK(suite != nullptr && error.empty());
  return suite;
}

// A server suite with its own salt pool; its response salts are 20 21 22 ...
std::unique_ptr<TcpCipherSuite> server_suite(const Setup2022& s, const uint64_t* now) {
  Tcp2022Options o;
  o.server_psk = s.server_key();
  if (s.users) {
    for (size_t k = 0; k < ss::fuzz::kUsers; ++k) {
      o.users.push_back({Setup2022::user_name(k), s.user_key(k)});
    }
  }
  o.random = random_source(nullptr, 0x20);
  return make_suite(std::move(o), s, now);
}

// A client suite of the setup's user; request salts from rng, or 10 11 12 ... (§6.4 (a)).
std::unique_ptr<TcpCipherSuite> client_suite(const Setup2022& s, const uint64_t* now, Rng* rng) {
  Tcp2022Options o;
  o.client_keys = s.client_keys(s.user);
  o.random = random_source(rng, 0x10);
  return make_suite(std::move(o), s, now);
}

struct Outcome {
  Bytes plaintext;
  bool error = false;
  bool authenticated = false;
  std::string failure;
  std::string user;
};

// Feeds `stream` to `op` in pieces chosen by rng (whole when null), the first holding at least
// min(first_min, everything); checks every feed.
Outcome feed_all(TcpOpener& op, std::span<const uint8_t> stream, Rng* rng, size_t first_min) {
  Outcome o;
  const uint8_t none = 0;
  size_t pos = 0;
  do {
    const size_t left = stream.size() - pos;
    size_t take = left;
    if (rng != nullptr) {
      take = std::min(rng->piece(std::max<size_t>(left, 1)), left);
      if (pos == 0) take = std::max(take, std::min(first_min, left));
    }
    const size_t cap = op.max_output(take);
    FUZZ_CHECK(cap >= take);
    ExactBuffer out(cap);
    // An empty feed is legal; pass a real pointer either way.
    const uint8_t* in = take > 0 ? stream.data() + pos : &none;
    const TcpOpener::Result r = op.feed(in, take, out.data());
    pos += take;
    FUZZ_CHECK(r.produced <= cap);
    if (r.produced > 0) FUZZ_CHECK(op.authenticated());
    if (o.authenticated) FUZZ_CHECK(op.authenticated());
    o.authenticated = op.authenticated();
    o.plaintext.insert(o.plaintext.end(), out.data(), out.data() + r.produced);
    ss::fuzz::check_feed(r.status, r.produced, o.error);
    FUZZ_CHECK(op.buffered() <= kMaxChunk + kTag);
    if (o.error) FUZZ_CHECK(op.buffered() == 0 && !op.failure().empty());
  } while (pos < stream.size());
  if (o.error) {
    ss::fuzz::check_still_failed(op);
  } else {
    FUZZ_CHECK(op.failure().empty());
  }
  FUZZ_CHECK(o.plaintext.size() <= stream.size());
  o.failure = op.failure();
  o.user = op.user();
  return o;
}

// What holds for any request stream a server opened (or failed to).
void check_request(const Setup2022& s, const Outcome& o) {
  // Released plaintext starts with the target's address header.
  if (!o.plaintext.empty()) FUZZ_CHECK(ss::fuzz::address_header_len(o.plaintext) > 0);
  if (!s.users) FUZZ_CHECK(o.user.empty());
  if (s.users && o.authenticated) FUZZ_CHECK(!o.user.empty());
  if (!o.user.empty()) {
    bool known = false;
    for (size_t k = 0; k < ss::fuzz::kUsers; ++k) known |= o.user == Setup2022::user_name(k);
    FUZZ_CHECK(known);
  }
}

void check_same(const Outcome& a, const Outcome& b) {
  FUZZ_CHECK(a.plaintext == b.plaintext);
  FUZZ_CHECK(a.error == b.error);
  FUZZ_CHECK(a.authenticated == b.authenticated);
  FUZZ_CHECK(a.failure == b.failure);
  FUZZ_CHECK(a.user == b.user);
}

void raw_request(const Setup2022& s, int64_t skew, std::span<const uint8_t> stream, Rng& rng) {
  const uint64_t now = kT0 + skew;
  const size_t first = first_read(s);
  const std::unique_ptr<TcpCipherSuite> suite = server_suite(s, &now);
  const Outcome whole = feed_all(*suite->server_opener(), stream, nullptr, 0);
  check_request(s, whole);
  if (!stream.empty() && stream.size() < first) FUZZ_CHECK(whole.error && !whole.authenticated);

  // Another suite (its own salt pool), so that the salt is new to it.
  const Outcome split = feed_all(*server_suite(s, &now)->server_opener(), stream, &rng, first);
  check_same(whole, split);

  if (whole.authenticated) {
    // The salt is in the first suite's pool now: the same flight again is a replay.
    const Outcome again = feed_all(*suite->server_opener(), stream, nullptr, 0);
    FUZZ_CHECK(again.error && !again.authenticated && again.plaintext.empty());
  }
}

void raw_response(const Setup2022& s, int64_t skew, std::span<const uint8_t> stream, Rng& rng) {
  const uint64_t now = kT0 + skew;
  const std::unique_ptr<TcpCipherSuite> suite = client_suite(s, &now, nullptr);
  const std::unique_ptr<TcpSealer> request = suite->client_sealer();
  const Outcome whole = feed_all(*suite->client_opener(*request), stream, nullptr, 0);
  const Outcome split = feed_all(*suite->client_opener(*request), stream, &rng, 0);
  check_same(whole, split);
  FUZZ_CHECK(whole.user.empty());
}

struct Sealed {
  Bytes stream;
  size_t first_len = 0;  // bytes of the first seal (seal_request: the first flight)
  size_t first_n = 0;    // payload bytes it carried
};

// Seals `data` with `sealer` in rng-chosen pieces; the first through seal_request(addr) when
// addr is non-empty (it may carry no payload), else through seal().
Sealed seal_all(TcpSealer& sealer, std::span<const uint8_t> addr, std::span<const uint8_t> data,
                Rng& rng) {
  Sealed sealed;
  size_t pos = 0;
  bool first = true;
  while (first || pos < data.size()) {
    size_t n = data.size() - pos;
    if (n > 0) {
      // Sometimes the address alone first, the payload in later chunks.
      n = first && !addr.empty() && rng.below(4) == 0 ? 0 : rng.piece(n);
    }
    const size_t cap = sealer.max_sealed_size(n);
    ExactBuffer out(cap);
    size_t wrote = 0;
    if (first && !addr.empty()) {
      wrote = sealer.seal_request(addr.data(), addr.size(), data.data() + pos, n, out.data());
    } else {
      wrote = sealer.seal(data.data() + pos, n, out.data());
    }
    FUZZ_CHECK(wrote > 0 && wrote <= cap);
    if (first) {
      sealed.first_len = wrote;
      sealed.first_n = n;
    }
    sealed.stream.insert(sealed.stream.end(), out.data(), out.data() + wrote);
    pos += n;
    first = false;
  }
  uint8_t one[1] = {0};
  ExactBuffer out(sealer.max_sealed_size(0));
  FUZZ_CHECK(sealer.seal(one, 0, out.data()) == 0);
  return sealed;
}

// What a server must release for the request variable header `var` (protocol.md §2.5-2.6:
// address, padding length <= 900 inside the chunk, payload or padding), followed by `more`:
// the address and the payload, padding stripped; nullopt if it must fail.
std::optional<Bytes> expected_request(std::span<const uint8_t> var, std::span<const uint8_t> more) {
  const size_t addr = ss::fuzz::address_header_len(var);
  if (addr == 0 || addr + 2 > var.size()) return std::nullopt;
  const size_t padding = size_t{var[addr]} << 8 | var[addr + 1];
  if (padding > kMaxPadding2022 || addr + 2 + padding > var.size()) return std::nullopt;
  if (padding == 0 && addr + 2 == var.size()) return std::nullopt;
  Bytes out(var.begin(), var.begin() + static_cast<std::ptrdiff_t>(addr));
  out.insert(out.end(), var.begin() + static_cast<std::ptrdiff_t>(addr + 2 + padding), var.end());
  out.insert(out.end(), more.begin(), more.end());
  return out;
}

void flip_bit(Bytes& stream, Rng& rng) {
  stream[rng.below(stream.size())] ^= static_cast<uint8_t>(1u << rng.below(8));
}

// Mode 2/3: a request sealed by the real client, then the real server's response.
void sealed(const Setup2022& s, int64_t skew, int64_t response_skew, std::span<const uint8_t> data,
            Rng& rng) {
  uint64_t client_now = kT0;
  uint64_t server_now = kT0 + skew;
  const std::unique_ptr<TcpCipherSuite> client = client_suite(s, &client_now, &rng);
  const std::unique_ptr<TcpCipherSuite> server = server_suite(s, &server_now);

  // The address: well-formed, or (one time in four) 1..259 bytes of the input, whatever they
  // are (the first byte gives their number): the sealer takes them, the server must judge them.
  const bool raw_address = data.size() >= 2 && rng.below(4) == 0;
  Bytes addr;
  if (raw_address) {
    const size_t n = 1 + data[0] % std::min<size_t>(data.size() - 1, 259);
    addr.assign(data.begin() + 1, data.begin() + 1 + static_cast<std::ptrdiff_t>(n));
    data = data.subspan(1 + n);
  } else {
    addr = ss::fuzz::address_header(static_cast<unsigned>(rng.below(3)), rng);
  }
  Bytes payload(data.begin(), data.end());
  if (!raw_address && !payload.empty() && rng.below(8) == 0) {
    // Past one chunk: seal_request then continues with length and payload chunks.
    const size_t target = kMaxChunk - 1200 + rng.below(2 * kMaxChunk);
    while (payload.size() < target) {
      payload.insert(payload.end(), data.begin(),
                     data.begin() + static_cast<std::ptrdiff_t>(
                                        std::min(data.size(), target - payload.size())));
    }
  }

  const std::unique_ptr<TcpSealer> request = client->client_sealer();
  const Sealed flight = seal_all(*request, addr, payload, rng);
  const size_t first = first_read(s);

  // The variable header the flight carries: address, padding length P, P zeros, the first
  // payload bytes. Unless the payload may have spilt into more chunks, its size gives P.
  std::optional<Bytes> expect = addr;
  expect->insert(expect->end(), payload.begin(), payload.end());
  if (flight.first_n + addr.size() + 2 + kMaxPadding2022 <= kMaxChunk) {
    const size_t var_len = flight.first_len - first - kTag;
    FUZZ_CHECK(var_len >= addr.size() + 2 + flight.first_n);
    const size_t padding = var_len - addr.size() - 2 - flight.first_n;
    // The sealer's padding: at most 900 bytes, some when there is no payload yet.
    FUZZ_CHECK(padding <= kMaxPadding2022 && (padding > 0 || flight.first_n > 0));
    Bytes var = addr;
    var.push_back(static_cast<uint8_t>(padding >> 8));
    var.push_back(static_cast<uint8_t>(padding));
    var.resize(var.size() + padding, 0);
    var.insert(var.end(), payload.begin(),
               payload.begin() + static_cast<std::ptrdiff_t>(flight.first_n));
    const std::optional<Bytes> model =
        expected_request(var, std::span<const uint8_t>(payload).subspan(flight.first_n));
    // A well-formed address always opens.
    if (!raw_address) FUZZ_CHECK(model == expect);
    expect = model;
  }
  const bool fresh_known = fresh(skew) && !(s.users && s.user == ss::fuzz::kStranger);
  const bool opens = fresh_known && expect.has_value();
  const Bytes none;
  const Bytes& want = expect ? *expect : none;

  const std::unique_ptr<TcpOpener> opener = server->server_opener();
  const Outcome got = feed_all(*opener, flight.stream, &rng, first);
  check_request(s, got);
  if (opens) {
    FUZZ_CHECK(!got.error && got.authenticated && got.plaintext == want);
    if (s.users) FUZZ_CHECK(got.user == Setup2022::user_name(s.user));
  } else {
    // A bad variable header fails after the fixed header authenticated.
    FUZZ_CHECK(got.error && got.authenticated == fresh_known && got.plaintext.empty());
  }

  // Damaged flights, each to a new suite (a new salt pool).
  Bytes bad = flight.stream;
  flip_bit(bad, rng);
  const Outcome flipped =
      feed_all(*server_suite(s, &server_now)->server_opener(), bad, &rng, first);
  check_request(s, flipped);
  FUZZ_CHECK(flipped.error && is_prefix(flipped.plaintext, want));
  const size_t cut = rng.below(flight.stream.size());
  const Outcome cut_short =
      feed_all(*server_suite(s, &server_now)->server_opener(),
               std::span<const uint8_t>(flight.stream.data(), cut), &rng, first);
  check_request(s, cut_short);
  FUZZ_CHECK(is_prefix(cut_short.plaintext, want) &&
             (cut_short.plaintext.size() < want.size() || want.empty()));
  if (expect) {
    FUZZ_CHECK(cut_short.error == (cut > 0 && (cut < first || !fresh_known)));
  } else if (cut >= flight.first_len) {
    FUZZ_CHECK(cut_short.error);
  }
  if (!opens) return;

  // The response, at the server's second clock.
  server_now = kT0 + response_skew;
  const std::unique_ptr<TcpSealer> response = server->server_sealer(*opener);
  const Bytes answer = payload.empty() ? Bytes{'!'} : payload;
  const Bytes back = seal_all(*response, {}, answer, rng).stream;
  const Outcome reply = feed_all(*client->client_opener(*request), back, &rng, 0);
  FUZZ_CHECK(reply.user.empty());
  if (fresh(response_skew)) {
    FUZZ_CHECK(!reply.error && reply.authenticated && reply.plaintext == answer);
    // The echoed request salt binds the response to this request.
    const std::unique_ptr<TcpSealer> other = client->client_sealer();
    const Outcome foreign = feed_all(*client->client_opener(*other), back, &rng, 0);
    FUZZ_CHECK(foreign.error && !foreign.authenticated && foreign.plaintext.empty());
  } else {
    FUZZ_CHECK(reply.error && !reply.authenticated && reply.plaintext.empty());
  }
  Bytes bad_back = back;
  flip_bit(bad_back, rng);
  const Outcome bad_reply = feed_all(*client->client_opener(*request), bad_back, &rng, 0);
  FUZZ_CHECK(bad_reply.error && is_prefix(bad_reply.plaintext, answer));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const Setup2022 setup = ss::fuzz::decode_setup(data[0]);
  const int64_t skew = static_cast<int8_t>(data[1]);
  const uint8_t mode = data[2];
  Rng rng(data[3] * 0x0101010101010101ULL ^ size);
  const std::span<const uint8_t> bytes(data + 4, size - 4);
  switch (mode & 3) {
    case 0:
      raw_request(setup, skew, bytes, rng);
      break;
    case 1:
      raw_response(setup, skew, bytes, rng);
      break;
    default:
      sealed(setup, skew, static_cast<int64_t>(mode >> 2) * 2 - 64, bytes, rng);
      break;
  }
  return 0;
}
