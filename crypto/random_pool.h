#pragma once
// Per-thread pool of the kernel's random bytes for public per-session values (salts): one
// getrandom(2) fills 4 KiB, which serves 128 to 256 salts, instead of one system call per
// connection. The bytes are the kernel CSPRNG's own output (no generator of ours to get wrong);
// each byte is handed out once and wiped from the pool as it is. The pool's page is marked
// MADV_WIPEONFORK, so a forked child finds it empty and refills it rather than repeating its
// parent's salts; where that cannot be set, every call goes to the kernel. Keys stay with
// random_bytes (crypto/kdf.h): nothing secret is kept in memory ahead of its use.

#include <cstdint>
#include <span>

namespace ss {

// Fills `out` with random bytes from the calling thread's pool (random_bytes when the pool is
// unavailable or the request is larger than the pool).
void pooled_random_bytes(std::span<uint8_t> out);

}  // namespace ss
