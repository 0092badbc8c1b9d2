#pragma once
// Shadowsocks 2022 UDP packets (SIP022 §3.2 and §4.1, SIP023 identity headers; protocol.md §2.8,
// §2.9, §2.11): a pure codec, no I/O. Wire formats are described at the top of udp2022.cpp.
//
// Objects:
//   Udp2022Client     ss-local side: seals requests, opens responses. One per event loop.
//   Udp2022Server     ss-server side: opens requests (single PSK or SIP023 users), seals responses.
//   Udp2022SessionKey the body AEAD of one (PSK, session ID) pair, kept by the caller per session,
//                     so the BLAKE3 subkey is derived once per session and not per packet.
//   SlidingWindow     (crypto/sliding_window.h) the per-session packet-ID replay window, also kept
//                     by the caller.
//
// Receiving is split in two phases so that the caller can check the replay window between them
// and only move it once the packet has fully validated (SIP022 §3.2.4, hostile-inputs U3/U4):
//
//   Udp2022Header h;
//   Udp2022Status st = codec.open_request_header(packet, out, h);   // 1. header (+ EIH user)
//   if (!st.ok()) drop(st);
//   Session& s = sessions_for(h.user, h.session_id);                // may be a fresh candidate
//   if (!s.window.check(h.packet_id)) drop("replayed packet id");   // 2. window check only
//   Udp2022Request r;
//   st = codec.open_request_body(h, s.body_key, now, r);            // 3. AEAD + type/time/format
//   if (!st.ok()) drop(st);                                          //    (window untouched)
//   s.window.accept(h.packet_id);                                    // 4. only now move it
//   (create/keep the session, update the client's return address, forward r.payload ...)
//
// Responses on the client follow the same order with open_response_header/open_response_body,
// one window (and one Udp2022SessionKey) per server session ID.
//
// Nothing here allocates or throws per packet: outputs go into caller buffers, results point into
// them. The codec objects reuse their cipher contexts and are not thread-safe.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/aead.h"
#include "crypto/aead2022.h"

struct evp_cipher_ctx_st;  // OpenSSL's EVP_CIPHER_CTX

namespace ss {

inline constexpr size_t kUdp2022HeaderLen = 16;  // AES separate header: session ID, packet ID
inline constexpr size_t kUdp2022EihLen = 16;     // one SIP023 identity header (AES only)
inline constexpr size_t kUdp2022NonceLen = 24;   // ChaCha: XChaCha20-Poly1305 nonce
inline constexpr size_t kUdp2022TagLen = 16;
// Plaintext body bytes before the padding: type, timestamp, [client session ID,] padding length.
inline constexpr size_t kUdp2022RequestFixedLen = 1 + 8 + 2;
inline constexpr size_t kUdp2022ResponseFixedLen = 1 + 8 + 8 + 2;
// ChaCha bodies start with the session ID and packet ID.
inline constexpr size_t kUdp2022ChaChaIdsLen = 16;
// `user` value when the server has no users table (a single PSK).
inline constexpr size_t kUdp2022NoUser = SIZE_MAX;

enum class Udp2022Error : uint8_t {
  None,
  TooShort,        // shorter than the smallest possible packet
  BadTag,          // the body does not authenticate
  UnknownUser,     // SIP023: the identity header names no configured user
  WrongType,       // a response sent as a request or the other way round
  Timestamp,       // more than kMaxTimeDiff2022 from now (see Udp2022Status::skew)
  BadPadding,      // padding length runs past the end of the body
  BadAddress,      // missing or malformed address header (ATYP not 1/3/4, domain length 0, short)
  OutputTooSmall,  // the caller's output buffer cannot hold the result
  Crypto,          // the codec is not usable (bad keys) or a library call failed
};

struct Udp2022Status {
  Udp2022Error error = Udp2022Error::None;
  int64_t skew = 0;  // Timestamp: packet time minus now, in seconds (negative = behind)

  bool ok() const { return error == Udp2022Error::None; }
  // A short reason ("bad tag", "timestamp 40 s behind", "unknown user", "too short", ...), written
  // into `buf` when it needs formatting; no allocation. 48 bytes always suffice.
  std::string_view describe(std::span<char> buf) const;
  // Allocating convenience for logs and tests.
  std::string message() const;
};

// One AES block (ECB, no padding), one key, one direction: the separate header and the identity
// headers. The EVP context is created once; apply() only runs the block.
class AesBlock {
 public:
  enum class Dir : uint8_t { Encrypt, Decrypt };

  AesBlock() = default;
  // `key`: 16 bytes (AES-128) or 32 bytes (AES-256); anything else leaves it invalid.
  AesBlock(std::span<const uint8_t> key, Dir dir);
  ~AesBlock();
  AesBlock(AesBlock&& other) noexcept;
  AesBlock& operator=(AesBlock&& other) noexcept;
  AesBlock(const AesBlock&) = delete;
  AesBlock& operator=(const AesBlock&) = delete;

  bool valid() const { return ctx_ != nullptr; }
  // Transforms one 16-byte block; `in` may equal `out`. False if invalid or the library fails.
  bool apply(const uint8_t* in, uint8_t* out);

 private:
  ::evp_cipher_ctx_st* ctx_ = nullptr;
};

// The body AEAD for one (PSK, session ID) pair: AES methods key it with
// session_subkey_2022(PSK, session ID), derived only when the pair changes. For the ChaCha method
// the PSK itself keys every packet and this object holds nothing (ensure() succeeds at once).
// Keep one per remote session for receiving and one per own session for sending. Zeroes the key
// on destruction.
//
// Memory: an object holds the 32-byte subkey, not a cipher context (an OpenSSL AES-GCM context
// is about 1 KiB, and a UDP association has two). aead() hands out the thread's one context per
// method, re-keyed only when it was last keyed for another session key; so one object's aead()
// is valid until another's is called on the same thread.
class Udp2022SessionKey {
 public:
  explicit Udp2022SessionKey(const Method2022& method);
  ~Udp2022SessionKey();
  Udp2022SessionKey(Udp2022SessionKey&&) noexcept;
  Udp2022SessionKey& operator=(Udp2022SessionKey&&) noexcept;
  Udp2022SessionKey(const Udp2022SessionKey&) = delete;
  Udp2022SessionKey& operator=(const Udp2022SessionKey&) = delete;

  // Keys the AEAD for (psk, session_id) unless it already is. False on a library failure or a
  // PSK of the wrong size.
  bool ensure(std::span<const uint8_t> psk, uint64_t session_id);
  // True if the last ensure() was for exactly this pair (tests: the subkey is cached).
  bool keyed_for(std::span<const uint8_t> psk, uint64_t session_id) const;
  // The keyed AEAD (AES methods, after a successful ensure()), else nullptr.
  Aead* aead();

 private:
  const Method2022* method_;
  std::array<uint8_t, kMaxKeyLen> psk_{};
  std::array<uint8_t, kMaxKeyLen> subkey_{};
  uint64_t session_id_ = 0;
  uint64_t serial_ = 0;  // names this key in the thread's context cache; new at each ensure()
  bool keyed_ = false;
};

// What phase 1 learnt from a packet; phase 2 needs it unchanged (and the same packet and output
// buffers, which must stay alive and untouched in between).
class Udp2022Header {
 public:
  uint64_t session_id = 0;       // the sender's session ID (client's for requests)
  uint64_t packet_id = 0;        // check it against that session's window
  size_t user = kUdp2022NoUser;  // server with users: index of the identified user

 private:
  friend class Udp2022Client;
  friend class Udp2022Server;

  // Phase 1 for either direction, on a fresh header: TooShort unless `packet` holds `prefix`
  // bytes, `fixed_len` body bytes and the tag; then AES decrypts the separate header with
  // `header_dec`, ChaCha opens the whole packet into `out` with `xchacha`; last the IDs are read
  // and the buffers remembered for phase 2.
  Udp2022Status open(const Method2022& method, AesBlock& header_dec, Aead* xchacha,
                     std::span<const uint8_t> packet, std::span<uint8_t> out, size_t prefix,
                     size_t fixed_len);
  // The AEAD of phase 2 for either direction: `body` gets the body plaintext (ChaCha: opened in
  // phase 1; AES: opened here with `key`, keyed for `psk` and this header's session ID).
  Udp2022Status open_body(Udp2022SessionKey& key, std::span<const uint8_t> psk,
                          std::span<const uint8_t>& body) const;

  const uint8_t* packet_ = nullptr;
  size_t packet_len_ = 0;
  uint8_t* out_ = nullptr;
  size_t body_offset_ = 0;                          // AES: where the sealed body starts
  size_t plain_len_ = 0;                            // ChaCha: body plaintext already in out_
  std::array<uint8_t, kUdp2022HeaderLen> plain_{};  // AES: the plaintext separate header
  bool opened_ = false;                             // ChaCha: AEAD already verified in phase 1
  bool request_ = false;
};

// A validated client→server packet. The spans point into the caller's output buffer.
struct Udp2022Request {
  uint64_t session_id = 0;  // client session ID
  uint64_t packet_id = 0;
  uint64_t timestamp = 0;  // Unix seconds as sent
  size_t user = kUdp2022NoUser;
  std::string_view user_name;        // SIP023 user, empty without a users table
  std::span<const uint8_t> address;  // target: ATYP, address, port (checked for shape only)
  std::span<const uint8_t> payload;
};

// A validated server→client packet. The spans point into the caller's output buffer.
struct Udp2022Response {
  uint64_t server_session_id = 0;
  uint64_t packet_id = 0;
  uint64_t client_session_id = 0;  // the caller must check it is its own session ID
  uint64_t timestamp = 0;
  std::span<const uint8_t> address;  // source of the reply: ATYP, address, port
  std::span<const uint8_t> payload;
};

// Padding policy for sealing. None: never. Dns: like sing-shadowsocks, only for packets to or
// from port 53. Always: every packet. When it applies, a payload under kMaxPadding2022 bytes gets
// 1..(900 - payload) random bytes of padding (so short packets do not reveal their length).
enum class Udp2022Padding : uint8_t { None, Dns, Always };
// A padding length for one packet. `address` is the packet's address header (its last two bytes
// are the port).
size_t udp2022_padding(Udp2022Padding policy, std::span<const uint8_t> address, size_t payload_len);

// Randomness source for the ChaCha nonces (default: random_bytes). Tests substitute a
// deterministic one to reproduce vectors; never change it in production code.
using Udp2022RandomFn = void (*)(std::span<uint8_t>);

class Udp2022Client {
 public:
  // `keys` is the parsed password (parse_2022_password().keys): [iPSK1, ..., iPSKn,] uPSK.
  // With n > 0 (AES methods only) every request carries n identity headers and its separate
  // header is encrypted with iPSK1; bodies and responses use the uPSK.
  Udp2022Client(const Method2022& method, std::span<const std::vector<uint8_t>> keys);
  ~Udp2022Client();
  Udp2022Client(const Udp2022Client&) = delete;
  Udp2022Client& operator=(const Udp2022Client&) = delete;

  // False if the keys do not suit the method (count, sizes, EIH with ChaCha) or a cipher context
  // could not be made. An invalid codec fails every call.
  bool valid() const { return valid_; }
  const Method2022& method() const { return *method_; }
  // The user PSK (last key): what a Udp2022SessionKey for this client is keyed with.
  std::span<const uint8_t> user_key() const;

  // Bytes seal_request() writes for these sizes.
  size_t request_size(size_t address_len, size_t padding, size_t payload_len) const;
  // Where the payload sits in a sealed request: a caller may receive the payload straight into
  // out + request_payload_offset(...) and pass that span as `payload` (no copy).
  size_t request_payload_offset(size_t address_len, size_t padding) const;

  // Seals one request into `out`. `key` is the caller's per-session cache (keyed here for the
  // uPSK and session_id); `address` is the target's address header; `padding` bytes of zeros
  // are inserted (see udp2022_padding()); `now` is Unix seconds. Apart from the no-copy layout
  // above, `payload` and `address` must not overlap `out`. Returns the packet size, 0 if `out`
  // is too small or a library call failed.
  size_t seal_request(Udp2022SessionKey& key, uint64_t session_id, uint64_t packet_id,
                      std::span<const uint8_t> address, size_t padding,
                      std::span<const uint8_t> payload, int64_t now, std::span<uint8_t> out);

  // Phase 1 for a response: AES decrypts the separate header (uPSK); ChaCha opens the whole
  // packet into `out`. `out` must not overlap `packet` and needs packet.size() bytes.
  Udp2022Status open_response_header(std::span<const uint8_t> packet, std::span<uint8_t> out,
                                     Udp2022Header& header);
  // Phase 2: opens the body with `key` (the cache of header.session_id, the server session),
  // checks type 1, the timestamp against `now` and the layout.
  Udp2022Status open_response_body(const Udp2022Header& header, Udp2022SessionKey& key, int64_t now,
                                   Udp2022Response& response);

  void set_random_source(Udp2022RandomFn fn) { random_ = fn; }

 private:
  const Method2022* method_;
  bool valid_ = false;
  std::vector<std::vector<uint8_t>> keys_;
  std::vector<std::array<uint8_t, kUdp2022EihLen>> eih_hashes_;  // BLAKE3(next key)[0..16]
  std::vector<AesBlock> eih_enc_;                                // one per iPSK
  AesBlock header_enc_;                                          // iPSK1, or the uPSK
  AesBlock header_dec_;                                          // uPSK (responses)
  std::optional<Aead> xchacha_;                                  // ChaCha: keyed with the PSK
  Udp2022RandomFn random_;
};

// A SIP023 user: a name for logs and its user PSK (uPSK).
struct Udp2022User {
  std::string name;
  std::vector<uint8_t> key;
};

class Udp2022Server {
 public:
  // Without users: `psk` keys everything. With users (AES methods only): `psk` is the server's
  // iPSK, every request must carry one identity header naming a user by BLAKE3(uPSK)[0..16], and
  // that user's uPSK keys the request body and every response of the session.
  // `users_only`: identity headers even with no users (then every request is UnknownUser): a
  // port whose only keys are its users (users_url), never the PSK alone.
  Udp2022Server(const Method2022& method, std::span<const uint8_t> psk,
                std::span<const Udp2022User> users = {}, bool users_only = false);
  ~Udp2022Server();
  Udp2022Server(const Udp2022Server&) = delete;
  Udp2022Server& operator=(const Udp2022Server&) = delete;

  // False (with error()) if a key has the wrong size, users were given for ChaCha, two users share
  // a key, or a cipher context could not be made.
  bool valid() const { return valid_; }
  const std::string& error() const { return error_; }
  const Method2022& method() const { return *method_; }
  size_t user_count() const { return users_.size(); }
  std::string_view user_name(size_t user) const;
  // The PSK that keys bodies for `user` (kUdp2022NoUser: the single PSK).
  std::span<const uint8_t> body_key(size_t user) const;

  // Phase 1 for a request: AES decrypts the separate header (and, with users, the identity
  // header: UnknownUser if it names nobody); ChaCha opens the whole packet into `out`.
  // `out` must not overlap `packet` and needs packet.size() bytes.
  Udp2022Status open_request_header(std::span<const uint8_t> packet, std::span<uint8_t> out,
                                    Udp2022Header& header);
  // Phase 2: opens the body with `key` (the cache of the client session header.session_id; keyed
  // here for the user's PSK), checks type 0, the timestamp against `now` and the layout.
  Udp2022Status open_request_body(const Udp2022Header& header, Udp2022SessionKey& key, int64_t now,
                                  Udp2022Request& request);

  size_t response_size(size_t address_len, size_t padding, size_t payload_len) const;
  size_t response_payload_offset(size_t address_len, size_t padding) const;
  // Seals one response for `user`'s session (the value open_request reported; kUdp2022NoUser
  // without users): the separate header is encrypted with that user's PSK, no identity header.
  // `key` is the cache for server_session_id. `address` is the reply's source address header.
  // Same buffer rules and result as Udp2022Client::seal_request.
  size_t seal_response(Udp2022SessionKey& key, size_t user, uint64_t server_session_id,
                       uint64_t packet_id, uint64_t client_session_id,
                       std::span<const uint8_t> address, size_t padding,
                       std::span<const uint8_t> payload, int64_t now, std::span<uint8_t> out);

  void set_random_source(Udp2022RandomFn fn) { random_ = fn; }

 private:
  struct UserEntry {
    std::string name;
    std::vector<uint8_t> key;
    AesBlock header_enc;  // responses' separate header
  };
  struct HashEntry {
    std::array<uint8_t, kUdp2022EihLen> hash;
    size_t user;
  };

  bool set_error(std::string msg);

  const Method2022* method_;
  bool valid_ = false;
  std::string error_;
  std::vector<uint8_t> psk_;
  std::vector<UserEntry> users_;
  bool multi_user_ = false;         // identity headers: users, or users_only
  std::vector<HashEntry> by_hash_;  // sorted by hash
  AesBlock header_dec_;             // requests' separate header (psk)
  AesBlock eih_dec_;                // users: identity header (psk = iPSK)
  AesBlock header_enc_;             // responses without users (psk)
  std::optional<Aead> xchacha_;
  Udp2022RandomFn random_;
};

}  // namespace ss
