// HTTP/1.1 for a forward proxy (RFC 9112 "HTTP/1.1", RFC 9110 "HTTP Semantics", RFC 7617 "The
// 'Basic' HTTP Authentication Scheme"), proxy side:
//   request  : method SP request-target SP HTTP-version CRLF *( field-line CRLF ) CRLF [ body ]
//   response : HTTP-version SP status-code SP [ reason-phrase ] CRLF *( field-line CRLF ) CRLF
// Only two request-target forms reach a forward proxy legitimately: authority-form with CONNECT
// and absolute-form "http://..." for everything else (RFC 9112 §3.2.2, §3.2.3). Origin-form,
// asterisk-form and other schemes (https:// would need TLS we do not terminate) are BadTarget.
//
// Strictness, because a proxy that reads a message differently from the origin behind it is how
// request smuggling happens (RFC 9112 §11.2):
//   * CRLF only. RFC 9112 §2.2 lets a recipient accept a bare LF; we do not, in requests or in
//     responses: the message boundaries we compute must be the ones every strict peer computes.
//     A bare CR is an error too (the other choice §2.2 allows is replacing it with SP).
//   * obs-fold (§5.2) and whitespace between a field name and its colon (§5.1) are errors.
//   * A field value may hold HTAB, SP, VCHAR and obs-text; NUL, CR, LF and other controls are
//     errors (RFC 9110 §5.5).
//   * Framing (§6.1, §6.3): Transfer-Encoding with Content-Length, Transfer-Encoding in an
//     HTTP/1.0 message, chunked applied twice or not last in a request, Content-Length values
//     that differ (repeats of one value are allowed, RFC 9110 §8.6) are BadFraming. The body is
//     relayed unchanged, so Transfer-Encoding is forwarded as received; Content-Length is
//     forwarded once, normalised.
//   * Forwarded requests lose their hop-by-hop fields (RFC 9110 §7.6.1), Upgrade included: after
//     a 101 the bytes are no longer HTTP/1 messages we can frame, and clients that want a
//     WebSocket through a proxy use CONNECT. A field that Connection names is removed too, except
//     Host, Content-Length and Transfer-Encoding, which we set or relay: "Connection:
//     Content-Length" must not strip the length we framed the body with.
//   * Host is regenerated from the absolute-form URI (RFC 9112 §3.2.2: a proxy MUST ignore the
//     received Host); a request with two Host fields is Malformed (RFC 9112 §3.2).
// The keep-alive rules are RFC 9112 §9.3: HTTP/1.1 persists unless "close" is listed, HTTP/1.0
// persists only if "keep-alive" is. Clients talking to a proxy often put those tokens in the
// non-standard Proxy-Connection field, so in requests it counts like Connection.

#include "client/inbound/http1.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <vector>

#include "crypto/kdf.h"

namespace ss::http1 {
namespace {

using sv = std::string_view;

constexpr bool is_alnum(uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

constexpr bool in_set(sv set, uint8_t c) {
  return set.find(static_cast<char>(c)) != sv::npos;
}

// RFC 9110 §5.6.2 tchar.
constexpr bool is_tchar(uint8_t c) {
  return is_alnum(c) || in_set("!#$%&'*+-.^_`|~", c);
}

// VCHAR or obs-text.
constexpr bool is_visible(uint8_t c) {
  return c > 0x20 && c != 0x7F;
}

constexpr bool is_field_byte(uint8_t c) {
  return c == '\t' || c == ' ' || is_visible(c);
}

constexpr bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

// Bytes allowed in an authority we accept: unreserved, sub-delims, ':' and the IPv6 brackets
// (RFC 3986 §3.2). No '@' (userinfo, RFC 9110 §4.2.4) and no '%' (no percent-encoded hosts or
// IPv6 zone identifiers).
constexpr bool is_authority_byte(uint8_t c) {
  return is_alnum(c) || in_set("-._~!$&'()*+,;=:[]", c);
}

sv as_text(std::span<const uint8_t> s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
}

bool iequals(sv a, sv b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

sv trim_ows(sv s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

template <typename Pred>
bool all_of(sv s, Pred pred) {
  return std::all_of(s.begin(), s.end(), [&](char c) { return pred(static_cast<uint8_t>(c)); });
}

// Calls f(element) for every non-empty element of a comma-separated list (RFC 9110 §5.6.1),
// OWS trimmed. Stops early, returning false, if f returns false.
template <typename F>
bool for_each_element(sv list, F&& f) {
  for (;;) {
    const size_t comma = list.find(',');
    const sv element = trim_ows(list.substr(0, comma));
    if (!element.empty() && !f(element)) return false;
    if (comma == sv::npos) return true;
    list.remove_prefix(comma + 1);
  }
}

bool lists_token(sv list, sv token) {
  return !for_each_element(list, [&](sv e) { return !iequals(e, token); });
}

// Decimal digits only, 1..max_digits of them.
std::optional<uint64_t> parse_decimal(sv s, size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// --- Locating a head ---

// Whether the start of the first line can still begin a valid head: a request's method bytes
// are token bytes up to the first SP (or CR: the line structure is checked elsewhere); a
// response starts with "HTTP/".
bool first_line_start_ok(sv first, bool request) {
  if (!request) {
    constexpr sv kPrefix = "HTTP/";
    const size_t n = std::min(first.size(), kPrefix.size());
    return first.substr(0, n) == kPrefix.substr(0, n);
  }
  const size_t end = first.find_first_of(" \r");
  if (end == 0 && first.front() == ' ') return false;
  return all_of(first.substr(0, end), is_tchar);
}

// The start line and the field lines of a head.
struct HeadLines {
  sv start_line;
  sv fields;  // CRLF-terminated field lines (without the final empty line)
};

HeadLines split_head(std::span<const uint8_t> in, size_t start, size_t end) {
  const sv head = as_text(in.subspan(start, end - start));
  const size_t eol = head.find("\r\n");
  return {head.substr(0, eol), head.substr(eol + 2, head.size() - 2 - (eol + 2))};
}

// Finds a complete head in `in` and splits it into `head` (requests skip empty lines before the
// start line); the head ends at `end`, just past its empty line. Checks the line structure on
// the way: no NUL, no bare CR or LF, at most kMaxFields field lines, at most kMaxHeadLen bytes.
ParseStatus find_head(std::span<const uint8_t> in, bool request, HeadLines& head, size_t& end,
                      HeadError& error) {
  error = HeadError::None;
  const size_t limit = std::min(in.size(), kMaxHeadLen);
  size_t i = 0;
  if (request) {
    while (i + 1 < limit && in[i] == '\r' && in[i + 1] == '\n') i += 2;
  }
  const size_t start = i;
  if (!first_line_start_ok(as_text(in.subspan(start, limit - start)), request)) {
    error = HeadError::Malformed;
    return ParseStatus::Error;
  }
  size_t line_start = start;
  size_t lines = 0;
  for (; i < limit; ++i) {
    const uint8_t c = in[i];
    if (c == '\r') {
      if (i + 1 == in.size()) break;  // its LF may be next
      if (in[i + 1] != '\n' || i == start) {
        error = HeadError::Malformed;  // bare CR, or an empty start line
        return ParseStatus::Error;
      }
      if (i == line_start) {
        end = i + 2;
        if (end <= kMaxHeadLen) {
          head = split_head(in, start, end);
          return ParseStatus::Ok;
        }
        error = HeadError::TooLarge;
        return ParseStatus::Error;
      }
      if (++lines > kMaxFields + 1) {  // the start line and kMaxFields field lines
        error = HeadError::TooLarge;
        return ParseStatus::Error;
      }
      ++i;
      line_start = i + 1;
    } else if (c == '\n' || c == 0) {
      error = HeadError::Malformed;
      return ParseStatus::Error;
    }
  }
  if (in.size() >= kMaxHeadLen) {
    error = HeadError::TooLarge;
    return ParseStatus::Error;
  }
  return ParseStatus::NeedMore;
}

// --- Parts of a head ---

HeadError parse_version(sv text, Version& out) {
  if (text.size() != 8 || text.substr(0, 5) != "HTTP/" || text[6] != '.' || text[5] < '0' ||
      text[5] > '9' || text[7] < '0' || text[7] > '9') {
    return HeadError::Malformed;
  }
  if (text[5] != '1' || (text[7] != '0' && text[7] != '1')) return HeadError::UnsupportedVersion;
  out = text[7] == '0' ? Version::Http10 : Version::Http11;
  return HeadError::None;
}

// What the field lines say that the proxy needs.
struct Fields {
  std::optional<sv> host;
  std::optional<sv> proxy_authorization;
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool has_transfer_encoding = false;
  bool chunked = false;  // chunked seen (at most once)
  bool chunked_last = false;
  bool bad_framing = false;
  bool close = false;       // "close" in Connection (or Proxy-Connection in a request)
  bool keep_alive = false;  // "keep-alive" likewise
};

void note_content_length(sv value, Fields& f) {
  size_t values = 0;
  const bool ok = for_each_element(value, [&](sv e) {
    const std::optional<uint64_t> n = parse_decimal(e, kMaxContentLengthDigits);
    if (!n || (f.has_content_length && *n != f.content_length)) return false;
    f.has_content_length = true;
    f.content_length = *n;
    return ++values != 0;
  });
  if (!ok || values == 0) f.bad_framing = true;
}

void note_transfer_encoding(sv value, Fields& f) {
  f.has_transfer_encoding = true;
  const bool ok = for_each_element(value, [&](sv e) {
    if (f.chunked) return false;  // a coding after chunked
    const sv coding = trim_ows(e.substr(0, e.find(';')));
    if (coding.empty() || !all_of(coding, is_tchar)) return false;
    if (iequals(coding, "chunked")) {
      if (coding.size() != e.size()) return false;  // chunked takes no parameters
      f.chunked = true;
    }
    return true;
  });
  if (!ok) f.bad_framing = true;
  f.chunked_last = f.chunked;
}

void note_connection(sv value, Fields& f) {
  f.close = f.close || lists_token(value, "close");
  f.keep_alive = f.keep_alive || lists_token(value, "keep-alive");
}

// Splits a field line into name and value (OWS trimmed); Malformed unless it is token ":" value
// with only field bytes in the value.
HeadError split_field(sv line, sv& name, sv& value) {
  const size_t colon = line.find(':');
  if (colon == 0 || colon == sv::npos) return HeadError::Malformed;
  name = line.substr(0, colon);
  // Leading whitespace (obs-fold, §5.2) or whitespace before the colon (§5.1) fails here.
  if (!all_of(name, is_tchar)) return HeadError::Malformed;
  value = trim_ows(line.substr(colon + 1));
  if (!all_of(value, is_field_byte)) return HeadError::Malformed;
  return HeadError::None;
}

// Calls f(line) for each line of `lines`, a run of CRLF-terminated lines.
template <typename F>
void for_each_line(sv lines, F&& f) {
  while (!lines.empty()) {
    const size_t eol = lines.find("\r\n");
    f(lines.substr(0, eol));
    lines.remove_prefix(eol + 2);
  }
}

HeadError parse_fields(sv lines, bool request, Fields& f) {
  HeadError error = HeadError::None;
  for_each_line(lines, [&](sv line) {
    sv name;
    sv value;
    if (error != HeadError::None) return;
    error = split_field(line, name, value);
    if (error != HeadError::None) return;
    if (iequals(name, "Content-Length")) {
      note_content_length(value, f);
    } else if (iequals(name, "Transfer-Encoding")) {
      note_transfer_encoding(value, f);
    } else if (iequals(name, "Connection") || (request && iequals(name, "Proxy-Connection"))) {
      note_connection(value, f);
    } else if (request && iequals(name, "Host")) {
      if (f.host) error = HeadError::Malformed;
      f.host = value;
    } else if (request && iequals(name, "Proxy-Authorization")) {
      if (f.proxy_authorization) error = HeadError::Malformed;
      f.proxy_authorization = value;
    }
  });
  return error;
}

// host[:port] or [v6][:port] with a valid host; `default_port` 0 means the port is required.
std::optional<Address> parse_authority(sv a, uint16_t default_port) {
  if (a.empty() || !all_of(a, is_authority_byte)) return std::nullopt;
  sv host = a;
  std::optional<sv> port_text;
  if (a.front() == '[') {
    const size_t close = a.find(']');
    if (close == sv::npos) return std::nullopt;
    host = a.substr(0, close + 1);
    const sv rest = a.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port_text = rest.substr(1);
    }
  } else {
    const size_t colon = a.find(':');
    if (colon != sv::npos) {
      host = a.substr(0, colon);
      port_text = a.substr(colon + 1);
    }
    if (host.find_first_of("[]") != sv::npos) return std::nullopt;
  }
  uint16_t port = default_port;
  if (port_text && !(port_text->empty() && default_port != 0)) {
    const std::optional<uint64_t> n = parse_decimal(*port_text, 5);
    if (!n || *n > 65535) return std::nullopt;
    port = static_cast<uint16_t>(*n);
  }
  if (port == 0) return std::nullopt;
  return make_address(host, port);
}

HeadError parse_target(sv target, RequestHead& r) {
  if (r.kind == RequestKind::Connect) {
    std::optional<Address> a = parse_authority(target, 0);
    if (!a) return HeadError::BadTarget;
    r.target = std::move(*a);
    r.authority = target;
    return HeadError::None;
  }
  constexpr sv kScheme = "http://";
  if (target.size() < kScheme.size() || !iequals(target.substr(0, kScheme.size()), kScheme) ||
      target.find('#') != sv::npos) {
    return HeadError::BadTarget;
  }
  const sv rest = target.substr(kScheme.size());
  const size_t end = rest.find_first_of("/?");
  const sv authority = rest.substr(0, end);
  std::optional<Address> a = parse_authority(authority, 80);
  if (!a) return HeadError::BadTarget;
  r.target = std::move(*a);
  r.authority = authority;
  r.path = end == sv::npos ? sv() : rest.substr(end);
  return HeadError::None;
}

HeadError parse_request_line(sv line, RequestHead& r) {
  const size_t sp1 = line.find(' ');
  if (sp1 == 0 || sp1 == sv::npos) return HeadError::Malformed;
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == sv::npos || sp2 == sp1 + 1) return HeadError::Malformed;
  r.method = line.substr(0, sp1);
  const sv target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (!all_of(r.method, is_tchar) || !all_of(target, [](uint8_t c) { return c < 0x7F; }) ||
      !all_of(target, is_visible)) {
    return HeadError::Malformed;
  }
  const HeadError e = parse_version(line.substr(sp2 + 1), r.version);
  if (e != HeadError::None) return e;
  r.kind = r.method == "CONNECT" ? RequestKind::Connect : RequestKind::Forward;
  return parse_target(target, r);
}

// HTTP-version SP 3DIGIT [SP reason-phrase]; a missing SP after the code is tolerated.
HeadError parse_status_line(sv line, ResponseHead& r) {
  if (line.size() < 12 || line[8] != ' ') return HeadError::Malformed;
  const HeadError e = parse_version(line.substr(0, 8), r.version);
  if (e != HeadError::None) return e;
  const std::optional<uint64_t> code = parse_decimal(line.substr(9, 3), 3);
  const sv rest = line.substr(12);
  if (!code || *code < 100 || *code > 599 || (!rest.empty() && rest.front() != ' ') ||
      !all_of(rest, is_field_byte)) {
    return HeadError::Malformed;
  }
  r.status = static_cast<int>(*code);
  r.reason = rest.empty() ? rest : rest.substr(1);
  return HeadError::None;
}

HeadError request_framing(const Fields& f, RequestHead& r) {
  if (f.bad_framing) return HeadError::BadFraming;
  if (r.kind == RequestKind::Connect) {
    // A CONNECT request has no content (RFC 9110 §9.3.6): what follows is tunnel data.
    if (f.has_transfer_encoding || (f.has_content_length && f.content_length != 0)) {
      return HeadError::BadFraming;
    }
    r.body = {};
  } else if (f.has_transfer_encoding) {
    if (f.has_content_length || r.version == Version::Http10 || !f.chunked_last) {
      return HeadError::BadFraming;
    }
    r.body = {BodyKind::Chunked, 0};
  } else if (f.has_content_length) {
    r.body = {BodyKind::Length, f.content_length};
  } else {
    r.body = {};
  }
  return HeadError::None;
}

bool keeps_alive(const Fields& f, Version v) {
  return !f.close && (v == Version::Http11 || f.keep_alive);
}

bool is_hop_by_hop(sv name) {
  static constexpr sv kNames[] = {
      "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authorization", "Proxy-Authenticate",
      "TE",         "Trailer",          "Upgrade"};
  return std::any_of(std::begin(kNames), std::end(kNames), [&](sv n) { return iequals(n, name); });
}

// Whether a Connection field among `fields` lists `name`.
bool named_by_connection(sv fields, sv name) {
  bool named = false;
  for_each_line(fields, [&](sv line) {
    const size_t colon = line.find(':');
    if (!named && iequals(line.substr(0, colon), "Connection")) {
      named = lists_token(line.substr(colon + 1), name);
    }
  });
  return named;
}

// Appends to a fixed buffer; remembers running out of room.
class Writer {
 public:
  explicit Writer(std::span<uint8_t> out) : out_(out) {}
  void put(sv s) {
    if (!ok_ || s.size() > out_.size() - size_) {
      ok_ = false;
      return;
    }
    if (!s.empty()) std::memcpy(out_.data() + size_, s.data(), s.size());
    size_ += s.size();
  }
  size_t result() const { return ok_ ? size_ : 0; }

 private:
  std::span<uint8_t> out_;
  size_t size_ = 0;
  bool ok_ = true;
};

}  // namespace

ParseStatus parse_request_head(std::span<const uint8_t> in, RequestHead& out, HeadError& error) {
  HeadLines head;
  size_t end = 0;
  const ParseStatus s = find_head(in, /*request=*/true, head, end, error);
  if (s != ParseStatus::Ok) return s;
  RequestHead r;
  Fields f;
  HeadError e = parse_request_line(head.start_line, r);
  if (e == HeadError::None) e = parse_fields(head.fields, /*request=*/true, f);
  if (e == HeadError::None) e = request_framing(f, r);
  if (e != HeadError::None) {
    error = e;
    return ParseStatus::Error;
  }
  r.host = f.host;
  r.proxy_authorization = f.proxy_authorization;
  r.keep_alive = keeps_alive(f, r.version);
  r.head_len = end;
  out = std::move(r);
  return ParseStatus::Ok;
}

int status_for(HeadError error) {
  return error == HeadError::TooLarge ? 431 : 400;
}

size_t rewrite_request_head(std::span<const uint8_t> in, const RequestHead& head,
                            bool close_upstream, std::span<uint8_t> out) {
  const sv text = as_text(in.first(std::min(head.head_len, in.size())));
  if (head.kind != RequestKind::Forward || head.head_len > in.size() || head.method.empty() ||
      head.method.data() < text.data() || head.method.data() >= text.data() + text.size()) {
    return 0;
  }
  const auto start = static_cast<size_t>(head.method.data() - text.data());
  const HeadLines lines = split_head(in, start, head.head_len);
  Writer w(out);
  w.put(head.method);
  w.put(" ");
  if (head.path.empty() || head.path.front() != '/') w.put("/");
  w.put(head.path);
  w.put(head.version == Version::Http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  w.put("Host: ");
  w.put(head.authority);
  w.put("\r\n");
  bool length_written = false;
  for_each_line(lines.fields, [&](sv line) {
    const sv name = line.substr(0, line.find(':'));
    if (iequals(name, "Content-Length")) {
      if (length_written || head.body.kind != BodyKind::Length) return;
      char digits[24];
      const auto [end, ec] = std::to_chars(std::begin(digits), std::end(digits), head.body.length);
      w.put("Content-Length: ");
      w.put(sv(digits, static_cast<size_t>(end - digits)));
      w.put("\r\n");
      length_written = true;
      return;
    }
    const bool framing = iequals(name, "Transfer-Encoding");
    if (!framing &&
        (iequals(name, "Host") || is_hop_by_hop(name) || named_by_connection(lines.fields, name))) {
      return;
    }
    w.put(line);
    w.put("\r\n");
  });
  if (close_upstream) {
    w.put("Connection: close\r\n");
  } else if (head.version == Version::Http10) {
    w.put("Connection: keep-alive\r\n");
  }
  w.put("\r\n");
  return w.result();
}

ParseStatus parse_response_head(std::span<const uint8_t> in, std::string_view request_method,
                                ResponseHead& out, HeadError& error) {
  HeadLines head;
  size_t end = 0;
  const ParseStatus s = find_head(in, /*request=*/false, head, end, error);
  if (s != ParseStatus::Ok) return s;
  ResponseHead r;
  HeadError e = parse_status_line(head.start_line, r);
  Fields f;
  if (e == HeadError::None) e = parse_fields(head.fields, /*request=*/false, f);
  if (e == HeadError::None &&
      (f.bad_framing ||
       (f.has_transfer_encoding && (f.has_content_length || r.version == Version::Http10)))) {
    e = HeadError::BadFraming;
  }
  if (e != HeadError::None) {
    error = e;
    return ParseStatus::Error;
  }
  const int cls = r.status / 100;
  if (r.status == 101) {
    r.body = {BodyKind::UntilClose, 0};
  } else if (request_method == "HEAD" || cls == 1 || r.status == 204 || r.status == 304 ||
             (request_method == "CONNECT" && cls == 2)) {
    r.body = {};
    r.informational = cls == 1;
  } else if (f.has_transfer_encoding) {
    r.body = {f.chunked_last ? BodyKind::Chunked : BodyKind::UntilClose, 0};
  } else if (f.has_content_length) {
    r.body = {BodyKind::Length, f.content_length};
  } else {
    r.body = {BodyKind::UntilClose, 0};
  }
  r.keep_alive = keeps_alive(f, r.version) && r.body.kind != BodyKind::UntilClose;
  r.head_len = end;
  out = r;
  return ParseStatus::Ok;
}

// --- BodyFramer ---

BodyFramer::BodyFramer(Body body) : state_(State::Done) {
  switch (body.kind) {
    case BodyKind::None:
      break;
    case BodyKind::Length:
      remaining_ = body.length;
      if (remaining_ != 0) state_ = State::Length;
      break;
    case BodyKind::Chunked:
      state_ = State::Size;
      break;
    case BodyKind::UntilClose:
      state_ = State::UntilClose;
      break;
  }
}

ParseStatus BodyFramer::feed(std::span<const uint8_t> in, size_t& consumed) {
  size_t i = 0;
  while (i < in.size() && state_ != State::Done && state_ != State::Failed) {
    switch (state_) {
      case State::UntilClose:
        i = in.size();
        break;
      case State::Length:
      case State::Data: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size() - i));
        i += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = state_ == State::Length ? State::Done : State::DataCr;
        break;
      }
      default:
        if (!step(in[i])) {
          state_ = State::Failed;
          consumed = i;
          return ParseStatus::Error;
        }
        ++i;
        break;
    }
  }
  consumed = state_ == State::Failed ? 0 : i;
  if (state_ == State::Done) return ParseStatus::Ok;
  return state_ == State::Failed ? ParseStatus::Error : ParseStatus::NeedMore;
}

bool BodyFramer::step(uint8_t c) {
  // Bounded counters: chunk-size digits, then extension or trailer bytes.
  auto count = [this](size_t max) { return ++count_ <= max; };
  switch (state_) {
    case State::Size: {
      int digit = -1;
      if (c >= '0' && c <= '9') digit = c - '0';
      if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      if (digit >= 0) {
        remaining_ = remaining_ << 4 | static_cast<uint64_t>(digit);
        return count(kMaxChunkSizeDigits);
      }
      if (count_ == 0) return false;  // no digits
      // From here count_ counts the bytes between the size and the CR.
      count_ = 0;
      if (c == '\r') {
        state_ = State::SizeLf;
        return true;
      }
      if (c == ' ' || c == '\t') {
        state_ = State::SizeSpace;  // BWS before ';' (or, leniently, before CR)
      } else if (c == ';') {
        state_ = State::Extension;
      } else {
        return false;
      }
      return count(kMaxChunkExtLen);
    }
    case State::SizeSpace:
      if (c == '\r') {
        state_ = State::SizeLf;
        return true;
      }
      if (c == ';') state_ = State::Extension;
      return (c == ';' || c == ' ' || c == '\t') && count(kMaxChunkExtLen);
    case State::Extension:
      if (c == '\r') {
        state_ = State::SizeLf;
        return true;
      }
      return is_field_byte(c) && count(kMaxChunkExtLen);
    case State::SizeLf:
      if (c != '\n') return false;
      count_ = 0;
      state_ = remaining_ == 0 ? State::TrailerStart : State::Data;
      return true;
    case State::DataCr:
      state_ = State::DataLf;
      return c == '\r';
    case State::DataLf:
      state_ = State::Size;
      remaining_ = 0;
      count_ = 0;
      return c == '\n';
    case State::TrailerStart:
      if (c == '\r') {
        state_ = State::FinalLf;
        return true;
      }
      state_ = State::TrailerName;
      return is_tchar(c) && count(kMaxTrailerLen);  // SP or HTAB here would be obs-fold
    case State::TrailerName:
      if (c == ':') state_ = State::TrailerValue;
      return (c == ':' || is_tchar(c)) && count(kMaxTrailerLen);
    case State::TrailerValue:
      if (c == '\r') state_ = State::TrailerLf;
      return (c == '\r' || is_field_byte(c)) && count(kMaxTrailerLen);
    case State::TrailerLf:
      state_ = State::TrailerStart;
      return c == '\n' && count(kMaxTrailerLen);
    case State::FinalLf:
      state_ = State::Done;
      return c == '\n';
    default:
      return false;
  }
}

// --- ResponseFramer ---

void ResponseFramer::start(bool head_request) {
  state_ = State::Head;
  head_request_ = head_request;
  keep_alive_ = false;
  status_ = 0;
  error_ = HeadError::None;
  len_ = 0;
  if (!head_) head_ = std::make_unique<uint8_t[]>(kMaxHeadLen);
}

ParseStatus ResponseFramer::fail(HeadError e) {
  state_ = State::Failed;
  error_ = e;
  return ParseStatus::Error;
}

ParseStatus ResponseFramer::feed(std::span<const uint8_t> in, size_t& consumed) {
  consumed = 0;
  while (state_ == State::Head) {
    // Copy what may still be head, then parse the head read so far (at most kMaxHeadLen bytes).
    const size_t take = std::min(in.size() - consumed, kMaxHeadLen - len_);
    if (take != 0) std::memcpy(head_.get() + len_, in.data() + consumed, take);
    ResponseHead head;
    HeadError e = HeadError::None;
    const ParseStatus st =
        parse_response_head({head_.get(), len_ + take}, head_request_ ? "HEAD" : "GET", head, e);
    if (st == ParseStatus::NeedMore) {
      len_ += take;
      consumed += take;
      if (len_ == kMaxHeadLen) return fail(HeadError::TooLarge);
      return ParseStatus::NeedMore;
    }
    if (st == ParseStatus::Error) return fail(e);
    consumed += head.head_len - len_;
    len_ = 0;
    if (head.informational) continue;  // 100 Continue, 102, 103: the final head follows
    status_ = head.status;
    keep_alive_ = head.keep_alive;
    body_ = BodyFramer(head.body);
    state_ = State::Body;
  }
  if (state_ == State::Body) {
    size_t used = 0;
    const ParseStatus st = body_.feed(in.subspan(consumed), used);
    consumed += used;
    if (st == ParseStatus::Error) return fail(HeadError::BadFraming);
    if (st == ParseStatus::NeedMore) return st;
    state_ = State::Done;
    return ParseStatus::Ok;
  }
  return state_ == State::Done ? ParseStatus::Ok : ParseStatus::Error;
}

// --- Credentials and canned answers ---

std::optional<BasicCredentials> decode_basic_credentials(std::string_view field_value) {
  sv v = trim_ows(field_value);
  const size_t sp = v.find(' ');
  if (sp == sv::npos || !iequals(v.substr(0, sp), "Basic")) return std::nullopt;
  v.remove_prefix(sp);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  // token68 (RFC 9110 §11.2); base64_decode then takes the standard or the URL-safe alphabet.
  const size_t pad = v.find('=');
  if (v.empty() || pad == 0 ||
      !all_of(v.substr(0, pad), [](uint8_t c) { return is_alnum(c) || in_set("-._~+/", c); }) ||
      (pad != sv::npos && !all_of(v.substr(pad), [](uint8_t c) { return c == '='; }))) {
    return std::nullopt;
  }
  std::optional<std::vector<uint8_t>> bytes = base64_decode(v);
  if (!bytes) return std::nullopt;
  const sv text = as_text(*bytes);
  const size_t colon = text.find(':');
  const bool ok =
      colon != sv::npos && all_of(text, [](uint8_t c) { return c >= 0x20 && c != 0x7F; });
  std::optional<BasicCredentials> result;
  if (ok)
    result =
        BasicCredentials{std::string(text.substr(0, colon)), std::string(text.substr(colon + 1))};
  secure_zero(*bytes);
  return result;
}

std::string_view connect_established_response() {
  return "HTTP/1.1 200 Connection established\r\n\r\n";
}

std::string_view error_response(Status status, bool close) {
  switch (status) {
    case Status::BadRequest:
      return close ? "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                   : "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    case Status::Forbidden:
      return close ? "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                   : "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
    case Status::ProxyAuthenticationRequired:
      return close ? "HTTP/1.1 407 Proxy Authentication Required\r\n"
                     "Proxy-Authenticate: Basic realm=\"shadowsocks-uv\"\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n"
                   : "HTTP/1.1 407 Proxy Authentication Required\r\n"
                     "Proxy-Authenticate: Basic realm=\"shadowsocks-uv\"\r\n"
                     "Content-Length: 0\r\n\r\n";
    case Status::RequestHeaderFieldsTooLarge:
      return close ? "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n"
                   : "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n";
    case Status::BadGateway:
      return close ? "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                   : "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
    case Status::GatewayTimeout:
      return close
                 ? "HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                 : "HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\n\r\n";
  }
  return "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
}

}  // namespace ss::http1
