// Fuzzes the HTTP/1.x proxy parsing of ss-local (client/inbound/http1.h). Input: a mode byte, a
// seed byte, then the bytes under test.
//   mode 0: parse_request_head. Every sampled prefix gives NeedMore or the whole input's result;
//     Ok heads are consistent (kind, port, path, framing); rewrite_request_head fits
//     rewritten_head_bound, needs exactly the size it reports, leaves no hop-by-hop field, and
//     read back in absolute-form gives the same request and rewrites to the same bytes; the
//     bytes after the head go through a BodyFramer for the request's body.
//   mode 1: parse_response_head for GET, HEAD, CONNECT or POST (seed), prefixes as above,
//     RFC 9112 §6.3 body rules; the rest goes through a BodyFramer.
//   mode 2: a chunked BodyFramer on the bytes; mode 3: Length (seed) and UntilClose framers,
//     and decode_basic_credentials round trips.
//   mode 4: a ResponseFramer (to a HEAD request or not, seed) fed whole and split agrees with
//     parse_response_head over the interim heads and a BodyFramer on the final one.
// Every BodyFramer is fed the same bytes whole and split at input-chosen points: both must
// agree on the status and on how many bytes belong to the message.

#include <array>
#include <cstring>
#include <string>
#include <string_view>

#include "client/inbound/http1.h"
#include "crypto/kdf.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ss;
using namespace ss::http1;
using Bytes = std::span<const uint8_t>;

std::string_view text(Bytes b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

Bytes bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

bool ends_with_empty_line(Bytes in, size_t head_len) {
  return head_len >= 4 && head_len <= in.size() && text(in.first(head_len)).ends_with("\r\n\r\n");
}

// Calls f on prefixes of `in`: all short ones, then a few input-chosen longer ones.
template <typename F>
void for_sampled_prefixes(Bytes in, fuzz::Rng& rng, F&& f) {
  const size_t dense = std::min<size_t>(in.size(), 48);
  for (size_t n = 0; n <= dense; ++n) f(in.first(n));
  if (in.size() > dense) {
    for (int i = 0; i < 24; ++i) f(in.first(dense + 1 + rng.below(in.size() - dense)));
  }
}

// --- BodyFramer ---

void check_framer(Body body, Bytes in, fuzz::Rng& rng) {
  BodyFramer whole(body);
  size_t used = static_cast<size_t>(-1);
  const ParseStatus s = whole.feed(in, used);
  size_t again = 1;
  switch (s) {
    case ParseStatus::Ok:
      FUZZ_CHECK(used <= in.size() && whole.done() && whole.complete_at_eof());
      FUZZ_CHECK(whole.feed(in, again) == ParseStatus::Ok && again == 0);
      if (body.kind == BodyKind::Length) FUZZ_CHECK(used == body.length);
      if (body.kind == BodyKind::Chunked) {
        FUZZ_CHECK(used >= 5 && text(in.first(used)).ends_with("\r\n"));
      }
      break;
    case ParseStatus::NeedMore:
      FUZZ_CHECK(used == in.size() && !whole.done());
      FUZZ_CHECK(whole.complete_at_eof() == (body.kind == BodyKind::UntilClose));
      break;
    case ParseStatus::Error:
      FUZZ_CHECK(body.kind == BodyKind::Chunked && used < in.size() && !whole.complete_at_eof());
      FUZZ_CHECK(whole.feed(in, again) == ParseStatus::Error && again == 0);
      break;
  }

  BodyFramer split(body);
  size_t total = 0;
  size_t at = 0;
  ParseStatus t = ParseStatus::NeedMore;
  do {
    const size_t n = at < in.size() ? rng.piece(in.size() - at) : 0;
    size_t u = static_cast<size_t>(-1);
    t = split.feed(in.subspan(at, n), u);
    FUZZ_CHECK(u <= n);
    if (t == ParseStatus::NeedMore) FUZZ_CHECK(u == n);
    total += u;
    at += n;
  } while (t == ParseStatus::NeedMore && at < in.size());
  FUZZ_CHECK(t == s && total == used);
}

// --- Requests ---

// What a head parser returned.
template <typename Head>
struct Parsed {
  ParseStatus status;
  Head head;
  HeadError error;
};

bool same_head(const RequestHead& x, const RequestHead& y);
bool same_head(const ResponseHead& x, const ResponseHead& y);

template <typename Head>
bool same(const Parsed<Head>& a, const Parsed<Head>& b) {
  return a.status == b.status && a.error == b.error &&
         (a.status != ParseStatus::Ok || same_head(a.head, b.head));
}

using Req = Parsed<RequestHead>;
using Resp = Parsed<ResponseHead>;

Req parse_request(Bytes in) {
  Req r{ParseStatus::NeedMore, {}, HeadError::None};
  r.status = parse_request_head(in, r.head, r.error);
  return r;
}

// The path rewrite_request_head writes.
std::string origin_path(std::string_view path) {
  return path.empty() || path.front() != '/' ? "/" + std::string(path) : std::string(path);
}

bool same_head(const RequestHead& x, const RequestHead& y) {
  return x.kind == y.kind && x.method == y.method && x.version == y.version &&
         x.target == y.target && x.authority == y.authority && x.path == y.path &&
         x.host == y.host && x.proxy_authorization == y.proxy_authorization &&
         x.keep_alive == y.keep_alive && x.body.kind == y.body.kind &&
         x.body.length == y.body.length && x.head_len == y.head_len;
}

bool is_hop_by_hop(std::string_view name) {
  static constexpr std::array<std::string_view, 8> kNames = {
      "connection", "proxy-connection", "keep-alive", "proxy-authorization", "proxy-authenticate",
      "te",         "trailer",          "upgrade"};
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  for (std::string_view n : kNames) {
    if (lower == n) return true;
  }
  return false;
}

// Rewrites `in` (an Ok Forward request) into an exact-size buffer of `cap` bytes.
std::string rewrite(Bytes in, const RequestHead& head, bool close, size_t cap) {
  fuzz::ExactBuffer out(cap);
  const size_t n = rewrite_request_head(in, head, close, {out.data(), out.size()});
  FUZZ_CHECK(n <= cap);
  return std::string(reinterpret_cast<const char*>(out.data()), n);
}

void check_rewrite(Bytes in, const RequestHead& head, bool close) {
  const size_t bound = rewritten_head_bound(head.head_len);
  const std::string out = rewrite(in, head, close, bound);
  if (head.kind == RequestKind::Connect) {
    FUZZ_CHECK(out.empty());
    return;
  }
  FUZZ_CHECK(!out.empty() && out.ends_with("\r\n\r\n"));
  FUZZ_CHECK(rewrite(in, head, close, out.size()) == out);
  FUZZ_CHECK(rewrite(in, head, close, out.size() - 1).empty());

  // The field lines: Host once, Content-Length at most once, nothing hop-by-hop but our
  // Connection: close.
  const size_t first_eol = out.find("\r\n");
  const std::string expected_line = std::string(head.method) + " " + origin_path(head.path) +
                                    (head.version == Version::Http10 ? " HTTP/1.0" : " HTTP/1.1");
  FUZZ_CHECK(out.substr(0, first_eol) == expected_line);
  size_t hosts = 0;
  size_t lengths = 0;
  size_t closes = 0;
  size_t keep_alives = 0;
  for (size_t at = first_eol + 2; at + 2 < out.size();) {
    const size_t eol = out.find("\r\n", at);
    const std::string_view line(out.data() + at, eol - at);
    const std::string_view name = line.substr(0, line.find(':'));
    if (name == "Host") ++hosts;
    if (name == "Content-Length" || name == "content-length") ++lengths;
    if (line == "Connection: close") {
      ++closes;
    } else if (line == "Connection: keep-alive") {
      ++keep_alives;
    } else {
      FUZZ_CHECK(!is_hop_by_hop(name));
    }
    at = eol + 2;
  }
  FUZZ_CHECK(hosts >= 1 && lengths <= 1 && closes == (close ? 1u : 0u));
  FUZZ_CHECK(keep_alives == (!close && head.version == Version::Http10 ? 1u : 0u));

  // Read back in absolute-form: the same request, rewritten to the same bytes.
  const std::string absolute = std::string(head.method) + " http://" + std::string(head.authority) +
                               origin_path(head.path) + out.substr(expected_line.size() - 9);
  const Req back = parse_request(bytes(absolute));
  if (back.status == ParseStatus::Error && back.error == HeadError::TooLarge) return;
  FUZZ_CHECK(back.status == ParseStatus::Ok);
  const RequestHead& b = back.head;
  FUZZ_CHECK(b.kind == RequestKind::Forward && b.method == head.method);
  FUZZ_CHECK(b.version == head.version && b.target == head.target);
  FUZZ_CHECK(b.authority == head.authority && b.path == origin_path(head.path));
  FUZZ_CHECK(b.body.kind == head.body.kind && b.body.length == head.body.length);
  FUZZ_CHECK(b.host && *b.host == head.authority && !b.proxy_authorization);
  FUZZ_CHECK(b.keep_alive == !close);
  if (!close) FUZZ_CHECK(rewrite(bytes(absolute), b, false, bound + 512) == out);
}

void check_request(Bytes in, fuzz::Rng& rng, bool close) {
  const Req whole = parse_request(in);
  for_sampled_prefixes(in, rng, [&](Bytes p) {
    const Req r = parse_request(p);
    FUZZ_CHECK(r.status == ParseStatus::NeedMore || same(r, whole));
  });
  switch (whole.status) {
    case ParseStatus::NeedMore:
      FUZZ_CHECK(whole.error == HeadError::None && in.size() < kMaxHeadLen);
      return;
    case ParseStatus::Error:
      FUZZ_CHECK(whole.error != HeadError::None);
      return;
    case ParseStatus::Ok:
      break;
  }
  const RequestHead& h = whole.head;
  FUZZ_CHECK(whole.error == HeadError::None);
  FUZZ_CHECK(ends_with_empty_line(in, h.head_len) && h.head_len <= kMaxHeadLen);
  FUZZ_CHECK(same(parse_request(in.first(h.head_len)), whole));
  FUZZ_CHECK(parse_request(in.first(h.head_len - 1)).status == ParseStatus::NeedMore);
  FUZZ_CHECK(!h.method.empty() && !h.authority.empty() && h.target.port != 0);
  FUZZ_CHECK((h.kind == RequestKind::Connect) == (h.method == "CONNECT"));
  FUZZ_CHECK(h.body.kind != BodyKind::UntilClose);
  if (h.kind == RequestKind::Connect) {
    FUZZ_CHECK(h.path.empty() && h.body.kind == BodyKind::None);
  } else {
    FUZZ_CHECK(h.path.empty() || h.path.front() == '/' || h.path.front() == '?');
  }
  if (h.proxy_authorization) (void)decode_basic_credentials(*h.proxy_authorization);
  check_rewrite(in, h, close);
  check_framer(h.body, in.subspan(h.head_len), rng);
}

// --- Responses ---

Resp parse_response(Bytes in, std::string_view method) {
  Resp r{ParseStatus::NeedMore, {}, HeadError::None};
  r.status = parse_response_head(in, method, r.head, r.error);
  return r;
}

bool same_head(const ResponseHead& x, const ResponseHead& y) {
  return x.version == y.version && x.status == y.status && x.reason == y.reason &&
         x.informational == y.informational && x.keep_alive == y.keep_alive &&
         x.body.kind == y.body.kind && x.body.length == y.body.length && x.head_len == y.head_len;
}

void check_response(Bytes in, std::string_view method, fuzz::Rng& rng) {
  const Resp whole = parse_response(in, method);
  for_sampled_prefixes(in, rng, [&](Bytes p) {
    const Resp r = parse_response(p, method);
    FUZZ_CHECK(r.status == ParseStatus::NeedMore || same(r, whole));
  });
  if (whole.status != ParseStatus::Ok) {
    FUZZ_CHECK((whole.status == ParseStatus::Error) == (whole.error != HeadError::None));
    return;
  }
  const ResponseHead& h = whole.head;
  FUZZ_CHECK(ends_with_empty_line(in, h.head_len) && h.head_len <= kMaxHeadLen);
  FUZZ_CHECK(text(in).starts_with("HTTP/1."));
  FUZZ_CHECK(h.status >= 100 && h.status <= 599);
  FUZZ_CHECK(h.informational == (h.status / 100 == 1 && h.status != 101));
  const bool no_body = method == "HEAD" || h.status / 100 == 1 || h.status == 204 ||
                       h.status == 304 || (method == "CONNECT" && h.status / 100 == 2);
  if (h.status == 101) {
    FUZZ_CHECK(h.body.kind == BodyKind::UntilClose);
  } else if (no_body) {
    FUZZ_CHECK(h.body.kind == BodyKind::None);
  }
  if (h.body.kind == BodyKind::UntilClose) FUZZ_CHECK(!h.keep_alive);
  FUZZ_CHECK(parse_response(in.first(h.head_len - 1), method).status == ParseStatus::NeedMore);
  check_framer(h.body, in.subspan(h.head_len), rng);
}

// What ResponseFramer must find: interim heads skipped, then the final head's body framed.
ParseStatus reference_response(Bytes in, bool head_request, size_t& used) {
  used = 0;
  for (;;) {
    const Resp r = parse_response(in.subspan(used), head_request ? "HEAD" : "GET");
    if (r.status == ParseStatus::NeedMore) {
      used = in.size();
      return r.status;
    }
    if (r.status == ParseStatus::Error) return r.status;
    used += r.head.head_len;
    if (r.head.informational) continue;
    BodyFramer body(r.head.body);
    size_t u = 0;
    const ParseStatus s = body.feed(in.subspan(used), u);
    used += u;
    return s;
  }
}

void check_response_framer(Bytes in, bool head_request, fuzz::Rng& rng) {
  size_t expected = 0;
  const ParseStatus ref = reference_response(in, head_request, expected);
  ResponseFramer whole;
  whole.start(head_request);
  size_t used = static_cast<size_t>(-1);
  const ParseStatus s = whole.feed(in, used);
  FUZZ_CHECK(s == ref);
  if (s != ParseStatus::Error) FUZZ_CHECK(used == expected);
  size_t again = 1;
  if (s == ParseStatus::Ok) {
    FUZZ_CHECK(whole.feed(in, again) == ParseStatus::Ok && again == 0);
    FUZZ_CHECK(whole.status() >= 200 || whole.status() == 101);
  }
  if (s == ParseStatus::Error) {
    FUZZ_CHECK(whole.error() != HeadError::None && !whole.complete_at_eof());
    FUZZ_CHECK(whole.feed(in, again) == ParseStatus::Error && again == 0);
  }

  ResponseFramer split;
  split.start(head_request);
  size_t total = 0;
  size_t at = 0;
  ParseStatus t = ParseStatus::NeedMore;
  do {
    const size_t n = at < in.size() ? rng.piece(in.size() - at) : 0;
    size_t u = static_cast<size_t>(-1);
    t = split.feed(in.subspan(at, n), u);
    FUZZ_CHECK(u <= n);
    if (t == ParseStatus::NeedMore) FUZZ_CHECK(u == n);
    total += u;
    at += n;
  } while (t == ParseStatus::NeedMore && at < in.size());
  FUZZ_CHECK(t == s);
  if (s != ParseStatus::Error) FUZZ_CHECK(total == used);
  if (s == ParseStatus::Ok) FUZZ_CHECK(split.keep_alive() == whole.keep_alive());
}

// --- Credentials ---

void check_basic(Bytes in) {
  const std::optional<BasicCredentials> c = decode_basic_credentials(text(in));
  if (!c) return;
  FUZZ_CHECK(c->user.find(':') == std::string::npos);
  const std::string joined = c->user + ":" + c->password;
  const std::string header =
      "Basic " + base64_encode({reinterpret_cast<const uint8_t*>(joined.data()), joined.size()});
  const std::optional<BasicCredentials> again = decode_basic_credentials(header);
  FUZZ_CHECK(again && again->user == c->user && again->password == c->password);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t mode = data[0];
  const uint8_t seed = data[1];
  const Bytes in(data + 2, size - 2);
  fuzz::Rng rng(fuzz::hash_bytes(in) ^ seed);
  switch (mode % 5) {
    case 0:
      check_request(in, rng, (seed & 1) != 0);
      break;
    case 1: {
      static constexpr std::array<std::string_view, 4> kMethods = {"GET", "HEAD", "CONNECT",
                                                                   "POST"};
      check_response(in, kMethods[seed % 4], rng);
      break;
    }
    case 2:
      check_framer(Body{BodyKind::Chunked, 0}, in, rng);
      break;
    case 4:
      check_response_framer(in, (seed & 1) != 0, rng);
      break;
    default:
      check_framer(Body{BodyKind::Length, seed}, in, rng);
      check_framer(Body{BodyKind::UntilClose, 0}, in, rng);
      check_framer(Body{}, in, rng);
      check_basic(in);
      break;
  }
  return 0;
}
