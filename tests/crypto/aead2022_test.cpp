// Shadowsocks 2022 foundation: method table, PSK parsing, key generation and the BLAKE3
// derivations (§6.3 vectors, §6.4 intermediate values, and Debian's b3sum on random inputs).

#include <catch2/catch.hpp>

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "crypto/aead2022.h"
#include "crypto/kdf.h"
#include "tests/crypto/test_util.h"

using ss::test::bytes_of;
using ss::test::from_hex;
using ss::test::to_hex;

namespace {

std::vector<uint8_t> seq(int from, int to) {  // bytes from..to-1
  std::vector<uint8_t> v;
  for (int i = from; i < to; ++i) v.push_back(static_cast<uint8_t>(i));
  return v;
}

std::vector<uint8_t> b64(std::string_view text) {
  auto v = ss::base64_decode(text);
  REQUIRE(v.has_value());
  return *v;
}

// Runs `b3sum --derive-key CONTEXT -l N --no-names FILE` on `material`; returns its hex output.
std::string b3sum_derive(const std::string& context, const std::vector<uint8_t>& material,
                         size_t n) {
  char path[] = "/tmp/ss_b3sum_XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, material.data(), material.size()) == static_cast<ssize_t>(material.size()));
  close(fd);
  const std::string cmd =
      "b3sum --no-names --derive-key '" + context + "' -l " + std::to_string(n) + " " + path;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int rc = pclose(p);
  unlink(path);
  REQUIRE(rc == 0);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

TEST_CASE("2022 method table: three methods, chacha8/12 unsupported", "[crypto]") {
  REQUIRE(ss::methods_2022().size() == 3);
  const auto* a128 = ss::find_2022_method("2022-blake3-aes-128-gcm");
  const auto* a256 = ss::find_2022_method("2022-blake3-aes-256-gcm");
  const auto* c20 = ss::find_2022_method("2022-blake3-chacha20-poly1305");
  REQUIRE(a128 != nullptr);
  REQUIRE(a256 != nullptr);
  REQUIRE(c20 != nullptr);
  CHECK(a128->key_len == 16);
  CHECK(a128->aead->name == "aes-128-gcm");
  CHECK(a256->key_len == 32);
  CHECK(a256->aead->name == "aes-256-gcm");
  CHECK(c20->key_len == 32);
  CHECK(c20->aead->name == "chacha20-ietf-poly1305");
  for (const auto& m : ss::methods_2022()) {
    CHECK(m.aead != nullptr);
    CHECK(m.aead->key_len == m.key_len);
    CHECK(ss::is_2022_name(m.name));
  }
  CHECK(ss::find_2022_method("2022-blake3-chacha8-poly1305") == nullptr);
  CHECK(ss::find_2022_method("2022-blake3-chacha12-poly1305") == nullptr);
  CHECK(ss::find_2022_method("aes-128-gcm") == nullptr);
  CHECK(ss::is_2022_name("2022-blake3-chacha8-poly1305"));
  CHECK_FALSE(ss::is_2022_name("aes-128-gcm"));
}

TEST_CASE("BLAKE3 derivations match the §6.3 vectors", "[crypto]") {
  std::array<uint8_t, 32> out{};
  ss::session_subkey_2022(b64("Lc3tTx0BY6ZJ/fCwOx3JvF0I/anhwJBO5p2+FA5Vce4="),
                          b64("3oFO0VyLyGI4nFN0M9P+62vPND/L6v8IingaPJWTbJA="), out);
  CHECK(to_hex(out) == "11d344fb853c7559c74f4fa9a001432b66dd9707eb1d3eb5b1436bf5660f87e1");
  CHECK(ss::base64_encode(out) == "EdNE+4U8dVnHT0+poAFDK2bdlwfrHT61sUNr9WYPh+E=");

  ss::blake3_derive_key("shadowsocks 2022 identity subkey",
                        bytes_of("Personal search-enabled assistant for programmers"), out);
  CHECK(to_hex(out) == "9dbf756488dd37315c3e61914b72e0ee6fa6b95a9ab79e3df9148396ec953787");
  // identity_subkey_2022 is the same context over ipsk || salt: split the material anywhere.
  const auto material = bytes_of("Personal search-enabled assistant for programmers");
  std::array<uint8_t, 32> split{};
  ss::identity_subkey_2022({material.data(), 10}, {material.data() + 10, material.size() - 10},
                           split);
  CHECK(split == out);
}

TEST_CASE("BLAKE3 derivations match the §6.4 intermediate values - short output is a prefix",
          "[crypto]") {
  std::array<uint8_t, 16> k16{};
  ss::session_subkey_2022(seq(0x00, 0x10), seq(0x10, 0x20), k16);
  CHECK(to_hex(k16) == "bc32fb8d5205f7b84f9691dfb9f04ff3");  // (a)
  ss::session_subkey_2022(seq(0x00, 0x10), seq(0x20, 0x30), k16);
  CHECK(to_hex(k16) == "8180421f8f56092ca7544a64ff852536");  // (b)
  ss::identity_subkey_2022(seq(0xa0, 0xb0), seq(0x10, 0x20), k16);
  CHECK(to_hex(k16) == "c2af2297834b9c6524f1907d80b29850");  // (e)
  ss::blake3_hash(seq(0xb0, 0xc0), k16);
  CHECK(to_hex(k16) == "4cd2740678ca81d3d33b72a7cd437e92");
  ss::session_subkey_2022(seq(0xb0, 0xc0), seq(0x10, 0x20), k16);
  CHECK(to_hex(k16) == "f46f2a114db2b570ba9e29da8cc1f6d8");
  ss::session_subkey_2022(seq(0x00, 0x10), from_hex("0102030405060708"), k16);
  CHECK(to_hex(k16) == "b8473b44792f673ee36a405dfa755cc4");  // (c)

  std::array<uint8_t, 32> k32{};
  ss::session_subkey_2022(seq(0x00, 0x10), seq(0x10, 0x20), k32);
  CHECK(to_hex(k32).substr(0, 32) == "bc32fb8d5205f7b84f9691dfb9f04ff3");
}

TEST_CASE("BLAKE3 derive_key equals Debian's b3sum --derive-key on random inputs", "[crypto]") {
  const std::string contexts[] = {"shadowsocks 2022 session subkey",
                                  "shadowsocks 2022 identity subkey", "an arbitrary context"};
  // Sizes cross BLAKE3's 64-byte block and 1024-byte chunk boundaries (the SIMD paths hash
  // several chunks at once).
  const size_t sizes[] = {0, 1, 48, 64, 65, 1024, 1025, 4096 + 7, 17000};
  const size_t outs[] = {16, 32, 77};
  int i = 0;
  for (size_t size : sizes) {
    std::vector<uint8_t> material(size);
    ss::random_bytes(material);
    const std::string& ctx = contexts[i % 3];
    const size_t n = outs[i % 3];
    ++i;
    std::vector<uint8_t> ours(n);
    ss::blake3_derive_key(ctx, material, ours);
    INFO("size " << size << " context " << ctx << " out " << n);
    CHECK(to_hex(ours) == b3sum_derive(ctx, material, n));
  }
}

TEST_CASE("2022 PSK parsing: one key, iPSK chains, wrong sizes, chacha refuses EIH", "[crypto]") {
  const auto& a128 = *ss::find_2022_method("2022-blake3-aes-128-gcm");
  const auto& a256 = *ss::find_2022_method("2022-blake3-aes-256-gcm");
  const auto& c20 = *ss::find_2022_method("2022-blake3-chacha20-poly1305");

  auto one = ss::parse_2022_password(a128, "AAECAwQFBgcICQoLDA0ODw==");
  REQUIRE(one.error.empty());
  REQUIRE(one.keys.size() == 1);
  CHECK(one.keys[0] == seq(0, 16));
  // Padding optional.
  auto unpadded = ss::parse_2022_password(a128, "AAECAwQFBgcICQoLDA0ODw");
  REQUIRE(unpadded.error.empty());
  CHECK(unpadded.keys[0] == seq(0, 16));

  auto chain = ss::parse_2022_password(a128, "oKGio6SlpqeoqaqrrK2urw==:sLGys7S1tre4ubq7vL2+vw==");
  REQUIRE(chain.error.empty());
  REQUIRE(chain.keys.size() == 2);
  CHECK(chain.keys[0] == seq(0xa0, 0xb0));
  CHECK(chain.keys[1] == seq(0xb0, 0xc0));

  // A 16-byte key for a 32-byte method, garbage, empty parts.
  for (std::string_view bad : {"AAECAwQFBgcICQoLDA0ODw==", "not base64!", "", ":",
                               "AAECAwQFBgcICQoLDA0ODwABAgMEBQYHCAkKCwwNDg8=:"}) {
    auto r = ss::parse_2022_password(a256, bad);
    INFO(bad);
    CHECK(r.keys.empty());
    CHECK(r.error.find("2022-blake3-aes-256-gcm") != std::string::npos);
    CHECK(r.error.find("32-byte") != std::string::npos);
    CHECK(r.error.find('\n') == std::string::npos);
  }

  const std::string k32 = ss::generate_2022_key(c20);
  auto single = ss::parse_2022_password(c20, k32);
  CHECK(single.error.empty());
  CHECK(single.keys.size() == 1);
  auto multi = ss::parse_2022_password(c20, k32 + ":" + k32);
  CHECK(multi.keys.empty());
  CHECK(multi.error.find("AES") != std::string::npos);
  auto multi256 = ss::parse_2022_password(a256, k32 + ":" + k32 + ":" + k32);
  CHECK(multi256.error.empty());
  CHECK(multi256.keys.size() == 3);
}

TEST_CASE("generate_2022_key: base64 of key_len random bytes, fresh every call", "[crypto]") {
  for (const auto& m : ss::methods_2022()) {
    const std::string a = ss::generate_2022_key(m);
    const std::string b = ss::generate_2022_key(m);
    CHECK(a != b);
    auto da = ss::base64_decode(a);
    REQUIRE(da.has_value());
    CHECK(da->size() == m.key_len);
    CHECK(a.size() == (m.key_len + 2) / 3 * 4);  // standard, padded
    auto parsed = ss::parse_2022_password(m, a);
    CHECK(parsed.error.empty());
    REQUIRE(parsed.keys.size() == 1);
    CHECK(parsed.keys[0] == *da);
  }
}
