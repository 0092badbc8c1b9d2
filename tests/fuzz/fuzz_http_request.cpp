// Fuzzes the metrics endpoint's request head parser (relay/http_request.h) on arbitrary bytes:
//   - every prefix gives NeedMore or exactly the whole input's result (a stateless parser
//     resumed on a growing buffer);
//   - Ok: the head ends with CRLF CRLF within kMaxRequestHead bytes, the method is a non-empty
//     token, the path starts with '/' and holds no '?', and the views lie inside the head;
//   - Error: TooLarge or Malformed, never None; NeedMore only below kMaxRequestHead bytes.

#include <cstring>
#include <span>
#include <string_view>

#include "relay/http_request.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ss;

struct Result {
  ParseStatus status;
  RequestHeadError error;
  ptrdiff_t method_at, path_at;
  size_t method_len, path_len, head_len;
  bool http10, has_body;
  bool operator==(const Result&) const = default;
};

Result parse(std::span<const uint8_t> in) {
  OriginRequest out;
  RequestHeadError error;
  const ParseStatus st = parse_origin_request(in, out, error);
  const char* base = reinterpret_cast<const char*>(in.data());
  Result r{st, error, 0, 0, 0, 0, 0, false, false};
  if (st == ParseStatus::Ok) {
    r.method_at = out.method.data() - base;
    r.path_at = out.path.data() - base;
    r.method_len = out.method.size();
    r.path_len = out.path.size();
    r.head_len = out.head_len;
    r.http10 = out.http10;
    r.has_body = out.has_body;
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  const Result whole = parse(in);
  switch (whole.status) {
    case ParseStatus::Ok: {
      FUZZ_CHECK(whole.head_len >= 4 && whole.head_len <= size);
      FUZZ_CHECK(whole.head_len <= kMaxRequestHead);
      FUZZ_CHECK(std::memcmp(data + whole.head_len - 4, "\r\n\r\n", 4) == 0);
      FUZZ_CHECK(whole.method_len > 0 && whole.method_at == 0);
      FUZZ_CHECK(whole.path_len > 0 && data[whole.path_at] == '/');
      FUZZ_CHECK(whole.path_at + static_cast<ptrdiff_t>(whole.path_len) <=
                 static_cast<ptrdiff_t>(whole.head_len));
      FUZZ_CHECK(std::memchr(data + whole.path_at, '?', whole.path_len) == nullptr);
      break;
    }
    case ParseStatus::Error:
      FUZZ_CHECK(whole.error == RequestHeadError::TooLarge ||
                 whole.error == RequestHeadError::Malformed);
      break;
    case ParseStatus::NeedMore:
      FUZZ_CHECK(size < kMaxRequestHead);
      break;
  }
  ss::fuzz::check_prefixes(in, kMaxRequestHead, parse, whole);
  return 0;
}
