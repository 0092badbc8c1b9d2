// The classic suite's replay filter on the client side (issue 16 item 1): ss-local refuses a
// response replayed from another session, its own first flight reflected back, and a response
// salt used twice, as it refuses a bad tag (Error, nothing released); a salt is recorded only
// once its first chunk authenticated.

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "crypto/cipher_spec.h"
#include "crypto/kdf.h"
#include "crypto/replay_filter.h"
#include "crypto/stream.h"
#include "crypto/tcp_cipher.h"
#include "tests/crypto/test_util.h"

namespace {

using Bytes = std::vector<uint8_t>;
using ss::DecryptStatus;

struct Fed {
  DecryptStatus status;
  Bytes out;
};

Fed feed(ss::TcpOpener& o, const Bytes& in) {
  Bytes out(o.max_output(in.size()) + 1);
  auto r = o.feed(in.data(), in.size(), out.data());
  out.resize(r.produced);
  return {r.status, out};
}

Bytes request(ss::TcpSealer& s) {
  const Bytes addr = {0x01, 127, 0, 0, 1, 0, 80};
  const Bytes pt = ss::test::bytes_of("GET / HTTP/1.0\r\n\r\n");
  Bytes out(s.max_sealed_size(pt.size()));
  out.resize(s.seal_request(addr.data(), addr.size(), pt.data(), pt.size(), out.data()));
  return out;
}

// A server's response under `key`, with the given salt (or a random one).
Bytes response(const ss::CipherSpec& spec, const Bytes& key, const Bytes& pt,
               const Bytes& salt = {}) {
  auto enc = salt.empty() ? ss::StreamEncryptor(spec, key) : ss::StreamEncryptor(spec, key, salt);
  Bytes out(enc.sealed_size(pt.size()));
  out.resize(enc.seal(pt.data(), pt.size(), out.data()));
  return out;
}

const char* const kClassic[] = {"aes-128-gcm", "aes-192-gcm", "aes-256-gcm",
                                "chacha20-ietf-poly1305", "xchacha20-ietf-poly1305"};

}  // namespace

TEST_CASE("classic client: replayed, reflected and reused response salts are refused", "[crypto]") {
  for (const char* name : kClassic) {
    INFO(name);
    const auto& spec = ss::test::cipher(name);
    const Bytes key = ss::derive_master_key("client replay", spec.key_len);
    auto suite = ss::make_classic_suite(spec, key, std::make_shared<ss::ReplayFilter>(1000, 1e-9));
    const Bytes hello = ss::test::bytes_of("hello");

    // Session 1: a genuine response is accepted.
    auto s1 = suite->client_sealer();
    const Bytes flight1 = request(*s1);
    const Bytes r1 = response(spec, key, hello);
    {
      auto o = suite->client_opener(*s1);
      const Fed f = feed(*o, r1);
      CHECK(f.status == DecryptStatus::Ok);
      CHECK(f.out == hello);
    }
    // Session 2: the same response byte for byte: refused, nothing released.
    auto s2 = suite->client_sealer();
    request(*s2);
    {
      auto o = suite->client_opener(*s2);
      const Fed f = feed(*o, r1);
      CHECK(f.status == DecryptStatus::Error);
      CHECK(f.out.empty());
      CHECK(o->failure() == "replayed salt");
    }
    // Session 3: its own first flight sent back (it authenticates under the same key).
    auto s3 = suite->client_sealer();
    const Bytes flight3 = request(*s3);
    {
      auto o = suite->client_opener(*s3);
      const Fed f = feed(*o, flight3);
      CHECK(f.status == DecryptStatus::Error);
      CHECK(f.out.empty());
      CHECK(std::string(o->failure()).find("reflection") != std::string::npos);
    }
    // Session 4: an earlier session's request reflected: in the filter, refused too.
    auto s4 = suite->client_sealer();
    request(*s4);
    {
      auto o = suite->client_opener(*s4);
      const Fed f = feed(*o, flight1);
      CHECK(f.status == DecryptStatus::Error);
      CHECK(f.out.empty());
    }
    // Sessions 5 and 6: the same response salt with different content: the second is refused.
    const Bytes salt(r1.begin(), r1.begin() + static_cast<long>(spec.salt_len));
    const Bytes fresh_salt = ss::derive_master_key(std::string("salt ") + name, spec.salt_len);
    auto s5 = suite->client_sealer();
    request(*s5);
    {
      auto o = suite->client_opener(*s5);
      CHECK(feed(*o, response(spec, key, hello, fresh_salt)).out == hello);
    }
    auto s6 = suite->client_sealer();
    request(*s6);
    {
      auto o = suite->client_opener(*s6);
      const Fed f = feed(*o, response(spec, key, ss::test::bytes_of("other"), fresh_salt));
      CHECK(f.status == DecryptStatus::Error);
      CHECK(f.out.empty());
    }
  }
}

TEST_CASE("classic client: an unauthenticated salt does not poison the filter", "[crypto]") {
  const auto& spec = ss::test::cipher("aes-256-gcm");
  const Bytes key = ss::derive_master_key("poison", spec.key_len);
  const Bytes wrong = ss::derive_master_key("not the key", spec.key_len);
  auto suite = ss::make_classic_suite(spec, key, std::make_shared<ss::ReplayFilter>(1000, 1e-9));
  const Bytes salt = ss::derive_master_key("chosen salt", spec.salt_len);
  auto s1 = suite->client_sealer();
  request(*s1);
  {
    // Someone without the key sends the salt first: bad tag, and the salt is not recorded.
    auto o = suite->client_opener(*s1);
    const Fed f = feed(*o, response(spec, wrong, ss::test::bytes_of("x"), salt));
    CHECK(f.status == DecryptStatus::Error);
    CHECK(o->failure() == "bad tag on the first chunk");
  }
  auto s2 = suite->client_sealer();
  request(*s2);
  auto o = suite->client_opener(*s2);
  CHECK(feed(*o, response(spec, key, ss::test::bytes_of("ok"), salt)).out ==
        ss::test::bytes_of("ok"));
}

TEST_CASE("classic client without a filter still refuses its own request reflected", "[crypto]") {
  const auto& spec = ss::test::cipher("chacha20-ietf-poly1305");
  const Bytes key = ss::derive_master_key("no filter", spec.key_len);
  auto suite = ss::make_classic_suite(spec, key);
  auto s = suite->client_sealer();
  const Bytes flight = request(*s);
  auto o = suite->client_opener(*s);
  const Fed f = feed(*o, flight);
  CHECK(f.status == DecryptStatus::Error);
  CHECK(f.out.empty());
  // Without a filter a replayed response is not caught (the runtime always gives one unless
  // the capacity is 0).
  const Bytes r = response(spec, key, ss::test::bytes_of("r"));
  for (int i = 0; i < 2; ++i) {
    auto s2 = suite->client_sealer();
    request(*s2);
    auto o2 = suite->client_opener(*s2);
    CHECK(feed(*o2, r).status == DecryptStatus::Ok);
  }
}
