// Fuzzes the SIP008 document parser (relay/sip008.h) on arbitrary text: parse_sip008 never
// throws nor crashes; a refusal comes with one non-empty line; an accepted document has between 1
// and kMaxSip008Servers servers, each finalized (a host, a port, keys that suit its method), and
// its description for logs holds no control character.

#include <string>
#include <string_view>

#include "relay/sip008.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ss;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  const std::optional<Sip008Document> d = parse_sip008(text, Role::Local, &error);
  if (!d) {
    FUZZ_CHECK(!error.empty());
    FUZZ_CHECK(error.find('\n') == std::string::npos);
    return 0;
  }
  FUZZ_CHECK(!d->servers.empty() && d->servers.size() <= kMaxSip008Servers);
  for (const ServerSpec& s : d->servers) {
    FUZZ_CHECK(!s.host.empty());
    FUZZ_CHECK(s.port != 0);
    FUZZ_CHECK(s.source == "online_config");
    FUZZ_CHECK(same_server(s, s));
    switch (s.method_kind) {
      case MethodKind::Classic:
        FUZZ_CHECK(s.cipher != nullptr && s.key.size() == s.cipher->key_len);
        break;
      case MethodKind::Aead2022:
        FUZZ_CHECK(s.method2022 != nullptr && !s.psk_keys.empty());
        break;
      case MethodKind::None:
        break;
    }
    for (char c : describe_server(s)) {
      FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F);
    }
  }
  return 0;
}
