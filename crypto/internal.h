#pragma once
// Helpers shared by the crypto/ sources only (not part of the module's public API).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace ss {
class Aead;
}

namespace ss::detail {

// Runs sodium_init() exactly once per process (thread-safe); aborts if libsodium cannot start,
// since its CSPRNG would then be unusable.
void ensure_sodium();

// Keys `aead` with HKDF-SHA1(first key_len bytes of master_key, salt, "ss-subkey") (§1.3).
// False if master_key is shorter than the spec's key length or a library call fails.
bool set_session_key(Aead& aead, std::span<const uint8_t> master_key,
                     std::span<const uint8_t> salt);

// For a stream parser fed in pieces: the `need`-byte block starting at in[pos] (of n bytes),
// advancing pos past what it uses. A block wholly inside `in` with nothing held is returned in
// place; otherwise the bytes are gathered in `partial` (`held` of them so far; `capacity` bytes,
// allocated on first need) and the block is returned from there once complete, held reset to 0
// (the block stays intact until the next copy). nullptr while incomplete (all of in[pos..n) is
// held), or when the allocation failed: then `partial` is still empty and pos unchanged.
const uint8_t* take_block(std::unique_ptr<uint8_t[]>& partial, size_t& held, size_t capacity,
                          const uint8_t* in, size_t n, size_t& pos, size_t need);

}  // namespace ss::detail
