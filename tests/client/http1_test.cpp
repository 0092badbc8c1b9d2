// HTTP/1.x proxy parsing (client/inbound/http1.h): request and response heads, the rewritten
// head, body framing, Basic credentials and the proxy's own answers.

#include "client/inbound/http1.h"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace ss::http1 {
namespace {

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct Req {
  ParseStatus status;
  RequestHead head;
  HeadError error = HeadError::None;
};

Req req(std::string_view text) {
  Req r{};
  r.status = parse_request_head(bytes(text), r.head, r.error);
  return r;
}

HeadError req_error(std::string_view text) {
  const Req r = req(text);
  CHECK(r.status == ParseStatus::Error);
  return r.error;
}

struct Resp {
  ParseStatus status;
  ResponseHead head;
  HeadError error = HeadError::None;
};

Resp resp(std::string_view text, std::string_view method = "GET") {
  Resp r{};
  r.status = parse_response_head(bytes(text), method, r.head, r.error);
  return r;
}

HeadError resp_error(std::string_view text) {
  const Resp r = resp(text);
  CHECK(r.status == ParseStatus::Error);
  return r.error;
}

std::string rewrite(std::string_view text, bool close = false) {
  const Req r = req(text);
  REQUIRE(r.status == ParseStatus::Ok);
  std::string out(rewritten_head_bound(r.head.head_len), '\0');
  const size_t n = rewrite_request_head(bytes(text), r.head, close,
                                        {reinterpret_cast<uint8_t*>(out.data()), out.size()});
  REQUIRE(n != 0);
  out.resize(n);
  return out;
}

// Feeds `in` in pieces of `piece` bytes; returns the total consumed and the last status.
std::pair<ParseStatus, size_t> frame(Body body, std::string_view in, size_t piece) {
  BodyFramer f(body);
  size_t total = 0;
  ParseStatus s = ParseStatus::NeedMore;
  for (size_t at = 0; at < in.size() || at == 0; at += piece) {
    size_t used = 0;
    s = f.feed(bytes(in.substr(at, piece)), used);
    total += used;
    if (s != ParseStatus::NeedMore) break;
    if (in.empty()) break;
  }
  return {s, total};
}

const Body kChunked{BodyKind::Chunked, 0};

constexpr std::string_view kGet =
    "GET http://example.com/index.html?q=1 HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "User-Agent: test\r\n"
    "\r\n";

}  // namespace

// --- Request heads ---

TEST_CASE("http1: CONNECT with authority-form targets", "[client]") {
  const std::string_view text = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
  const Req r = req(text);
  REQUIRE(r.status == ParseStatus::Ok);
  CHECK(r.head.kind == RequestKind::Connect);
  CHECK(r.head.method == "CONNECT");
  CHECK(r.head.version == Version::Http11);
  CHECK(r.head.target.to_string() == "example.com:443");
  CHECK(r.head.authority == "example.com:443");
  CHECK(r.head.path.empty());
  CHECK(r.head.head_len == text.size());
  CHECK(r.head.keep_alive);
  CHECK(r.head.body.kind == BodyKind::None);
  REQUIRE(r.head.host);
  CHECK(*r.head.host == "example.com:443");

  const Req v6 = req("CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n\r\n");
  REQUIRE(v6.status == ParseStatus::Ok);
  CHECK(v6.head.target.type == Address::Type::IPv6);
  CHECK(v6.head.target.to_string() == "[2001:db8::1]:8443");
  const Req v4 = req("CONNECT 192.0.2.1:22 HTTP/1.0\r\n\r\n");
  REQUIRE(v4.status == ParseStatus::Ok);
  CHECK(v4.head.target.type == Address::Type::IPv4);
  CHECK(v4.head.version == Version::Http10);
  CHECK_FALSE(v4.head.keep_alive);
}

TEST_CASE("http1: CONNECT targets that are not host:port are BadTarget", "[client]") {
  for (std::string_view target :
       {"example.com", "example.com:", "example.com:0", "example.com:65536", "example.com:80x",
        ":443", "[::1]", "[::1]443", "::1:443", "[1.2.3.4]:443", "user@example.com:443",
        "http://example.com:443/", "/", "*", "exa%41mple.com:443", "[fe80::1%25eth0]:443",
        "a[b]:443"}) {
    INFO(target);
    const std::string text = "CONNECT " + std::string(target) + " HTTP/1.1\r\n\r\n";
    CHECK(req_error(text) == HeadError::BadTarget);
  }
  // A 256-byte host can never be a host name.
  CHECK(req_error("CONNECT " + std::string(256, 'a') + ":443 HTTP/1.1\r\n\r\n") ==
        HeadError::BadTarget);
  CHECK(req("CONNECT " + std::string(255, 'a') + ":443 HTTP/1.1\r\n\r\n").status ==
        ParseStatus::Ok);
}

TEST_CASE("http1: absolute-form requests are Forward with an origin-form path", "[client]") {
  const Req r = req(kGet);
  REQUIRE(r.status == ParseStatus::Ok);
  CHECK(r.head.kind == RequestKind::Forward);
  CHECK(r.head.method == "GET");
  CHECK(r.head.target.to_string() == "example.com:80");
  CHECK(r.head.authority == "example.com");
  CHECK(r.head.path == "/index.html?q=1");
  CHECK(r.head.head_len == kGet.size());
  CHECK(r.head.body.kind == BodyKind::None);

  const std::string_view post =
      "POST HTTP://Example.COM:8080 HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc";
  const Req port = req(post);
  REQUIRE(port.status == ParseStatus::Ok);
  CHECK(port.head.target.to_string() == "Example.COM:8080");
  CHECK(port.head.path.empty());
  CHECK(port.head.body.kind == BodyKind::Length);
  CHECK(port.head.body.length == 3);
  CHECK(port.head.head_len == post.size() - 3);

  const Req v6 = req("GET http://[::1]:8080/x HTTP/1.1\r\n\r\n");
  REQUIRE(v6.status == ParseStatus::Ok);
  CHECK(v6.head.target.to_string() == "[::1]:8080");
  CHECK(v6.head.authority == "[::1]:8080");
  const Req query = req("GET http://a.example?x=1 HTTP/1.1\r\n\r\n");
  REQUIRE(query.status == ParseStatus::Ok);
  CHECK(query.head.path == "?x=1");
  const Req empty_port = req("GET http://a.example:/ HTTP/1.1\r\n\r\n");
  REQUIRE(empty_port.status == ParseStatus::Ok);
  CHECK(empty_port.head.target.port == 80);
  const Req literal = req("GET http://127.0.0.1:8000/ HTTP/1.1\r\n\r\n");
  REQUIRE(literal.status == ParseStatus::Ok);
  CHECK(literal.head.target.type == Address::Type::IPv4);
}

TEST_CASE("http1: other request-target forms are BadTarget (400)", "[client]") {
  for (std::string_view line :
       {"GET / HTTP/1.1", "OPTIONS * HTTP/1.1", "GET https://example.com/ HTTP/1.1",
        "GET ftp://example.com/ HTTP/1.1", "GET http:/example.com/ HTTP/1.1",
        "GET http:///path HTTP/1.1", "GET http:// HTTP/1.1",
        "GET http://user:pass@example.com/ HTTP/1.1", "GET http://example.com/#frag HTTP/1.1",
        "GET http://::1/ HTTP/1.1", "GET http://example.com:99999/ HTTP/1.1",
        "GET http://example.com:0/ HTTP/1.1", "GET example.com:80 HTTP/1.1",
        "connect example.com:443 HTTP/1.1"}) {
    INFO(line);
    CHECK(req_error(std::string(line) + "\r\n\r\n") == HeadError::BadTarget);
  }
  CHECK(status_for(HeadError::BadTarget) == 400);
}

TEST_CASE("http1: every strict prefix of a request head is NeedMore", "[client]") {
  const std::string text = std::string(kGet) + "GET http://next.example/ HTTP/1.1\r\n\r\n";
  for (size_t n = 0; n < kGet.size(); ++n) {
    INFO("prefix " << n);
    CHECK(req(std::string_view(text).substr(0, n)).status == ParseStatus::NeedMore);
  }
  // The pipelined second request is not part of the first head.
  const Req r = req(text);
  REQUIRE(r.status == ParseStatus::Ok);
  CHECK(r.head.head_len == kGet.size());
}

TEST_CASE("http1: byte-by-byte feeding of a request head", "[client]") {
  const std::string text = "CONNECT example.com:443 HTTP/1.1\r\n\r\n\x16\x03\x01";
  std::string buf;
  Req last{};
  for (char c : text) {
    buf += c;
    last = req(buf);
    if (last.status != ParseStatus::NeedMore) break;
  }
  REQUIRE(last.status == ParseStatus::Ok);
  CHECK(buf.size() == text.size() - 3);
  CHECK(last.head.head_len == buf.size());
}

TEST_CASE("http1: empty lines before the request line are skipped", "[client]") {
  const std::string text = "\r\n\r\n" + std::string(kGet);
  const Req r = req(text);
  REQUIRE(r.status == ParseStatus::Ok);
  CHECK(r.head.head_len == text.size());
  CHECK(req("\r").status == ParseStatus::NeedMore);
  CHECK(req("\r\n").status == ParseStatus::NeedMore);
  CHECK(req_error("\r\r") == HeadError::Malformed);
  CHECK(req_error("\r\n\n") == HeadError::Malformed);
}

TEST_CASE("http1: bare LF and bare CR are Malformed", "[client]") {
  CHECK(req_error("GET http://a.example/ HTTP/1.1\n\n") == HeadError::Malformed);
  CHECK(req_error("GET http://a.example/ HTTP/1.1\r\nHost: a\n\r\n") == HeadError::Malformed);
  CHECK(req_error("GET http://a.example/ HTTP/1.1\r\nHost: a\r\n\n") == HeadError::Malformed);
  CHECK(req_error("GET http://a.example/ HTTP/1.1\r\nHost: a\rb\r\n\r\n") == HeadError::Malformed);
  // Known to be bad before the head is complete.
  CHECK(req_error("GET http://a.example/ HTTP/1.1\n") == HeadError::Malformed);
  CHECK(req_error("GET http://a.example/ HTTP/1.1\r\nX: \rx") == HeadError::Malformed);
}

TEST_CASE("http1: bad bytes and bad field lines are Malformed", "[client]") {
  const std::string start = "GET http://a.example/ HTTP/1.1\r\n";
  for (std::string_view field :
       {std::string_view("X: a\0b", 6),
        std::string_view("X: a\x01"
                         "b"),
        std::string_view("X: a\x7f"), std::string_view("X : a"), std::string_view("X\t: a"),
        std::string_view(": a"), std::string_view("X"), std::string_view(" X: a"),
        std::string_view("X(: a"), std::string_view("\x80: a")}) {
    INFO(std::string(field));
    CHECK(req_error(start + std::string(field) + "\r\n\r\n") == HeadError::Malformed);
  }
  // obs-fold: a continuation line.
  CHECK(req_error(start + "X: a\r\n b\r\n\r\n") == HeadError::Malformed);
  CHECK(req_error(start + "X: a\r\n\tb\r\n\r\n") == HeadError::Malformed);
  // NUL is rejected as soon as it arrives.
  CHECK(req_error(start + std::string("X: a\0", 5)) == HeadError::Malformed);
  // obs-text, HTAB and empty values are fine.
  const Req ok = req(start + "X: caf\xc3\xa9\tx\r\nY:\r\nZ:   \r\n\r\n");
  CHECK(ok.status == ParseStatus::Ok);
}

TEST_CASE("http1: request line syntax", "[client]") {
  for (std::string_view line :
       {"GET  http://a.example/ HTTP/1.1", "GET http://a.example/  HTTP/1.1",
        " GET http://a.example/ HTTP/1.1", "GET http://a.example/ HTTP/1.1 ",
        "GET http://a.example/", "GET", "GET http://a.example/ http/1.1",
        "GET http://a.example/ HTTP/1", "GET http://a.example/ HTTP/1.10",
        "GET http://a.example/ HTTP/x.1", "GET http://a.ex\xc3\xa9/ HTTP/1.1",
        "G(T http://a.example/ HTTP/1.1"}) {
    INFO(line);
    CHECK(req_error(std::string(line) + "\r\n\r\n") == HeadError::Malformed);
  }
  for (std::string_view version : {"HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0"}) {
    INFO(version);
    CHECK(req_error("GET http://a.example/ " + std::string(version) + "\r\n\r\n") ==
          HeadError::UnsupportedVersion);
  }
  // Non-token method bytes fail before the line is complete (TLS, binary).
  CHECK(req_error("\x16\x03\x01") == HeadError::Malformed);
  CHECK(req_error("G(") == HeadError::Malformed);
  CHECK(req("GE").status == ParseStatus::NeedMore);
  // Any token is a method; methods are case-sensitive.
  const Req custom = req("PROPFIND http://a.example/ HTTP/1.1\r\n\r\n");
  REQUIRE(custom.status == ParseStatus::Ok);
  CHECK(custom.head.method == "PROPFIND");
}

TEST_CASE("http1: head size bound (431)", "[client]") {
  const std::string start = "GET http://a.example/ HTTP/1.1\r\nX: ";
  const std::string end = "\r\n\r\n";
  // Exactly kMaxHeadLen bytes: accepted.
  std::string exact = start + std::string(kMaxHeadLen - start.size() - end.size(), 'v') + end;
  REQUIRE(exact.size() == kMaxHeadLen);
  CHECK(req(exact).status == ParseStatus::Ok);
  // One more byte: TooLarge, whatever follows.
  const std::string over =
      start + std::string(kMaxHeadLen - start.size() - end.size() + 1, 'v') + end;
  CHECK(req_error(over) == HeadError::TooLarge);
  // kMaxHeadLen bytes with no end: TooLarge without waiting for more.
  CHECK(req_error(start + std::string(kMaxHeadLen, 'v')) == HeadError::TooLarge);
  CHECK(req_error(over.substr(0, kMaxHeadLen)) == HeadError::TooLarge);
  CHECK(req(over.substr(0, kMaxHeadLen - 1)).status == ParseStatus::NeedMore);
  // A slow stream of empty lines also counts.
  std::string crlfs;
  for (size_t i = 0; i < kMaxHeadLen / 2; ++i) crlfs += "\r\n";
  CHECK(req_error(crlfs) == HeadError::TooLarge);
  CHECK(status_for(HeadError::TooLarge) == 431);
  CHECK(status_for(HeadError::Malformed) == 400);
}

TEST_CASE("http1: field count bound", "[client]") {
  std::string text = "GET http://a.example/ HTTP/1.1\r\n";
  for (size_t i = 0; i < kMaxFields; ++i) text += "X" + std::to_string(i) + ": v\r\n";
  CHECK(req(text + "\r\n").status == ParseStatus::Ok);
  text += "Y: v\r\n";
  CHECK(req_error(text) == HeadError::TooLarge);  // before the head ends
}

TEST_CASE("http1: Content-Length", "[client]") {
  const std::string start = "POST http://a.example/ HTTP/1.1\r\n";
  auto body_of = [&](std::string fields) {
    const Req r = req(start + fields + "\r\n");
    REQUIRE(r.status == ParseStatus::Ok);
    return r.head.body;
  };
  CHECK(body_of("Content-Length: 5\r\n").length == 5);
  CHECK(body_of("Content-Length: 0\r\n").kind == BodyKind::Length);
  CHECK(body_of("content-length:007\r\n").length == 7);
  CHECK(body_of("Content-Length: 5\r\nContent-Length: 5\r\n").length == 5);
  CHECK(body_of("Content-Length: 5, 5\r\n").length == 5);
  CHECK(body_of("Content-Length: 999999999999999999\r\n").length == 999999999999999999ULL);
  for (std::string_view bad :
       {"Content-Length: 5\r\nContent-Length: 6\r\n", "Content-Length: 5, 6\r\n",
        "Content-Length: -1\r\n", "Content-Length: +5\r\n", "Content-Length: 0x5\r\n",
        "Content-Length: 5 5\r\n", "Content-Length:\r\n", "Content-Length: ,\r\n",
        "Content-Length: 1000000000000000000\r\n", "Content-Length: 5a\r\n",
        "Content-Length: 5\r\nContent-Length: ,\r\n"}) {
    INFO(bad);
    CHECK(req_error(start + std::string(bad) + "\r\n") == HeadError::BadFraming);
  }
}

TEST_CASE("http1: Transfer-Encoding and request smuggling guards", "[client]") {
  const std::string start = "POST http://a.example/ HTTP/1.1\r\n";
  for (std::string_view ok : {"Transfer-Encoding: chunked\r\n", "Transfer-Encoding: CHUNKED\r\n",
                              "Transfer-Encoding: gzip, chunked\r\n",
                              "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                              "Transfer-Encoding: ,chunked,\r\n"}) {
    INFO(ok);
    const Req r = req(start + std::string(ok) + "\r\n");
    REQUIRE(r.status == ParseStatus::Ok);
    CHECK(r.head.body.kind == BodyKind::Chunked);
  }
  for (std::string_view bad :
       {"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked, gzip\r\n", "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked, chunked\r\n", "Transfer-Encoding: chunked;q=1\r\n",
        "Transfer-Encoding: \r\n", "Transfer-Encoding: chun ked\r\n",
        "Transfer-Encoding: \"chunked\"\r\n"}) {
    INFO(bad);
    CHECK(req_error(start + std::string(bad) + "\r\n") == HeadError::BadFraming);
  }
  // HTTP/1.0 has no Transfer-Encoding (RFC 9112 §6.1).
  CHECK(req_error("POST http://a.example/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") ==
        HeadError::BadFraming);
  // CONNECT has no content.
  CHECK(req("CONNECT a.example:443 HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status ==
        ParseStatus::Ok);
  CHECK(req_error("CONNECT a.example:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\n") ==
        HeadError::BadFraming);
  CHECK(req_error("CONNECT a.example:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") ==
        HeadError::BadFraming);
}

TEST_CASE("http1: keep-alive semantics", "[client]") {
  auto keep = [](std::string_view version, std::string_view fields) {
    const Req r = req("GET http://a.example/ " + std::string(version) + "\r\n" +
                      std::string(fields) + "\r\n");
    REQUIRE(r.status == ParseStatus::Ok);
    return r.head.keep_alive;
  };
  CHECK(keep("HTTP/1.1", ""));
  CHECK_FALSE(keep("HTTP/1.1", "Connection: close\r\n"));
  CHECK_FALSE(keep("HTTP/1.1", "Connection: Keep-Alive, CLOSE\r\n"));
  CHECK_FALSE(keep("HTTP/1.1", "Proxy-Connection: close\r\n"));
  CHECK(keep("HTTP/1.1", "Connection: keep-alive\r\n"));
  CHECK(keep("HTTP/1.1", "Connection: closed\r\n"));
  CHECK_FALSE(keep("HTTP/1.0", ""));
  CHECK(keep("HTTP/1.0", "Connection: keep-alive\r\n"));
  CHECK(keep("HTTP/1.0", "Proxy-Connection: Keep-Alive\r\n"));
  CHECK_FALSE(keep("HTTP/1.0", "Connection: keep-alive\r\nConnection: close\r\n"));
}

TEST_CASE("http1: Host and Proxy-Authorization are exposed, duplicates rejected", "[client]") {
  const Req r =
      req("GET http://a.example/ HTTP/1.1\r\nHost: other.example\r\n"
          "Proxy-Authorization: Basic dTpw\r\n\r\n");
  REQUIRE(r.status == ParseStatus::Ok);
  REQUIRE(r.head.host);
  CHECK(*r.head.host == "other.example");
  REQUIRE(r.head.proxy_authorization);
  CHECK(*r.head.proxy_authorization == "Basic dTpw");
  const Req none = req("GET http://a.example/ HTTP/1.1\r\n\r\n");
  REQUIRE(none.status == ParseStatus::Ok);
  CHECK_FALSE(none.head.host);
  CHECK_FALSE(none.head.proxy_authorization);
  CHECK(req_error("GET http://a.example/ HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n") ==
        HeadError::Malformed);
  CHECK(req_error("GET http://a.example/ HTTP/1.1\r\nProxy-Authorization: Basic a\r\n"
                  "Proxy-Authorization: Basic b\r\n\r\n") == HeadError::Malformed);
}

// --- Rewriting ---

TEST_CASE("http1: rewrite to origin-form without hop-by-hop fields", "[client]") {
  const std::string in =
      "POST http://example.com:8080/submit?x=1 HTTP/1.1\r\n"
      "Host: wrong.example\r\n"
      "User-Agent: curl/8\r\n"
      "Proxy-Authorization: Basic dTpw\r\n"
      "Proxy-Connection: keep-alive\r\n"
      "Connection: keep-alive, X-Hop\r\n"
      "Keep-Alive: timeout=5\r\n"
      "X-Hop: 1\r\n"
      "TE: trailers\r\n"
      "Trailer: Expires\r\n"
      "Upgrade: websocket\r\n"
      "Content-Length: 0003\r\n"
      "Accept: */*\r\n"
      "Content-Length: 3\r\n"
      "\r\n";
  CHECK(rewrite(in) ==
        "POST /submit?x=1 HTTP/1.1\r\n"
        "Host: example.com:8080\r\n"
        "User-Agent: curl/8\r\n"
        "Content-Length: 3\r\n"
        "Accept: */*\r\n"
        "\r\n");
}

TEST_CASE("http1: rewrite keeps the version and adds Connection: close on request", "[client]") {
  CHECK(rewrite("GET http://a.example HTTP/1.0\r\nAccept: x\r\n\r\n", true) ==
        "GET / HTTP/1.0\r\nHost: a.example\r\nAccept: x\r\nConnection: close\r\n\r\n");
  CHECK(rewrite("GET http://a.example?q HTTP/1.1\r\n\r\n") ==
        "GET /?q HTTP/1.1\r\nHost: a.example\r\n\r\n");
  CHECK(rewrite("GET http://[::1]:81/p HTTP/1.1\r\n\r\n") ==
        "GET /p HTTP/1.1\r\nHost: [::1]:81\r\n\r\n");
  // HTTP/1.0 kept alive upstream says so (it does not persist by default).
  CHECK(rewrite("GET http://a.example HTTP/1.0\r\nProxy-Connection: keep-alive\r\n\r\n") ==
        "GET / HTTP/1.0\r\nHost: a.example\r\nConnection: keep-alive\r\n\r\n");
}

TEST_CASE("http1: Connection cannot strip the framing fields or Host", "[client]") {
  CHECK(rewrite("POST http://a.example/ HTTP/1.1\r\n"
                "Connection: Content-Length, Host, Transfer-Encoding, X-A\r\n"
                "Content-Length: 2\r\nX-A: 1\r\nX-B: 2\r\n\r\n") ==
        "POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 2\r\nX-B: 2\r\n\r\n");
  CHECK(rewrite("POST http://a.example/ HTTP/1.1\r\n"
                "Connection: transfer-encoding\r\n"
                "Transfer-Encoding: gzip, chunked\r\n\r\n") ==
        "POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
}

TEST_CASE("http1: rewrite bounds", "[client]") {
  const std::string in = "GET http://a.example HTTP/1.1\r\nContent-Length:5\r\n\r\n";
  const Req r = req(in);
  REQUIRE(r.status == ParseStatus::Ok);
  const std::string expected =
      "GET / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
  std::vector<uint8_t> out(expected.size());
  CHECK(rewrite_request_head(bytes(in), r.head, true, out) == expected.size());
  CHECK(std::string(out.begin(), out.end()) == expected);
  CHECK(expected.size() <= rewritten_head_bound(r.head.head_len));
  std::vector<uint8_t> small(expected.size() - 1);
  CHECK(rewrite_request_head(bytes(in), r.head, true, small) == 0);
  // Not a Forward request, or not the buffer it was parsed from.
  const std::string connect = "CONNECT a.example:443 HTTP/1.1\r\n\r\n";
  const Req c = req(connect);
  REQUIRE(c.status == ParseStatus::Ok);
  CHECK(rewrite_request_head(bytes(connect), c.head, false, out) == 0);
  const std::string copy = in;
  CHECK(rewrite_request_head(bytes(copy), r.head, false, out) == 0);
}

// --- Response heads ---

TEST_CASE("http1: response heads and their bodies (RFC 9112 §6.3)", "[client]") {
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  const Resp r = resp(ok);
  REQUIRE(r.status == ParseStatus::Ok);
  CHECK(r.head.status == 200);
  CHECK(r.head.reason == "OK");
  CHECK(r.head.version == Version::Http11);
  CHECK(r.head.keep_alive);
  CHECK(r.head.body.kind == BodyKind::Length);
  CHECK(r.head.body.length == 5);
  CHECK(r.head.head_len == ok.size() - 5);
  CHECK_FALSE(r.head.informational);

  auto body = [](std::string_view text, std::string_view method = "GET") {
    const Resp x = resp(text, method);
    REQUIRE(x.status == ParseStatus::Ok);
    return x.head;
  };
  CHECK(body("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").body.kind ==
        BodyKind::Chunked);
  const ResponseHead gz = body("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
  CHECK(gz.body.kind == BodyKind::UntilClose);
  CHECK_FALSE(gz.keep_alive);
  const ResponseHead open = body("HTTP/1.1 200 OK\r\n\r\n");
  CHECK(open.body.kind == BodyKind::UntilClose);
  CHECK_FALSE(open.keep_alive);
  CHECK(body("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD").body.kind == BodyKind::None);
  CHECK(body("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HEAD").body.kind ==
        BodyKind::None);
  CHECK(body("HTTP/1.1 204 No Content\r\n\r\n").body.kind == BodyKind::None);
  CHECK(body("HTTP/1.1 204 No Content\r\n\r\n").keep_alive);
  CHECK(body("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n").body.kind ==
        BodyKind::None);
  const ResponseHead cont = body("HTTP/1.1 100 Continue\r\n\r\n");
  CHECK(cont.body.kind == BodyKind::None);
  CHECK(cont.informational);
  CHECK(body("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n").informational);
  const ResponseHead sw = body("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n");
  CHECK_FALSE(sw.informational);
  CHECK(sw.body.kind == BodyKind::UntilClose);
  CHECK_FALSE(sw.keep_alive);
  CHECK(body("HTTP/1.1 200 OK\r\n\r\n", "CONNECT").body.kind == BodyKind::None);
  CHECK(body("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").keep_alive);
}

TEST_CASE("http1: response keep-alive", "[client]") {
  auto keep = [](std::string_view text) {
    const Resp r = resp(text);
    REQUIRE(r.status == ParseStatus::Ok);
    return r.head.keep_alive;
  };
  CHECK_FALSE(keep("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n"));
  CHECK_FALSE(keep("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n"));
  CHECK(keep("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n"));
  // Proxy-Connection means nothing in a response.
  CHECK(keep("HTTP/1.1 200 OK\r\nProxy-Connection: close\r\nContent-Length: 1\r\n\r\n"));
}

TEST_CASE("http1: status line forms", "[client]") {
  const Resp bare = resp("HTTP/1.1 200\r\n\r\n");
  REQUIRE(bare.status == ParseStatus::Ok);
  CHECK(bare.head.reason.empty());
  const Resp empty_reason = resp("HTTP/1.1 500 \r\n\r\n");
  REQUIRE(empty_reason.status == ParseStatus::Ok);
  CHECK(empty_reason.head.status == 500);
  const Resp spaced = resp("HTTP/1.0 404 Not  Found\t!\r\n\r\n");
  REQUIRE(spaced.status == ParseStatus::Ok);
  CHECK(spaced.head.reason == "Not  Found\t!");
  for (std::string_view line :
       {"HTTP/1.1 099 X", "HTTP/1.1 600 X", "HTTP/1.1 20 X", "HTTP/1.1 2000 X", "HTTP/1.1 2x0 X",
        "HTTP/1.1  200 X", "HTTP/1.1", "HTTP/2 200", "http/1.1 200 OK", "HTTP/1.1 200 O\x01K",
        "ICY 200 OK"}) {
    INFO(line);
    CHECK(resp_error(std::string(line) + "\r\n\r\n") == HeadError::Malformed);
  }
  CHECK(resp_error("HTTP/2.0 200 OK\r\n\r\n") == HeadError::UnsupportedVersion);
  // Not HTTP at all: known at the first byte.
  CHECK(resp_error("SSH-2.0-OpenSSH") == HeadError::Malformed);
  CHECK(resp("HTT").status == ParseStatus::NeedMore);
  // No leading empty lines in responses.
  CHECK(resp_error("\r\nHTTP/1.1 200 OK\r\n\r\n") == HeadError::Malformed);
}

TEST_CASE("http1: response framing errors (502)", "[client]") {
  for (std::string_view text :
       {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n"}) {
    INFO(text);
    CHECK(resp_error(text) == HeadError::BadFraming);
  }
  CHECK(resp_error("HTTP/1.1 200 OK\nContent-Length: 1\n\n") == HeadError::Malformed);
  CHECK(resp_error("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n") == HeadError::Malformed);
  CHECK(resp_error("HTTP/1.1 200 OK\r\nX : a\r\n\r\n") == HeadError::Malformed);
}

TEST_CASE("http1: every strict prefix of a response head is NeedMore", "[client]") {
  const std::string_view text = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
  const size_t head_len = text.size() - 2;
  for (size_t n = 0; n < head_len; ++n) {
    INFO("prefix " << n);
    CHECK(resp(text.substr(0, n)).status == ParseStatus::NeedMore);
  }
  const Resp r = resp(text);
  REQUIRE(r.status == ParseStatus::Ok);
  CHECK(r.head.head_len == head_len);
}

// --- Body framing ---

TEST_CASE("BodyFramer: none and length", "[client]") {
  BodyFramer none(Body{});
  size_t used = 99;
  CHECK(none.done());
  CHECK(none.feed(bytes("GET"), used) == ParseStatus::Ok);
  CHECK(used == 0);

  BodyFramer zero(Body{BodyKind::Length, 0});
  CHECK(zero.done());

  BodyFramer ten(Body{BodyKind::Length, 10});
  CHECK_FALSE(ten.complete_at_eof());
  CHECK(ten.feed(bytes("0123"), used) == ParseStatus::NeedMore);
  CHECK(used == 4);
  CHECK(ten.feed(bytes(""), used) == ParseStatus::NeedMore);
  CHECK(used == 0);
  CHECK(ten.feed(bytes("456789NEXT"), used) == ParseStatus::Ok);
  CHECK(used == 6);
  CHECK(ten.done());
  CHECK(ten.complete_at_eof());
  CHECK(ten.feed(bytes("more"), used) == ParseStatus::Ok);
  CHECK(used == 0);
}

TEST_CASE("BodyFramer: until close", "[client]") {
  BodyFramer f(Body{BodyKind::UntilClose, 0});
  size_t used = 0;
  CHECK(f.complete_at_eof());
  CHECK(f.feed(bytes("anything\r\n0\r\n\r\n"), used) == ParseStatus::NeedMore);
  CHECK(used == 15);
  CHECK_FALSE(f.done());
}

TEST_CASE("BodyFramer: chunked, whole and split at every size", "[client]") {
  // The chunked example of RFC 9112 §7.1 style: "Wiki" "pedia" " in\r\n\r\nchunks." then the
  // last chunk and an empty trailer section.
  const std::string body = "4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
  const std::string next = "HTTP/1.1 200 OK\r\n";
  for (size_t piece = 1; piece <= body.size() + next.size(); ++piece) {
    INFO("piece " << piece);
    const auto [status, used] = frame(kChunked, body + next, piece);
    CHECK(status == ParseStatus::Ok);
    CHECK(used == body.size());
  }
  for (size_t n = 0; n < body.size(); ++n) {
    INFO("prefix " << n);
    BodyFramer f(kChunked);
    size_t used = 0;
    CHECK(f.feed(bytes(std::string_view(body).substr(0, n)), used) == ParseStatus::NeedMore);
    CHECK(used == n);
    CHECK_FALSE(f.complete_at_eof());
  }
}

TEST_CASE("BodyFramer: chunk extensions, whitespace and trailers", "[client]") {
  for (std::string_view ok :
       {"5;name=value\r\nhello\r\n0\r\n\r\n", "5 ;x\r\nhello\r\n0;last\r\n\r\n",
        "5\t; a = \"b;c\"\r\nhello\r\n0\r\n\r\n", "5 \r\nhello\r\n0\r\n\r\n",
        "a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", "0000000000000005\r\nhello\r\n0\r\n\r\n",
        "0\r\nExpires: never\r\nX-Sum:\tabc\xff\r\n\r\n", "0\r\nX:\r\n\r\n"}) {
    INFO(ok);
    const auto [status, used] = frame(kChunked, std::string(ok) + "tail", 3);
    CHECK(status == ParseStatus::Ok);
    CHECK(used == ok.size());
  }
}

TEST_CASE("BodyFramer: chunked framing errors", "[client]") {
  for (std::string_view bad : {"x\r\n",
                               "\r\n",
                               ";x\r\n",
                               " 5\r\n",
                               "5x\r\n",
                               "5 x\r\n",
                               "5\n",
                               "5\r\r",
                               "00000000000000005\r\n",
                               "5\r\nhelloX",
                               "5\r\nhello\rX",
                               "5\r\nhello\n",
                               "5;a\x01\r\n",
                               "5;a\nb\r\n",
                               "0\r\n\n",
                               "0\r\n X: a\r\n\r\n",
                               "0\r\nX\r\n",
                               "0\r\nX: a\n",
                               "0\r\nX: a\x01\r\n",
                               "0\r\n(: a\r\n",
                               "0\r\nX: a\r\r",
                               "-1\r\n",
                               "0x5\r\n"}) {
    INFO(bad);
    BodyFramer f(kChunked);
    size_t used = 0;
    CHECK(f.feed(bytes(bad), used) == ParseStatus::Error);
    CHECK(used < bad.size());
    // Sticky.
    CHECK(f.feed(bytes("0\r\n\r\n"), used) == ParseStatus::Error);
    CHECK(used == 0);
    CHECK_FALSE(f.complete_at_eof());
  }
}

TEST_CASE("BodyFramer: chunk extension and trailer bounds", "[client]") {
  const std::string ext_ok = "1;" + std::string(kMaxChunkExtLen - 1, 'e') + "\r\nx\r\n0\r\n\r\n";
  CHECK(frame(kChunked, ext_ok, 100).first == ParseStatus::Ok);
  const std::string ext_bad = "1;" + std::string(kMaxChunkExtLen, 'e') + "\r\n";
  CHECK(frame(kChunked, ext_bad, 100).first == ParseStatus::Error);
  // Trailer section: kMaxTrailerLen bytes counted from the first trailer byte to the LF of the
  // last field line.
  const std::string field = "X: " + std::string(kMaxTrailerLen - 5, 'v') + "\r\n";
  REQUIRE(field.size() == kMaxTrailerLen);
  CHECK(frame(kChunked, "0\r\n" + field + "\r\n", 1000).first == ParseStatus::Ok);
  CHECK(frame(kChunked, "0\r\nY" + field + "\r\n", 1000).first == ParseStatus::Error);
}

TEST_CASE("BodyFramer: the largest chunk size", "[client]") {
  BodyFramer f(kChunked);
  size_t used = 0;
  CHECK(f.feed(bytes("FFFFFFFFFFFFFFFF\r\n"), used) == ParseStatus::NeedMore);
  CHECK(used == 18);
  CHECK(f.feed(bytes(std::string(4096, 'x')), used) == ParseStatus::NeedMore);
  CHECK(used == 4096);
}

// --- Credentials and answers ---

namespace {

// Feeds a ResponseFramer `in` in pieces of `piece` bytes; the last status and bytes consumed.
std::pair<ParseStatus, size_t> track(std::string_view in, size_t piece, bool head_request = false,
                                     ResponseFramer* out = nullptr) {
  ResponseFramer local;
  ResponseFramer& f = out != nullptr ? *out : local;
  f.start(head_request);
  size_t total = 0;
  ParseStatus s = ParseStatus::NeedMore;
  for (size_t at = 0; at < in.size(); at += piece) {
    size_t used = 0;
    s = f.feed(bytes(in.substr(at, piece)), used);
    total += used;
    if (s != ParseStatus::NeedMore) break;
  }
  return {s, total};
}

}  // namespace

TEST_CASE("ResponseFramer: where each kind of response ends", "[client]") {
  struct Case {
    std::string_view response;
    bool head_request;
    bool keep_alive;
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, true},
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, true},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\r\n\r\n",
       false, true},
      {"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", true, true},  // HEAD: no body
      {"HTTP/1.1 204 No Content\r\n\r\n", false, true},
      {"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", false, true},
      {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
       "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
       false, true},
      {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", false, false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok", false, true},
  };
  for (const Case& c : cases) {
    for (size_t piece : {size_t{1}, size_t{3}, size_t{1000}}) {
      INFO(c.response << " in pieces of " << piece);
      ResponseFramer f;
      // What follows the response is not part of it.
      const std::string in = std::string(c.response) + "HTTP/1.1 200 OK\r\n";
      CHECK(track(in, piece, c.head_request, &f) == std::pair{ParseStatus::Ok, c.response.size()});
      CHECK(f.keep_alive() == c.keep_alive);
      CHECK(f.status() >= 200);
      size_t again = 1;
      CHECK(f.feed(bytes("more"), again) == ParseStatus::Ok);
      CHECK(again == 0);
    }
  }
}

TEST_CASE("ResponseFramer: close-delimited and unfinished responses", "[client]") {
  ResponseFramer f;
  CHECK(track("HTTP/1.1 200 OK\r\n\r\nbody until the origin closes", 4, false, &f) ==
        std::pair{ParseStatus::NeedMore, size_t{47}});
  CHECK(f.complete_at_eof());
  CHECK_FALSE(f.keep_alive());
  CHECK(track("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 2, false, &f).first ==
        ParseStatus::NeedMore);
  CHECK_FALSE(f.complete_at_eof());
  // Not started: nothing is expected.
  ResponseFramer idle;
  size_t used = 1;
  CHECK(idle.feed(bytes("HTTP/1.1 200 OK\r\n\r\n"), used) == ParseStatus::Error);
  CHECK(used == 0);
}

TEST_CASE("ResponseFramer: hostile responses are errors", "[client]") {
  for (const std::string& bad : {
           std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
           std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") +
               std::string(kMaxChunkSizeDigits + 1, 'f') + "\r\n",
           std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX"),
           std::string(
               "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
           std::string("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
           std::string("HTTP/1.1 200 OK\nContent-Length: 3\n\n"),
           std::string("HTTP/1.1 200 OK\r\nX: ") + std::string(kMaxHeadLen, 'a'),
           std::string("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX: ") +
               std::string(kMaxHeadLen, 'a'),
           std::string("SSH-2.0-OpenSSH\r\n"),
       }) {
    for (size_t piece : {size_t{1}, size_t{5}, size_t{100000}}) {
      INFO(bad.substr(0, 80) << " in pieces of " << piece);
      ResponseFramer f;
      CHECK(track(bad, piece, false, &f).first == ParseStatus::Error);
      CHECK(f.error() != HeadError::None);
      size_t again = 1;
      CHECK(f.feed(bytes("HTTP/1.1 200 OK\r\n\r\n"), again) == ParseStatus::Error);
      CHECK(again == 0);
    }
  }
}

TEST_CASE("ResponseFramer: start() begins the next response on the same framer", "[client]") {
  ResponseFramer f;
  CHECK(track("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", 1, false, &f).first ==
        ParseStatus::Ok);
  const std::string_view second = "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno";
  CHECK(track(second, 7, false, &f) == std::pair{ParseStatus::Ok, second.size()});
  CHECK(f.status() == 404);
}

TEST_CASE("http1: Basic credentials (RFC 7617)", "[client]") {
  // RFC 7617 §2: user "Aladdin", password "open sesame".
  auto c = decode_basic_credentials("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  REQUIRE(c);
  CHECK(c->user == "Aladdin");
  CHECK(c->password == "open sesame");
  c = decode_basic_credentials("basic   dTpwOnE=");  // "u:p:q": split at the first colon
  REQUIRE(c);
  CHECK(c->user == "u");
  CHECK(c->password == "p:q");
  c = decode_basic_credentials("BASIC OnA=");  // ":p"
  REQUIRE(c);
  CHECK(c->user.empty());
  CHECK(c->password == "p");
  for (std::string_view bad :
       {"Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "Basic", "Basic ", "BasicQWxh",
        "Basic dXNlcg==",                                              // "user": no colon
        "Basic dTpw\x01",                                              // not token68
        "Basic =dTpw", "Basic dT=pw", "Basic !!!!", "Basic dTpwAQ==",  // "u:p\x01"
        "Digest username=\"u\""}) {
    INFO(bad);
    CHECK_FALSE(decode_basic_credentials(bad));
  }
}

TEST_CASE("http1: the proxy's own answers, byte for byte", "[client]") {
  CHECK(connect_established_response() == "HTTP/1.1 200 Connection established\r\n\r\n");
  CHECK(error_response(Status::BadRequest, true) ==
        "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  CHECK(error_response(Status::Forbidden, false) ==
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
  CHECK(error_response(Status::ProxyAuthenticationRequired, false) ==
        "HTTP/1.1 407 Proxy Authentication Required\r\n"
        "Proxy-Authenticate: Basic realm=\"shadowsocks-uv\"\r\nContent-Length: 0\r\n\r\n");
  CHECK(error_response(Status::ProxyAuthenticationRequired, true) ==
        "HTTP/1.1 407 Proxy Authentication Required\r\n"
        "Proxy-Authenticate: Basic realm=\"shadowsocks-uv\"\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n");
  CHECK(error_response(Status::RequestHeaderFieldsTooLarge, true) ==
        "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n");
  CHECK(error_response(Status::BadGateway, true) ==
        "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  CHECK(error_response(Status::GatewayTimeout, false) ==
        "HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\n\r\n");
  // Every answer parses as a complete response head with an empty body.
  for (Status s :
       {Status::BadRequest, Status::Forbidden, Status::ProxyAuthenticationRequired,
        Status::RequestHeaderFieldsTooLarge, Status::BadGateway, Status::GatewayTimeout}) {
    for (bool close : {false, true}) {
      const std::string_view text = error_response(s, close);
      const Resp r = resp(text);
      REQUIRE(r.status == ParseStatus::Ok);
      CHECK(r.head.status == static_cast<int>(s));
      CHECK(r.head.head_len == text.size());
      CHECK(r.head.body.kind == BodyKind::Length);
      CHECK(r.head.body.length == 0);
      CHECK(r.head.keep_alive == !close);
    }
  }
}

}  // namespace ss::http1
