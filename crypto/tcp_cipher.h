#pragma once
// What a TCP session needs from a method's framing, whatever its edition: a sealer for the
// direction we send and an opener for the direction we receive, made by the method's suite.
//
// Client side the first flight is seal_request(): the target's address header and the first
// payload (possibly none) together. Server side, an opener's plaintext always starts with the
// target's address header, followed by the payload, whatever the edition carries around them.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "crypto/cipher_spec.h"
#include "crypto/stream.h"

namespace ss {

class TcpSealer {
 public:
  virtual ~TcpSealer() = default;
  // Upper bound on what seal() or seal_request() writes for n payload bytes (seal_request: plus
  // an address header of up to 259 bytes).
  virtual size_t max_sealed_size(size_t n) const = 0;
  // Seals n > 0 payload bytes into out. Returns the bytes written, 0 on a library failure.
  virtual size_t seal(const uint8_t* pt, size_t n, uint8_t* out) = 0;
  // The client's first flight: address header and first payload (n may be 0).
  virtual size_t seal_request(const uint8_t* addr, size_t addr_len, const uint8_t* pt, size_t n,
                              uint8_t* out) = 0;
};

class TcpOpener {
 public:
  struct Result {
    DecryptStatus status;
    size_t produced;
  };
  virtual ~TcpOpener() = default;
  // Most plaintext one feed of n bytes can release.
  virtual size_t max_output(size_t n) const = 0;
  // Consumes all of `in`; writes authenticated plaintext to out (capacity >= max_output(n)).
  // Error is final.
  virtual Result feed(const uint8_t* in, size_t n, uint8_t* out) = 0;
  // Ciphertext held for an incomplete chunk (a stream must not end with any).
  virtual size_t buffered() const = 0;
  // True once something has authenticated.
  virtual bool authenticated() const = 0;
  // A short reason for the last Error, for logs ("bad tag", "replayed salt", "client clock 45 s
  // ahead of ours", ...); empty when the method gives none. Valid while the opener lives.
  virtual std::string_view failure() const { return {}; }
  // The SIP023 user the stream was identified as (server side, 2022 edition with users); empty
  // otherwise.
  virtual std::string_view user() const { return {}; }
};

// Per-worker state a suite's server openers share (key trial's order, crypto/key_trial.h): made
// once per worker and used by that worker's thread only.
class TcpServerState {
 public:
  virtual ~TcpServerState() = default;
};

// Makes the four cipher states of a method. One suite serves every session of a process (and,
// where a method keeps shared state such as a replay pool, guards it).
class TcpCipherSuite {
 public:
  virtual ~TcpCipherSuite() = default;
  virtual std::unique_ptr<TcpSealer> client_sealer() const = 0;
  // `request` is this connection's client sealer (the 2022 edition checks the echoed salt).
  virtual std::unique_ptr<TcpOpener> client_opener(const TcpSealer& request) const = 0;
  virtual std::unique_ptr<TcpOpener> server_opener() const = 0;
  // Suites that keep per-worker state (key trial) make it here; null for the others.
  virtual std::shared_ptr<TcpServerState> server_state() const { return nullptr; }
  // A server opener with the worker's state and the client's IP (IPv6 or IPv4-mapped).
  virtual std::unique_ptr<TcpOpener> server_opener_for(const std::shared_ptr<TcpServerState>&,
                                                       std::span<const uint8_t, 16>) const {
    return server_opener();
  }
  // `request` is this connection's server opener, after it released the address header.
  virtual std::unique_ptr<TcpSealer> server_sealer(const TcpOpener& request) const = 0;
};

class ReplayFilter;

// SIP004/SIP007 AEAD with a master key. With a replay filter, the peer's salt is checked and
// recorded once its first chunk authenticates (a replay is an Error), and our own salts are
// recorded so a reflected stream is refused: ss-server's filter holds request salts and its
// responses', ss-local's its requests' and the responses'. A client opener also refuses its own
// request's salt exactly, filter or not.
std::unique_ptr<TcpCipherSuite> make_classic_suite(const CipherSpec& spec,
                                                   std::span<const uint8_t> master_key,
                                                   std::shared_ptr<ReplayFilter> replay = nullptr);

struct TrialUser;

// SIP004/SIP007 AEAD with several users on one port, each with its own master key: a server
// opener finds the client's key by trial on the first chunk (salt, sealed length and tag: one
// subkey derivation and one 18-byte AEAD open per candidate), in the order of the worker's
// KeyTrialOrder, and only then checks and records the salt in the replay filter. The sealer
// answers with the matched user's key. Server side only (a client knows its one key).
std::unique_ptr<TcpCipherSuite> make_classic_users_suite(const CipherSpec& spec,
                                                         std::vector<TrialUser> users,
                                                         std::shared_ptr<ReplayFilter> replay);

}  // namespace ss
