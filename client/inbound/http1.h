#pragma once
// Pure HTTP/1.x proxy parsing for ss-local's HTTP front end (RFC 9110, RFC 9112): request and
// response heads, the head sent on to the origin, message body framing, and the proxy's own
// answers. No I/O. The head parsers are stateless (call again with the grown buffer; the parsed
// views point into that buffer); BodyFramer is a small resumable state machine.
//
// Decisions (see http1.cpp for the reasons):
//   * Line endings are CRLF only: a bare LF or a bare CR anywhere in a head is an error, as is
//     obs-fold and whitespace before a field's colon.
//   * Limits: a head is at most kMaxHeadLen bytes and kMaxFields field lines (TooLarge);
//     chunk sizes at most kMaxChunkSizeDigits hex digits, chunk extensions kMaxChunkExtLen
//     bytes, trailers kMaxTrailerLen bytes.
//   * Content-Length and Transfer-Encoding together, Transfer-Encoding in HTTP/1.0, differing
//     Content-Length values, or a request whose last transfer coding is not chunked: BadFraming.
//   * Upgrade is removed from forwarded requests (so is every other hop-by-hop field), so a
//     forwarded exchange always stays HTTP/1; the Host field is always regenerated from the URI.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "relay/address.h"  // Address, ParseStatus

namespace ss::http1 {

inline constexpr size_t kMaxHeadLen = 16 * 1024;  // start line through the empty line
inline constexpr size_t kMaxFields = 100;         // field lines in one head
inline constexpr size_t kMaxChunkSizeDigits = 16;
inline constexpr size_t kMaxChunkExtLen = 4096;  // between the size and its CRLF
inline constexpr size_t kMaxTrailerLen = 16 * 1024;
inline constexpr size_t kMaxContentLengthDigits = 18;

enum class Version : uint8_t { Http10, Http11 };

enum class BodyKind : uint8_t {
  None,        // no body
  Length,      // exactly Body::length bytes
  Chunked,     // chunked transfer coding, up to and including the trailer section
  UntilClose,  // everything until the connection closes (responses only)
};

struct Body {
  BodyKind kind = BodyKind::None;
  uint64_t length = 0;  // BodyKind::Length only
};

enum class HeadError : uint8_t {
  None,
  TooLarge,            // over kMaxHeadLen bytes or kMaxFields field lines
  Malformed,           // bad syntax or bytes
  UnsupportedVersion,  // a well-formed HTTP version other than 1.0 and 1.1
  BadTarget,           // not CONNECT host:port nor http://host[:port]/..., or a bad host
  BadFraming,          // Content-Length / Transfer-Encoding that cannot frame the body safely
};

enum class RequestKind : uint8_t {
  Connect,  // CONNECT host:port: reply 200 and tunnel
  Forward,  // absolute-form http:// request: rewrite_request_head() and forward
};

// A parsed request head. The string views point into the buffer given to parse_request_head.
struct RequestHead {
  RequestKind kind = RequestKind::Forward;
  std::string_view method;  // e.g. "GET"; case-sensitive
  Version version = Version::Http11;
  Address target;              // the origin: port 80 when the URI gives none
  std::string_view authority;  // "host[:port]" as written in the request-target
  // Forward: the path and query of the URI ("/a?b", or "" or "?b" when the URI has no path:
  // rewrite_request_head then writes "/" first). Empty for CONNECT.
  std::string_view path;
  std::optional<std::string_view> host;                 // the Host field, if present
  std::optional<std::string_view> proxy_authorization;  // the Proxy-Authorization field
  bool keep_alive = true;  // the client wants the connection kept after this exchange
  Body body;               // None, Length or Chunked (CONNECT: None)
  size_t head_len = 0;     // bytes from the start of the buffer through the empty line
};

// Parses a request head at the start of `in`. Ok: `out` is set and out.head_len bytes are the
// head (what follows is the body, the next request, or tunnel data for CONNECT). NeedMore: no
// complete head yet and nothing wrong so far. Error: `error` says why; the caller answers
// status_for(error) with Connection: close. Empty lines before the request line are skipped
// (RFC 9112 §2.2); they count in head_len and towards kMaxHeadLen. Fails as early as it can: a
// byte that can never be in a head, a bare CR or LF, or a method byte that is not a token byte.
ParseStatus parse_request_head(std::span<const uint8_t> in, RequestHead& out, HeadError& error);

// The status the proxy answers a request head error with: 431 for TooLarge, else 400.
int status_for(HeadError error);

// Largest head rewrite_request_head() writes for a request head of `head_len` bytes.
constexpr size_t rewritten_head_bound(size_t head_len) {
  return head_len + 64;
}

// Writes the head to send to the origin for a Forward request: origin-form request line with the
// same method and version; "Host: <authority>" (replacing any received Host, RFC 9112 §3.2.2);
// every received field except Host and the hop-by-hop ones (Connection and the fields it names,
// Proxy-Connection, Keep-Alive, Proxy-Authorization, Proxy-Authenticate, TE, Trailer, Upgrade);
// Content-Length once, normalised; Transfer-Encoding unchanged (the body is relayed unchanged);
// and "Connection: close" when `close_upstream`, or "Connection: keep-alive" for an HTTP/1.0
// request otherwise (HTTP/1.0 does not persist without it). A field named in Connection is not
// removed if it is Host, Content-Length or Transfer-Encoding: those frame the message and are ours
// to set. `in` must be the buffer `head` was parsed from. Returns the size written, or 0 if `head`
// is not a Forward request of `in` or `out` is smaller than needed (rewritten_head_bound() always
// is enough).
size_t rewrite_request_head(std::span<const uint8_t> in, const RequestHead& head,
                            bool close_upstream, std::span<uint8_t> out);

struct ResponseHead {
  Version version = Version::Http11;
  int status = 0;
  std::string_view reason;  // points into the parsed buffer
  // 1xx other than 101: an interim response; relay it and parse the next head. A 101 is final:
  // its body is UntilClose (whatever protocol follows is relayed as bytes until close).
  bool informational = false;
  bool keep_alive = true;  // the connection to the origin may carry another request
  Body body;               // RFC 9112 §6.3
  size_t head_len = 0;
};

// Parses a response head to a request made with `request_method`. Same bounds and line rules
// as requests (no leading empty lines). Body per RFC 9112 §6.3: none for HEAD, 1xx, 204 and 304
// (and 2xx to CONNECT); chunked if Transfer-Encoding ends in chunked, until close if it does not;
// Content-Length; otherwise until close. keep_alive is false for UntilClose bodies. On Error the
// caller answers 502.
ParseStatus parse_response_head(std::span<const uint8_t> in, std::string_view request_method,
                                ResponseHead& out, HeadError& error);

// Frames one message body for relaying it unchanged. Feed it the bytes that follow the head (and
// then every later read); it says how many belong to this message.
class BodyFramer {
 public:
  explicit BodyFramer(Body body);

  // NeedMore: all of `in` belongs to the body, which goes on (consumed == in.size()). Ok: the
  // message ends after `consumed` bytes (<= in.size()); the rest is the next message, and later
  // feeds return Ok with 0. Error: the chunked framing is invalid (consumed = the bytes before
  // the bad one); later feeds return Error with 0.
  ParseStatus feed(std::span<const uint8_t> in, size_t& consumed);

  bool done() const { return state_ == State::Done; }
  // True if the peer closing the connection now ends the message properly: UntilClose, or done.
  bool complete_at_eof() const { return done() || state_ == State::UntilClose; }

 private:
  enum class State : uint8_t {
    Length,
    UntilClose,
    Size,       // chunk-size hex digits
    SizeSpace,  // whitespace after the size, before ';' or CR
    Extension,  // chunk-ext, skipped
    SizeLf,     // LF of the chunk-size line
    Data,       // chunk-data
    DataCr,     // CR after chunk-data
    DataLf,     // LF after chunk-data
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    FinalLf,  // LF of the empty line ending the trailer section
    Done,
    Failed,
  };
  // One byte of chunked framing outside chunk-data: false on a framing error.
  bool step(uint8_t c);

  State state_;
  uint64_t remaining_ = 0;  // Length / Data: bytes left; Size: the size read so far
  size_t count_ = 0;        // digits, extension or trailer bytes seen (bounds)
};

// Tracks one response from its first byte to its end, for relaying it unchanged on a
// connection that may carry the next request afterwards: the head is copied as it passes (at
// most kMaxHeadLen bytes; 1xx interim heads other than 101 are skipped and the next head read),
// then the body is framed by BodyFramer. A resumable state machine; the head buffer is allocated
// on the first response and kept for the next ones.
class ResponseFramer {
 public:
  // Starts on the response to a request; `head_request`: the request's method was HEAD (no body).
  void start(bool head_request);

  // NeedMore: all of `in` belongs to the response, which goes on. Ok: the response ends after
  // `consumed` bytes (what follows is not part of it; later feeds return Ok with 0). Error: the
  // head or the body framing is invalid (consumed = the bytes before that was found; error()
  // says how); later feeds return Error with 0. Before start(): Error.
  ParseStatus feed(std::span<const uint8_t> in, size_t& consumed);

  // After Ok: the origin allows another request on its connection (RFC 9112 §9.3).
  bool keep_alive() const { return keep_alive_; }
  // The origin closing its connection now ends the response properly (close-delimited body).
  bool complete_at_eof() const { return state_ == State::Body && body_.complete_at_eof(); }
  // The final response's status (0 until its head is read), and why feed() failed.
  int status() const { return status_; }
  HeadError error() const { return error_; }

 private:
  enum class State : uint8_t { Idle, Head, Body, Done, Failed };
  ParseStatus fail(HeadError e);

  State state_ = State::Idle;
  bool head_request_ = false;
  bool keep_alive_ = false;
  int status_ = 0;
  HeadError error_ = HeadError::None;
  std::unique_ptr<uint8_t[]> head_;  // the head read so far
  size_t len_ = 0;
  BodyFramer body_{Body{}};
};

// Proxy-Authorization: Basic <base64 of user:password> (RFC 7617). nullopt for another scheme,
// bad base64, no ':' or control characters in the decoded text. The user is before the first ':'.
struct BasicCredentials {
  std::string user;
  std::string password;
};
std::optional<BasicCredentials> decode_basic_credentials(std::string_view field_value);

// The proxy's own answers, complete (status line, fields, empty line).
enum class Status : uint16_t {
  BadRequest = 400,
  Forbidden = 403,
  ProxyAuthenticationRequired = 407,  // with Proxy-Authenticate: Basic realm="shadowsocks-uv"
  RequestHeaderFieldsTooLarge = 431,
  BadGateway = 502,
  GatewayTimeout = 504,
};
// "HTTP/1.1 200 Connection established" with no fields: RFC 9110 §8.6 forbids Content-Length in
// a 2xx answer to CONNECT.
std::string_view connect_established_response();
// The status with "Content-Length: 0", and "Connection: close" when `close`.
std::string_view error_response(Status status, bool close);

}  // namespace ss::http1
