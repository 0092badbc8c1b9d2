#pragma once
// A pure parser for the request heads a small origin server (the metrics endpoint, the
// management API) reads:
// request line and field lines (RFC 9112 §2-§5), origin-form targets only; the body's length
// is reported, the body itself is the caller's. No I/O.
// Stateless over a growing buffer, as client/inbound/http1's heads are: call again with every
// byte received so far; NeedMore until the empty line that ends the head.
//
// Strict: CRLF line endings only (a bare CR or LF is an Error), a token method, one space
// between the three parts, HTTP/1.0 or HTTP/1.1, field names that are tokens with no space
// before the colon, no obs-fold, no control byte but HTAB in a field value, and at most
// kMaxRequestHead bytes (an Error, TooLarge, as soon as a longer head is certain). A
// Content-Length that is not digits, or given twice with different values, is Malformed
// (RFC 9112 §6.3).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "relay/parse_status.h"

namespace ss {

inline constexpr size_t kMaxRequestHead = 8 * 1024;

enum class RequestHeadError : uint8_t { None, TooLarge, Malformed };

// The views point into the parsed buffer.
struct OriginRequest {
  std::string_view method;         // e.g. "GET" (case-sensitive, RFC 9110 §9.1)
  std::string_view path;           // the target without its query: "/metrics" for "/metrics?x=1"
  std::string_view query;          // what follows the first '?' ("x=1"), empty if none
  std::string_view authorization;  // the Authorization field's value (trimmed), empty if none
  bool http10 = false;
  bool has_body = false;      // Content-Length other than 0, or Transfer-Encoding
  bool chunked = false;       // Transfer-Encoding given (a body of unknown length)
  size_t content_length = 0;  // Content-Length (digits only, one value: else Malformed)
  size_t head_len = 0;        // through the empty line
};

ParseStatus parse_origin_request(std::span<const uint8_t> in, OriginRequest& out,
                                 RequestHeadError& error);

}  // namespace ss
