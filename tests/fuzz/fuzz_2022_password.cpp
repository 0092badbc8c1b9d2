// Fuzzes the Shadowsocks 2022 password parser (crypto/aead2022.h): parse_2022_password on
// arbitrary text, for every 2022 method. (SIP023 users' keys in a config are single passwords
// parsed by the same function; fuzz_config reaches them through the JSON.)
//   - It succeeds exactly when every ':'-separated part is base64 (kdf.h's base64_decode) of
//     key_len bytes and, for more than one part, the method is AES; the keys are those decodings,
//     in order.
//   - Success: re-encoding the keys (standard base64, padded) parses back to the same keys, and
//     the codecs take them: make_2022_suite as client keys, Udp2022Client, and with one key the
//     server side of both.
//   - Failure: no keys, and one line naming the method and the first bad key.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/aead2022.h"
#include "crypto/kdf.h"
#include "crypto/tcp2022.h"
#include "crypto/udp2022.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ss;
using Keys = std::vector<std::vector<uint8_t>>;

std::vector<std::string_view> split(std::string_view text) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t colon = text.find(':', start);
    if (colon == std::string_view::npos) {
      parts.push_back(text.substr(start));
      return parts;
    }
    parts.push_back(text.substr(start, colon - start));
    start = colon + 1;
  }
}

void check_codecs_take(const Method2022& m, const Keys& keys) {
  Tcp2022Options client;
  client.method = &m;
  client.client_keys = keys;
  std::string error;
  FUZZ_CHECK(make_2022_suite(std::move(client), &error) != nullptr && error.empty());
  FUZZ_CHECK(Udp2022Client(m, keys).valid());
  if (keys.size() != 1) return;
  Tcp2022Options server;
  server.method = &m;
  server.server_psk = keys.front();
  FUZZ_CHECK(make_2022_suite(std::move(server), &error) != nullptr && error.empty());
  FUZZ_CHECK(Udp2022Server(m, keys.front()).valid());
}

void run(const Method2022& m, std::string_view text) {
  const Psk2022 got = parse_2022_password(m, text);
  FUZZ_CHECK(got.error.empty() != got.keys.empty());

  // The expected result, part by part.
  const std::vector<std::string_view> parts = split(text);
  const bool aes = m.kind != Kind2022::ChaCha20Poly1305;
  Keys expect;
  std::optional<size_t> first_bad;
  for (size_t i = 0; i < parts.size() && !first_bad; ++i) {
    std::optional<std::vector<uint8_t>> key = base64_decode(parts[i]);
    if (!key || key->size() != m.key_len) {
      first_bad = i;
    } else {
      expect.push_back(std::move(*key));
    }
  }

  if (!got.error.empty()) {
    FUZZ_CHECK(got.error.find('\n') == std::string::npos);
    FUZZ_CHECK(got.error.compare(0, m.name.size(), m.name) == 0);
    if (first_bad) {
      FUZZ_CHECK(got.error.find("key " + std::to_string(*first_bad + 1) + " ") !=
                 std::string::npos);
    } else {
      FUZZ_CHECK(parts.size() > 1 && !aes);
    }
    return;
  }
  FUZZ_CHECK(!first_bad && (parts.size() == 1 || aes));
  FUZZ_CHECK(got.keys == expect);

  std::string again;
  for (const std::vector<uint8_t>& k : got.keys) {
    if (!again.empty()) again += ':';
    again += base64_encode(k);
  }
  const Psk2022 reparsed = parse_2022_password(m, again);
  FUZZ_CHECK(reparsed.error.empty() && reparsed.keys == got.keys);
  check_codecs_take(m, got.keys);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const Method2022& m : methods_2022()) run(m, text);
  return 0;
}
