#pragma once
// Shadowsocks 2022 TCP (SIP022 §3.1, SIP023 identity headers; protocol.md §2.4-2.7, §2.11) as a
// TcpCipherSuite. The wire format is described at the top of tcp2022.cpp.
//
// Roles and what the session must know:
//   client_sealer()      seal_request() writes salt, identity headers, both request header chunks
//                        and the first payload in one buffer: send it in one write.
//   client_opener(s)     `s` must be this connection's client_sealer() (it needs the request
//                        salt, which the response must echo).
//   server_opener()      ONE-READ RULE: the first non-empty feed() must hold at least the salt,
//                        one 16-byte identity header when users are configured, and the sealed
//                        fixed header (27 bytes): give it the session's first read, unsplit. A
//                        shorter first feed is an Error ("header too short"), whatever its length.
//                        Its plaintext is [address header][initial payload][payload...]; padding
//                        is stripped.
//   server_sealer(o)     `o` must be this connection's server_opener() after it released the
//                        address header; the response is keyed with the key that opened the
//                        request (the user's uPSK for an identified SIP023 user).
// Errors are final; failure() names the reason, user() the identified SIP023 user.
// authenticated(): server side once the request's fixed header opened, had type 0, a fresh
// timestamp and a salt new to the pool; client side once the response header passed its checks.
// Nothing throws; nothing is allocated per chunk (per connection: the objects, an OpenSSL
// context for an identity header, and a buffer for a chunk split across reads).

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "crypto/aead2022.h"
#include "crypto/salt_pool.h"
#include "crypto/tcp_cipher.h"

namespace ss {

struct Tcp2022User {
  std::string name;
  std::vector<uint8_t> key;  // the user's uPSK, method.key_len bytes
};

struct Tcp2022Options {
  const Method2022* method = nullptr;
  // Client role (ss-local, ss-tunnel): the parsed password (parse_2022_password().keys): the
  // iPSKs in order, then the uPSK; or a single PSK. Empty: no client role (its objects fail).
  std::vector<std::vector<uint8_t>> client_keys;
  // Server role (ss-server): the PSK, or with `users` the iPSK that encrypts their identity
  // headers. Empty: no server role (its objects fail).
  std::vector<uint8_t> server_psk;
  // SIP023 users (AES methods only). When non-empty every request must carry one identity header
  // naming one of them; the stream is then keyed with that user's key.
  std::vector<Tcp2022User> users;
  // Server role: every request must carry an identity header even when `users` is empty (then
  // everyone is refused): a port whose only keys are its users (users_url), never the PSK alone.
  bool users_only = false;
  // The server's request-salt pool, shared by every suite/worker that serves the same port.
  // nullptr: the suite makes its own.
  std::shared_ptr<SaltPool> salt_pool;
  // Unix seconds, for the timestamps and the pool. Empty: the system clock.
  std::function<uint64_t()> clock;
  // Fills its argument with random bytes: salts (16/32 bytes, one call per salt) and the 2-byte
  // draw of a request's padding length. Empty: libsodium's CSPRNG. For tests and vectors only.
  std::function<void(std::span<uint8_t>)> random;
};

// Request padding (client): with no initial payload, 1..900 random bytes (SIP022 requires some);
// with an initial payload shorter than 900 bytes, 0..900 (the first packet's size then says
// little about the payload's, which is what a passive classifier looks at); with 900 bytes or
// more, none. Padding bytes are zeros (they are encrypted).

// nullptr, with a one-line reason in *error if given, when the options are inconsistent: no
// method, no key for either role, a key of the wrong size, identity headers (several client keys
// or users) with a ChaCha method, two users with the same key.
std::unique_ptr<TcpCipherSuite> make_2022_suite(Tcp2022Options options,
                                                std::string* error = nullptr);

}  // namespace ss
