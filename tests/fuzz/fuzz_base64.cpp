// Fuzzes base64_decode (crypto/kdf.h), which reads the "key" config value and 2022 PSKs.
//   - Ok only for text made of the standard or URL-safe alphabet and '=';
//   - decoded bytes re-encode (standard, padded) to text that decodes to the same bytes;
//   - the input bytes themselves survive base64_encode + base64_decode.

#include <string>
#include <string_view>

#include "crypto/kdf.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/' || c == '-' || c == '_' || c == '=';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto decoded = ss::base64_decode(text);
  if (decoded) {
    for (char c : text) FUZZ_CHECK(is_base64_char(c));
    FUZZ_CHECK(decoded->size() <= size * 3 / 4);
    const std::string again = ss::base64_encode(*decoded);
    FUZZ_CHECK(again.size() % 4 == 0);
    const auto back = ss::base64_decode(again);
    FUZZ_CHECK(back && *back == *decoded);
  }
  const std::string encoded = ss::base64_encode(std::span<const uint8_t>(data, size));
  FUZZ_CHECK(encoded.size() == (size + 2) / 3 * 4);
  const auto back = ss::base64_decode(encoded);
  FUZZ_CHECK(back && back->size() == size && std::equal(back->begin(), back->end(), data));
  return 0;
}
