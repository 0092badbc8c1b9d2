#pragma once
// Helpers shared by the crypto/ sources only (not part of the module's public API).

#include <cstdint>
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

}  // namespace ss::detail
