// The metrics endpoint's request head parser (relay/http_request.h): every prefix of a good head
// is NeedMore, the whole head Ok with its method, path and length; malformed heads are Errors as
// soon as they are certain to be; too large heads are TooLarge.

#include "relay/http_request.h"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>

namespace ss {
namespace {

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

ParseStatus parse(std::string_view s, OriginRequest& out, RequestHeadError& err) {
  return parse_origin_request(bytes(s), out, err);
}

TEST_CASE("http_request: a Prometheus scrape, byte by byte", "[relay]") {
  const std::string head =
      "GET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nUser-Agent: Prometheus/2.42.0\r\n"
      "Accept: text/plain;version=0.0.4;q=1,*/*;q=0.1\r\nX-Prometheus-Scrape-Timeout-Seconds: "
      "1\r\n\r\n";
  OriginRequest out;
  RequestHeadError err;
  for (size_t n = 0; n < head.size(); ++n) {
    INFO(n);
    REQUIRE(parse(std::string_view(head).substr(0, n), out, err) == ParseStatus::NeedMore);
  }
  const std::string whole = head + "trailing";  // the views point into it
  REQUIRE(parse(whole, out, err) == ParseStatus::Ok);
  CHECK(out.method == "GET");
  CHECK(out.path == "/metrics");
  CHECK_FALSE(out.http10);
  CHECK_FALSE(out.has_body);
  CHECK(out.head_len == head.size());
}

TEST_CASE("http_request: HTTP/1.0, other methods and bodies", "[relay]") {
  OriginRequest out;
  RequestHeadError err;
  REQUIRE(parse("HEAD / HTTP/1.0\r\n\r\n", out, err) == ParseStatus::Ok);
  CHECK(out.method == "HEAD");
  CHECK(out.path == "/");
  CHECK(out.http10);
  REQUIRE(parse("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", out, err) ==
          ParseStatus::Ok);
  CHECK(out.has_body);
  REQUIRE(parse("POST /metrics HTTP/1.1\r\ncontent-length: 0\r\n\r\n", out, err) ==
          ParseStatus::Ok);
  CHECK_FALSE(out.has_body);
  REQUIRE(parse("PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", out, err) ==
          ParseStatus::Ok);
  CHECK(out.has_body);
  CHECK(out.chunked);
}

TEST_CASE("http_request: query, Authorization and Content-Length for the management API",
          "[relay]") {
  OriginRequest out;
  RequestHeadError err;
  REQUIRE(parse("POST /users?x=1&y HTTP/1.1\r\nauthorization:  Bearer t0k \r\n"
                "Content-Length: 42\r\nContent-Length: 42\r\n\r\n",
                out, err) == ParseStatus::Ok);
  CHECK(out.path == "/users");
  CHECK(out.query == "x=1&y");
  CHECK(out.authorization == "Bearer t0k");
  CHECK(out.content_length == 42);
  CHECK(out.has_body);
  CHECK_FALSE(out.chunked);
  REQUIRE(parse("GET /stats HTTP/1.1\r\n\r\n", out, err) == ParseStatus::Ok);
  CHECK(out.query.empty());
  CHECK(out.authorization.empty());
  CHECK(out.content_length == 0);
  for (const char* bad : {"POST / HTTP/1.1\r\nContent-Length: 4x\r\n\r\n",
                          "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                          "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
                          "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                          "POST / HTTP/1.1\r\nContent-Length: 9999999999999999\r\n\r\n"}) {
    INFO(bad);
    CHECK(parse(bad, out, err) == ParseStatus::Error);
    CHECK(err == RequestHeadError::Malformed);
  }
}

TEST_CASE("http_request: malformed heads", "[relay]") {
  const char* bad[] = {
      "GET /metrics HTTP/1.1\n\n",                    // bare LF
      "GET /metrics HTTP/1.1\r\nA: b\n",              // bare LF in a field
      "GET /metrics HTTP/1.1\rX",                     // bare CR
      "\r\nGET / HTTP/1.1\r\n\r\n",                   // no request line first
      "GET  /metrics HTTP/1.1\r\n\r\n",               // two spaces
      "GET /metrics HTTP/2.0\r\n\r\n",                // version
      "GET /metrics http/1.1\r\n\r\n",                // version is case-sensitive
      "GET metrics HTTP/1.1\r\n\r\n",                 // not origin-form
      "GET http://h/metrics HTTP/1.1\r\n\r\n",        // absolute-form is not ours
      "G(T /metrics HTTP/1.1\r\n\r\n",                // method not a token
      "GET /met rics HTTP/1.1\r\n\r\n",               // space in the target
      "GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n",    // space before the colon
      "GET /metrics HTTP/1.1\r\nHost x\r\n\r\n",      // no colon
      "GET /metrics HTTP/1.1\r\nA: b\r\n c\r\n\r\n",  // obs-fold
      "GET /metrics HTTP/1.1\r\nA: b\x01\r\n\r\n",    // control byte in a value
  };
  for (const char* b : bad) {
    OriginRequest out;
    RequestHeadError err;
    INFO(b);
    CHECK(parse(b, out, err) == ParseStatus::Error);
    CHECK(err == RequestHeadError::Malformed);
  }
  // A NUL is refused as soon as it is seen, whatever follows.
  OriginRequest out;
  RequestHeadError err;
  CHECK(parse(std::string_view("GET /\0", 6), out, err) == ParseStatus::Error);
}

TEST_CASE("http_request: a head over the limit is TooLarge, before its end", "[relay]") {
  std::string head = "GET /metrics HTTP/1.1\r\nX: " + std::string(kMaxRequestHead, 'a');
  OriginRequest out;
  RequestHeadError err;
  CHECK(parse(head, out, err) == ParseStatus::Error);
  CHECK(err == RequestHeadError::TooLarge);
  // Just under the limit, complete: fine.
  std::string ok = "GET / HTTP/1.1\r\nX: ";
  ok += std::string(kMaxRequestHead - ok.size() - 4, 'a') + "\r\n\r\n";
  REQUIRE(ok.size() == kMaxRequestHead);
  CHECK(parse(ok, out, err) == ParseStatus::Ok);
}

}  // namespace
}  // namespace ss
