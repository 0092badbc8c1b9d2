#pragma once
// Counts heap allocations made by the crypto test binary. Normally by replacing operator new (the
// crypto module's own allocations go through it; libcrypto's and libsodium's mallocs are not
// seen). Under AddressSanitizer, which owns operator new, through its allocator hooks instead,
// which see every malloc too: there the data-path checks also prove that OpenSSL and libsodium
// allocate nothing per message.

#include <cstddef>

namespace ss::test {

// Allocations so far, by any thread.
size_t allocation_count();

}  // namespace ss::test
