// CPU time per AEAD seal and open of one message, chacha20-ietf-poly1305 through OpenSSL EVP
// (ss::Aead, the backend in use) against libsodium's crypto_aead_chacha20poly1305_ietf_*
// (detached, in place), for the sizes a Shadowsocks TCP chunk has: its 2-byte length, a 1 KB
// payload and a full 16383-byte payload; and AES-GCM's re-key (Aead::set_key), which a 2022 UDP
// datagram pays when the thread's context was last keyed for another session. Thread CPU time
// (CLOCK_THREAD_CPUTIME_ID), so a shared machine disturbs it less than wall time. Not run by
// CTest: `cmake --build build --target aead_bench && build/tests/bench/aead_bench [reps]`.

#include <sodium.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "crypto/aead.h"
#include "crypto/cipher_spec.h"

namespace {

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

template <class F>
double us_per_call(int n, F&& f) {
  const double t0 = cpu_seconds();
  for (int i = 0; i < n; ++i) f();
  return (cpu_seconds() - t0) / n * 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 3;
  if (sodium_init() < 0) return 1;
  const ss::CipherSpec& chacha = *ss::find_cipher("chacha20-ietf-poly1305");
  uint8_t key[32] = {7};
  uint8_t nonce[12] = {};
  ss::Aead evp(chacha);
  if (!evp.set_key({key, 32})) return 1;
  std::printf(
      "chacha20-ietf-poly1305, CPU us per call: size seal(openssl) seal(sodium) "
      "open(openssl) open(sodium)\n");
  for (int rep = 0; rep < reps; ++rep) {
    for (size_t n : {size_t{2}, size_t{1024}, size_t{16383}}) {
      const int calls = n < 100 ? 400000 : n < 2000 ? 200000 : 20000;
      std::vector<uint8_t> buf(n + 16), ct(n + 16), pt(n);
      const double seal_evp =
          us_per_call(calls, [&] { (void)evp.seal(nonce, buf.data(), n, buf.data()); });
      const double seal_na = us_per_call(calls, [&] {
        crypto_aead_chacha20poly1305_ietf_encrypt_detached(
            buf.data(), buf.data() + n, nullptr, buf.data(), n, nullptr, 0, nullptr, nonce, key);
      });
      if (!evp.seal(nonce, buf.data(), n, ct.data())) return 1;
      bool ok = true;
      const double open_evp =
          us_per_call(calls, [&] { ok = evp.open(nonce, ct.data(), n + 16, pt.data()) && ok; });
      const double open_na = us_per_call(calls, [&] {
        ok = crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                 pt.data(), nullptr, ct.data(), n, ct.data() + n, nullptr, 0, nonce, key) == 0 &&
             ok;
      });
      if (!ok) return 1;
      std::printf("%5zu %.3f %.3f %.3f %.3f\n", n, seal_evp, seal_na, open_evp, open_na);
    }
  }
  std::printf("AES-GCM re-key (Aead::set_key), CPU us per call:\n");
  for (const char* name : {"aes-128-gcm", "aes-256-gcm"}) {
    const ss::CipherSpec& spec = *ss::find_cipher(name);
    ss::Aead aes(spec);
    uint8_t k1[32] = {1};
    uint8_t k2[32] = {2};
    int i = 0;
    const double us = us_per_call(200000, [&] {
      (void)aes.set_key({(++i & 1) ? k1 : k2, spec.key_len});
    });
    std::printf("%s %.3f\n", name, us);
  }
  return 0;
}
