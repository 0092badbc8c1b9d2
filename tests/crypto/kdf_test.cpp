// Key derivation: EVP_BytesToKey (§6.1), HKDF-SHA1 (RFC 5869 A.4-A.7, §6.2 subkeys), base64,
// randomness.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "crypto/cipher_spec.h"
#include "crypto/kdf.h"
#include "tests/crypto/test_util.h"

using ss::test::from_hex;
using ss::test::to_hex;

namespace {

std::vector<uint8_t> seq(int from, int to) {  // bytes from..to-1
  std::vector<uint8_t> v;
  for (int i = from; i < to; ++i) v.push_back(static_cast<uint8_t>(i));
  return v;
}

std::vector<uint8_t> hkdf(const std::vector<uint8_t>& ikm, const std::vector<uint8_t>& salt,
                          std::string_view info, size_t len) {
  std::vector<uint8_t> out(len);
  REQUIRE(ss::hkdf_sha1(ikm, salt, info, out));
  return out;
}

std::string as_string(const std::vector<uint8_t>& v) {
  return {v.begin(), v.end()};
}

}  // namespace

TEST_CASE("EVP_BytesToKey matches the §6.1 vectors and every length 16..32 is a prefix",
          "[crypto]") {
  struct Vector {
    std::string_view password;
    std::string_view key_hex;
  };
  const Vector vectors[] = {
      {"123\xe4\xb8\xad"
       "1\xe6\x96\x87"
       "da18\xe6\xb5\x8b)\xe8\xaf\x95"
       "abc!#$@(",
       "8c5ea5e7ade3b3133a479e6aff0506dd7952bf75984a26722070cd9e44a09353"},
      {"Imakethis_LongPassPhraseFor_safety_2019_0928@_@!",
       "4b01a2d762fada9ede4d1034a13dc69c3b528b738236b99cd3a472d2933580d6"},
  };
  for (const Vector& v : vectors) {
    const std::vector<uint8_t> full = from_hex(v.key_hex);
    for (size_t len = 16; len <= 32; ++len) {
      INFO("password " << v.password << ", length " << len);
      const std::vector<uint8_t> key = ss::derive_master_key(v.password, len);
      CHECK(key == std::vector<uint8_t>(full.begin(), full.begin() + len));
    }
  }
}

TEST_CASE("EVP_BytesToKey: MD5(password), foobar, the §6.2 password and long keys", "[crypto]") {
  CHECK(to_hex(ss::derive_master_key("password", 16)) == "5f4dcc3b5aa765d61d8327deb882cf99");
  CHECK(to_hex(ss::derive_master_key("foobar", 32)) ==
        "3858f62230ac3c915f300c664312c63f568378529614d22ddb49237d2f60bfdf");
  CHECK(to_hex(ss::derive_master_key(ss::test::kPassword62, 32)) == ss::test::kMasterKey62);
  // Short and long outputs stay prefixes of one another (D1 || D2 || D3 ...).
  const std::vector<uint8_t> long_key = ss::derive_master_key("foobar", 80);
  REQUIRE(long_key.size() == 80);
  for (size_t len = 0; len <= 80; ++len) {
    CHECK(ss::derive_master_key("foobar", len) ==
          std::vector<uint8_t>(long_key.begin(), long_key.begin() + len));
  }
  // An empty password is still a (weak) key: D1 = MD5("").
  CHECK(to_hex(ss::derive_master_key("", 16)) == "d41d8cd98f00b204e9800998ecf8427e");
}

TEST_CASE("HKDF-SHA1 matches RFC 5869 test cases A.4 to A.7", "[crypto]") {
  SECTION("A.4 basic") {
    CHECK(to_hex(hkdf(std::vector<uint8_t>(11, 0x0b), seq(0x00, 0x0d), as_string(seq(0xf0, 0xfa)),
                      42)) ==
          "085a01ea1b10f36933068b56efa5ad81a4f14b822f5b091568a9cdd4f155fda2c22e422478d305f3f896");
  }
  SECTION("A.5 longer inputs and outputs") {
    CHECK(to_hex(hkdf(seq(0x00, 0x50), seq(0x60, 0xb0), as_string(seq(0xb0, 0x100)), 82)) ==
          "0bd770a74d1160f7c9f12cd5912a06ebff6adcae899d92191fe4305673ba2ffe8fa3f1a4e5ad79f3f334b3b2"
          "02b2173c486ea37ce3d397ed034c7f9dfeb15c5e927336d0441f4c4300e2cff0d0900b52d3b4");
  }
  SECTION("A.6 zero-length salt and info") {
    CHECK(to_hex(hkdf(std::vector<uint8_t>(22, 0x0b), {}, "", 42)) ==
          "0ac1af7002b3d761d1e55298da9d0506b9ae52057220a306e07b6b87e8df21d0ea00033de03984d34918");
  }
  SECTION("A.7 salt not provided (HashLen zeros), zero-length info") {
    const char* expected =
        "2c91117204d745f3500d636a62f64f0ab3bae548aa53d423b0d1f27ebba6f5e5673a081d70cce7acfc48";
    CHECK(to_hex(hkdf(std::vector<uint8_t>(22, 0x0c), {}, "", 42)) == expected);
    CHECK(to_hex(hkdf(std::vector<uint8_t>(22, 0x0c), std::vector<uint8_t>(20, 0), "", 42)) ==
          expected);
  }
  SECTION("an empty output is trivially filled; an impossible length fails") {
    std::vector<uint8_t> none;
    CHECK(ss::hkdf_sha1(seq(0, 16), seq(0, 16), "ss-subkey", none));
    std::vector<uint8_t> too_long(255 * 20 + 1);
    CHECK_FALSE(ss::hkdf_sha1(seq(0, 16), seq(0, 16), "ss-subkey", too_long));
  }
}

TEST_CASE("HKDF-SHA1 session subkeys match the §6.2 intermediate values", "[crypto]") {
  struct Row {
    std::string_view method;
    size_t stream;  // index into kStreams62
    std::string_view subkey_hex;
  };
  const Row rows[] = {
      {"aes-128-gcm", 0, "0b30a9cd483a44a704fa9feac6a7366d"},
      {"aes-128-gcm", 1, "108fb6e4fc26b414dea432ba8b3412aa"},
      {"aes-192-gcm", 2, "93fb605f0665c3caf50f1c470e87453a7813fc845fe3b776"},
      {"aes-256-gcm", 4, "c3bd8abec1d8f9a9c87f8cbb3f72900a441d9361f7a90f28e02b2f72da695f61"},
      {"chacha20-ietf-poly1305", 6,
       "81fac62003af33e427c4d6ffaa0641a5345f843c0193e08b89250aa772bdbd3e"},
      {"xchacha20-ietf-poly1305", 8,
       "17dcad56ff4a9cb19663f79ee2eab67d556bd58d24464d1dead96c06e6002a1a"},
  };
  const std::vector<uint8_t> master = from_hex(ss::test::kMasterKey62);
  for (const Row& row : rows) {
    INFO(row.method);
    const ss::CipherSpec& spec = ss::test::cipher(row.method);
    REQUIRE(ss::test::kStreams62[row.stream].method == row.method);
    const std::vector<uint8_t> stream = from_hex(ss::test::kStreams62[row.stream].stream_hex);
    const std::vector<uint8_t> salt(stream.begin(), stream.begin() + spec.salt_len);
    const std::vector<uint8_t> ikm = ss::derive_master_key(ss::test::kPassword62, spec.key_len);
    REQUIRE(ikm == std::vector<uint8_t>(master.begin(), master.begin() + spec.key_len));
    CHECK(to_hex(hkdf(ikm, salt, "ss-subkey", spec.key_len)) == row.subkey_hex);
  }
}

TEST_CASE("base64_encode: RFC 4648 vectors, standard alphabet, padded", "[crypto]") {
  CHECK(ss::base64_encode(ss::test::bytes_of("")) == "");
  CHECK(ss::base64_encode(ss::test::bytes_of("f")) == "Zg==");
  CHECK(ss::base64_encode(ss::test::bytes_of("fo")) == "Zm8=");
  CHECK(ss::base64_encode(ss::test::bytes_of("foo")) == "Zm9v");
  CHECK(ss::base64_encode(ss::test::bytes_of("foob")) == "Zm9vYg==");
  CHECK(ss::base64_encode(ss::test::bytes_of("fooba")) == "Zm9vYmE=");
  CHECK(ss::base64_encode(ss::test::bytes_of("foobar")) == "Zm9vYmFy");
  CHECK(ss::base64_encode(std::vector<uint8_t>{0xfb, 0xff}) == "+/8=");
}

TEST_CASE("base64_decode accepts both alphabets with or without padding", "[crypto]") {
  using V = std::vector<uint8_t>;
  CHECK(ss::base64_decode("") == V{});
  CHECK(ss::base64_decode("Zg==") == ss::test::bytes_of("f"));
  CHECK(ss::base64_decode("Zg") == ss::test::bytes_of("f"));
  CHECK(ss::base64_decode("Zm8=") == ss::test::bytes_of("fo"));
  CHECK(ss::base64_decode("Zm8") == ss::test::bytes_of("fo"));
  CHECK(ss::base64_decode("Zm9vYmFy") == ss::test::bytes_of("foobar"));
  CHECK(ss::base64_decode("+/8=") == V{0xfb, 0xff});
  CHECK(ss::base64_decode("+/8") == V{0xfb, 0xff});
  CHECK(ss::base64_decode("-_8=") == V{0xfb, 0xff});
  CHECK(ss::base64_decode("-_8") == V{0xfb, 0xff});
  // §6.3's PSK, a real 32-byte key in the standard alphabet.
  CHECK(ss::base64_decode("Lc3tTx0BY6ZJ/fCwOx3JvF0I/anhwJBO5p2+FA5Vce4=") ==
        from_hex("2dcded4f1d0163a649fdf0b03b1dc9bc5d08fda9e1c0904ee69dbe140e5571ee"));
  CHECK(ss::base64_decode("Lc3tTx0BY6ZJ_fCwOx3JvF0I_anhwJBO5p2-FA5Vce4") ==
        from_hex("2dcded4f1d0163a649fdf0b03b1dc9bc5d08fda9e1c0904ee69dbe140e5571ee"));
}

TEST_CASE("base64_decode rejects malformed input", "[crypto]") {
  const std::string_view bad[] = {
      "Z",                                // a dangling single character (6 bits)
      "Zm9vY",                            // the same after a full quantum
      "Zg=",                              // one '=' where two are needed
      "Zg===",                            // too much padding
      "Zm8==",                            // too much padding
      "=",                                // padding only
      "Zm9v=",                            // padding after a full quantum
      "Zh==",                             // non-zero trailing bits
      "Zm9=",                             // non-zero trailing bits
      "Zm 9v",                            // whitespace
      "Zm9v\n",                           // newline
      "Zm9v!",                            // not in either alphabet
      "Zg==Zg==",                         // padding in the middle
      "+_8=",                             // mixes the standard and the URL-safe alphabet
      "-/8",                              // likewise
      std::string_view("Zm9vYmFy\0", 9),  // NUL inside the view
  };
  for (const std::string_view text : bad) {
    INFO("input: " << std::string(text));
    CHECK_FALSE(ss::base64_decode(text).has_value());
  }
}

TEST_CASE("base64_decode rejects bytes outside the alphabet, including non-ASCII (fuzz finding)",
          "[crypto]") {
  // libsodium 1.0.18 read 0x80-0xFF as the value 63: "AAA\x80" decoded as if it were "AAA/".
  CHECK_FALSE(ss::base64_decode("AAA\x80").has_value());
  CHECK_FALSE(ss::base64_decode(std::string("A") + std::string(23, '\xbf')).has_value());
  for (int c = 0x80; c <= 0xFF; ++c) {
    std::string s = "AAAA";
    s[3] = static_cast<char>(c);
    CHECK_FALSE(ss::base64_decode(s).has_value());
  }
  for (char c : std::string(" \t\n.*!@#$%^&()[]{}<>?,;:'\"\\|~`")) {
    std::string s = "AAAA";
    s[1] = c;
    CHECK_FALSE(ss::base64_decode(s).has_value());
  }
  CHECK(ss::base64_decode("AAA/").has_value());
}

TEST_CASE("base64 round trips every length and byte value", "[crypto]") {
  std::vector<uint8_t> data;
  for (size_t len = 0; len <= 300; ++len) {
    data.resize(len);
    for (size_t i = 0; i < len; ++i) data[i] = static_cast<uint8_t>(i * 37 + len);
    const std::string text = ss::base64_encode(data);
    CHECK(text.size() == (len + 2) / 3 * 4);
    CHECK(ss::base64_decode(text) == data);
    std::string url = text;
    std::replace(url.begin(), url.end(), '+', '-');
    std::replace(url.begin(), url.end(), '/', '_');
    CHECK(ss::base64_decode(url) == data);
    std::string bare = url;
    while (!bare.empty() && bare.back() == '=') bare.pop_back();
    CHECK(ss::base64_decode(bare) == data);
  }
}

TEST_CASE("random_bytes fills its span and secure_zero wipes", "[crypto]") {
  std::vector<uint8_t> a(64), b(64);
  ss::random_bytes(a);
  ss::random_bytes(b);
  CHECK(a != b);
  CHECK(std::any_of(a.begin(), a.end(), [](uint8_t x) { return x != 0; }));
  ss::random_bytes(std::span<uint8_t>());  // empty is fine
  ss::secure_zero(a);
  CHECK(std::all_of(a.begin(), a.end(), [](uint8_t x) { return x == 0; }));
  ss::secure_zero(std::span<uint8_t>());
}
