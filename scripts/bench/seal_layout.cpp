// Micro-benchmark behind the "seal in place" note in docs/BENCHMARKS.md: does sealing a 65,532-byte
// read as 0x3FFF-byte AEAD chunks cost less in place (ciphertext over the plaintext) than out of
// place (ciphertext into a second block, as the relay does)? A third variant makes room for the
// chunk headers and tags in place first (one memmove of everything after the first chunk), which
// a relay reading several chunks per read() would need. Only OpenSSL EVP, as in crypto/aead.cpp.
//
//   g++ -O2 -std=c++20 scripts/bench/seal_layout.cpp -o /tmp/seal_layout -lcrypto
//   /tmp/seal_layout          (GB/s of plaintext sealed, two runs of each variant)

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

namespace {

enum class Layout { OutOfPlace, InPlace, InPlaceAfterMemmove };

double gb_per_s(const EVP_CIPHER* cipher, Layout layout) {
  constexpr size_t kRead = 65532;
  constexpr size_t kChunk = 0x3FFF;
  constexpr size_t kOverhead = 2 + 16 + 16;  // sealed length + its tag + the payload's tag
  constexpr int kIterations = 40000;
  unsigned char key[32] = {1};
  unsigned char nonce[12] = {2};
  unsigned char tag[16];
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  EVP_EncryptInit_ex(ctx, cipher, nullptr, key, nonce);
  std::vector<unsigned char> in(kRead + 8 * kOverhead, 7);
  std::vector<unsigned char> out(kRead + 8 * kOverhead);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kIterations; ++i) {
    if (layout == Layout::InPlaceAfterMemmove) {
      std::memmove(in.data() + kChunk + 2 * kOverhead, in.data() + kChunk, kRead - kChunk);
    }
    size_t in_off = 0;
    size_t out_off = 0;
    while (in_off < kRead) {
      const size_t n = std::min(kChunk, kRead - in_off);
      unsigned char* dst = layout == Layout::OutOfPlace ? out.data() + out_off : in.data() + in_off;
      int len = 0;
      EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce);
      EVP_EncryptUpdate(ctx, dst, &len, in.data() + in_off, static_cast<int>(n));
      EVP_EncryptFinal_ex(ctx, dst + len, &len);
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag);
      in_off += n;
      out_off += n + kOverhead;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EVP_CIPHER_CTX_free(ctx);
  return static_cast<double>(kRead) * kIterations / seconds / 1e9;
}

}  // namespace

int main() {
  const std::pair<const char*, const EVP_CIPHER*> ciphers[] = {
      {"aes-128-gcm", EVP_aes_128_gcm()},
      {"aes-256-gcm", EVP_aes_256_gcm()},
      {"chacha20-poly1305", EVP_chacha20_poly1305()}};
  for (const auto& [name, cipher] : ciphers) {
    std::printf("%-18s", name);
    for (Layout l : {Layout::OutOfPlace, Layout::InPlace, Layout::InPlaceAfterMemmove}) {
      const double a = gb_per_s(cipher, l);
      const double b = gb_per_s(cipher, l);
      const char* label = l == Layout::OutOfPlace ? "out of place"
                          : l == Layout::InPlace  ? "in place"
                                                  : "in place after memmove";
      std::printf("  %s %.2f/%.2f GB/s", label, a, b);
    }
    std::printf("\n");
  }
}
