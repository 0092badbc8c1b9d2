// The origin-form HTTP/1.x request head parser (see http_request.h; RFC 9112 §2-§5, RFC 9110
// §5.6.2 for tokens). The head is found first (the CRLF CRLF that ends it, checking every byte
// on the way), then its lines are read.

#include "relay/http_request.h"

#include <algorithm>

namespace ss {
namespace {

bool is_tchar(uint8_t c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_target_char(uint8_t c) {
  return c > 0x20 && c < 0x7f;  // visible ASCII
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

ParseStatus fail(RequestHeadError& error, RequestHeadError e) {
  error = e;
  return ParseStatus::Error;
}

bool parse_request_line(std::string_view line, OriginRequest& out) {
  const size_t sp1 = line.find(' ');
  if (sp1 == 0 || sp1 == std::string_view::npos) return false;
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return false;
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  for (char c : method) {
    if (!is_tchar(static_cast<uint8_t>(c))) return false;
  }
  for (char c : target) {
    if (!is_target_char(static_cast<uint8_t>(c))) return false;
  }
  if (target.front() != '/') return false;  // origin-form only
  if (version == "HTTP/1.1") {
    out.http10 = false;
  } else if (version == "HTTP/1.0") {
    out.http10 = true;
  } else {
    return false;
  }
  out.method = method;
  const size_t q = target.find('?');
  out.path = target.substr(0, q);
  if (q != std::string_view::npos) out.query = target.substr(q + 1);
  return true;
}

// One field line: false if malformed. Notes a body, its length and the Authorization field.
bool parse_field(std::string_view line, OriginRequest& out, bool& seen_length) {
  const size_t colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  const std::string_view name = line.substr(0, colon);
  for (char c : name) {
    if (!is_tchar(static_cast<uint8_t>(c))) return false;  // also: no space before the colon
  }
  const std::string_view value = trim(line.substr(colon + 1));
  for (char c : value) {
    const auto b = static_cast<uint8_t>(c);
    if ((b < 0x20 && b != '\t') || b == 0x7f) return false;
  }
  if (iequals(name, "transfer-encoding")) {
    out.has_body = true;
    out.chunked = true;
  } else if (iequals(name, "content-length")) {
    if (value.empty() || value.size() > 15) return false;
    size_t n = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return false;
      n = n * 10 + static_cast<size_t>(c - '0');
    }
    if (seen_length && n != out.content_length) return false;
    seen_length = true;
    out.content_length = n;
    if (n != 0) out.has_body = true;
  } else if (iequals(name, "authorization")) {
    out.authorization = value;
  }
  return true;
}

}  // namespace

ParseStatus parse_origin_request(std::span<const uint8_t> in, OriginRequest& out,
                                 RequestHeadError& error) {
  error = RequestHeadError::None;
  out = OriginRequest{};
  // Find the end of the head, refusing a bare CR or LF as soon as it is seen.
  size_t end = 0;
  bool line_empty = true;  // the current line has no byte yet
  bool first_line = true;
  for (size_t i = 0; i < in.size(); ++i) {
    const uint8_t c = in[i];
    if (c == '\r') {
      if (i + 1 == in.size()) break;  // its LF may follow
      if (in[i + 1] != '\n') return fail(error, RequestHeadError::Malformed);
      ++i;
      if (line_empty) {
        if (first_line) return fail(error, RequestHeadError::Malformed);  // no request line
        end = i + 1;
        break;
      }
      line_empty = true;
      first_line = false;
      continue;
    }
    if (c == '\n' || c == 0) return fail(error, RequestHeadError::Malformed);
    if (line_empty && !first_line && (c == ' ' || c == '\t')) {
      return fail(error, RequestHeadError::Malformed);  // obs-fold
    }
    line_empty = false;
    if (i + 1 >= kMaxRequestHead) return fail(error, RequestHeadError::TooLarge);
  }
  if (end == 0) {
    if (in.size() >= kMaxRequestHead) return fail(error, RequestHeadError::TooLarge);
    return ParseStatus::NeedMore;
  }
  const std::string_view head(reinterpret_cast<const char*>(in.data()), end);
  size_t pos = 0;
  bool request_line = true;
  bool seen_length = false;
  while (true) {
    const size_t eol = head.find("\r\n", pos);
    const std::string_view line = head.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.empty()) break;
    const bool ok =
        request_line ? parse_request_line(line, out) : parse_field(line, out, seen_length);
    if (!ok) {
      out = OriginRequest{};
      return fail(error, RequestHeadError::Malformed);
    }
    request_line = false;
  }
  out.head_len = end;
  return ParseStatus::Ok;
}

}  // namespace ss
