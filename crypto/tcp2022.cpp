// Shadowsocks 2022 TCP streams (SIP022 §3.1, SIP023; protocol.md §2.4-2.7, §2.11).
//
// S = salt length = key length (16 for aes-128, 32 otherwise); every AEAD operation uses a 12-byte
// little-endian nonce counting from 0, one per direction; lengths and timestamps are big-endian;
// "sealed(x)" is x followed by its 16-byte tag.
//
// Request (client -> server):
//   salt[S]
//   EIH[16] per iPSK (AES only): AES-ECB(identity_subkey(iPSK_i, salt), BLAKE3(next key)[0..16]),
//           next key = iPSK_(i+1), or the uPSK for the last one
//   sealed(type 0x00 | timestamp u64 | V u16)                               nonce 0, 27 bytes
//   sealed(ATYP address port | padding length P u16 | P bytes | payload)    nonce 1, V + 16
//   then sealed(L u16), sealed(L bytes payload), ...                        nonce 2, 3, ...
// Response (server -> client):
//   salt[S]
//   sealed(type 0x01 | timestamp u64 | request salt[S] | L u16)             nonce 0
//   sealed(L bytes payload)                                                 nonce 1
//   then sealed(L u16), sealed(L bytes payload), ...                        nonce 2, 3, ...
// Keys: session subkey = BLAKE3.derive_key("shadowsocks 2022 session subkey", key || salt) where
// key is the PSK, or the uPSK of the identified user, in both directions.
//
// Rules enforced here: payload chunks of 1..0xFFFF bytes are sent (0..0xFFFF accepted; an empty
// later chunk is skipped); the server reads salt, EIH and fixed header from the first feed only;
// type must match the direction; |now - timestamp| <= 30; the server pools a request salt only
// after its fixed header authenticated and passed the time check; P <= 900 and inside the
// chunk; the variable header must carry payload or padding; the client requires the echoed
// request salt and a non-zero first response length (a server sends its header only with data).

#include "crypto/tcp2022.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstring>
#include <new>

#include "crypto/aead.h"
#include "crypto/internal.h"
#include "crypto/kdf.h"
#include "crypto/random_pool.h"

namespace ss {
namespace {

constexpr size_t kNonce = 12;
constexpr size_t kEih = 16;
constexpr size_t kRequestFixed = 1 + 8 + 2;
constexpr size_t kMaxChunk = 0xFFFF;
constexpr size_t kLengthBlock = 2 + kTagLen;
constexpr size_t kChunkOverhead = kLengthBlock + kTagLen;
constexpr size_t kMaxAddress = 1 + 1 + 255 + 2;
constexpr uint8_t kClientType = 0;
constexpr uint8_t kServerType = 1;

uint64_t system_seconds() {
  const auto d = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(d).count());
}

void put_be16(uint8_t* p, size_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put_be64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
size_t get_be16(const uint8_t* p) {
  return static_cast<size_t>(p[0]) << 8 | p[1];
}
uint64_t get_be64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

size_t chunks_for(size_t n) {
  return (n + kMaxChunk - 1) / kMaxChunk;
}

// One AES block with no chaining and no padding (the identity header).
bool aes_block(std::span<const uint8_t> key, const uint8_t* in, uint8_t* out, bool encrypt) {
  static EVP_CIPHER* const aes128 = EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr);
  static EVP_CIPHER* const aes256 = EVP_CIPHER_fetch(nullptr, "AES-256-ECB", nullptr);
  const EVP_CIPHER* cipher = key.size() == 16 ? aes128 : key.size() == 32 ? aes256 : nullptr;
  if (cipher == nullptr) return false;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  const bool ok =
      ctx != nullptr &&
      EVP_CipherInit_ex(ctx, cipher, nullptr, key.data(), nullptr, encrypt ? 1 : 0) == 1 &&
      EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
      EVP_CipherUpdate(ctx, out, &len, in, static_cast<int>(kEih)) == 1 &&
      len == static_cast<int>(kEih);
  EVP_CIPHER_CTX_free(ctx);  // cleanses the key schedule
  if (!ok) ERR_clear_error();
  return ok;
}

// What every object of one suite shares (immutable after make_2022_suite, except the pool).
struct Shared {
  const Method2022* method = nullptr;
  std::vector<std::vector<uint8_t>> client_keys;
  std::vector<std::array<uint8_t, kEih>> eih_plain;  // BLAKE3(client_keys[i + 1])[0..16]
  std::vector<uint8_t> server_psk;
  std::vector<Tcp2022User> users;
  bool multi_user = false;  // identity headers: users, or Tcp2022Options::users_only
  struct UserHash {
    std::array<uint8_t, kEih> hash;
    size_t index;
    bool operator<(const UserHash& o) const { return hash < o.hash; }
  };
  std::vector<UserHash> by_hash;  // sorted
  std::shared_ptr<SaltPool> pool;
  std::function<uint64_t()> clock;
  std::function<void(std::span<uint8_t>)> random;

  Shared() = default;
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;
  ~Shared() {
    for (auto& k : client_keys) secure_zero(k);
    secure_zero(server_psk);
    for (auto& u : users) secure_zero(u.key);
    for (auto& h : eih_plain) secure_zero(h);
    for (auto& h : by_hash) secure_zero(h.hash);
  }

  size_t salt_len() const { return method->key_len; }
  uint64_t now() const { return clock ? clock() : system_seconds(); }
  void fill_random(std::span<uint8_t> out) const {
    if (random) {
      random(out);
    } else {
      pooled_random_bytes(out);
    }
  }
  const Tcp2022User* find_user(const uint8_t* hash) const {
    UserHash probe{};
    std::memcpy(probe.hash.data(), hash, kEih);
    auto it = std::lower_bound(by_hash.begin(), by_hash.end(), probe);
    if (it == by_hash.end() || it->hash != probe.hash) return nullptr;
    return &users[it->index];
  }
};

// Keys `aead` with the session subkey of (key, salt).
bool key_session(Aead& aead, std::span<const uint8_t> key, std::span<const uint8_t> salt) {
  std::array<uint8_t, kMaxKeyLen> subkey{};
  session_subkey_2022(key, salt, {subkey.data(), key.size()});
  const bool ok = aead.set_key({subkey.data(), key.size()});
  secure_zero(subkey);
  return ok;
}

// ---- sealing ----------------------------------------------------------------------------------

class Sealer2022 : public TcpSealer {
 public:
  std::span<const uint8_t> salt() const { return {salt_.data(), sh_->salt_len()}; }

 protected:
  explicit Sealer2022(std::shared_ptr<const Shared> shared)
      : sh_(std::move(shared)), aead_(*sh_->method->aead) {
    sh_->fill_random({salt_.data(), sh_->salt_len()});
  }

  // Seals n bytes (n + tag written to out; out may equal pt) under the next nonce.
  bool seal_block(const uint8_t* pt, size_t n, uint8_t* out) {
    if (!aead_.seal(nonce_.data(), pt, n, out)) {
      ready_ = false;  // the nonce sequence is broken: nothing more may be sent
      return false;
    }
    increment_nonce(nonce_.data(), kNonce);
    return true;
  }

  // Length and payload chunks for n > 0 bytes; the bytes written, 0 on failure.
  size_t seal_chunks(const uint8_t* pt, size_t n, uint8_t* out) {
    size_t w = 0;
    for (size_t off = 0; off < n;) {
      const size_t len = std::min(n - off, kMaxChunk);
      uint8_t* chunk = out + w;
      put_be16(chunk, len);
      if (!seal_block(chunk, 2, chunk) || !seal_block(pt + off, len, chunk + kLengthBlock)) {
        return 0;
      }
      w += len + kChunkOverhead;
      off += len;
    }
    return w;
  }

  std::shared_ptr<const Shared> sh_;
  Aead aead_;
  std::array<uint8_t, kMaxSaltLen> salt_{};
  std::array<uint8_t, kNonce> nonce_{};
  bool ready_ = false;        // keyed and no failure so far
  bool header_sent_ = false;  // the first flight is out
};

class ClientSealer2022 final : public Sealer2022 {
 public:
  explicit ClientSealer2022(std::shared_ptr<const Shared> shared) : Sealer2022(std::move(shared)) {
    if (!sh_->client_keys.empty()) ready_ = key_session(aead_, sh_->client_keys.back(), salt());
  }

  size_t max_sealed_size(size_t n) const override {
    return sh_->salt_len() + kEih * sh_->eih_plain.size() + kRequestFixed + kTagLen + kMaxAddress +
           2 + kMaxPadding2022 + kTagLen + n + chunks_for(n) * kChunkOverhead;
  }

  size_t seal(const uint8_t* pt, size_t n, uint8_t* out) override {
    if (!ready_ || !header_sent_ || n == 0) return 0;
    return seal_chunks(pt, n, out);
  }

  size_t seal_request(const uint8_t* addr, size_t addr_len, const uint8_t* pt, size_t n,
                      uint8_t* out) override {
    if (!ready_ || header_sent_ || addr_len == 0 || addr_len > kMaxAddress) return 0;
    header_sent_ = true;
    const size_t s = sh_->salt_len();
    std::memcpy(out, salt_.data(), s);
    size_t w = s;

    // One identity header per iPSK.
    for (size_t i = 0; i < sh_->eih_plain.size(); ++i) {
      std::array<uint8_t, kMaxKeyLen> subkey{};
      identity_subkey_2022(sh_->client_keys[i], salt(), {subkey.data(), s});
      const bool ok = aes_block({subkey.data(), s}, sh_->eih_plain[i].data(), out + w, true);
      secure_zero(subkey);
      if (!ok) {
        ready_ = false;
        return 0;
      }
      w += kEih;
    }

    size_t padding = 0;
    if (n < kMaxPadding2022) {
      uint8_t r[2];
      sh_->fill_random(r);
      const size_t draw = get_be16(r);
      padding = n == 0 ? 1 + draw % kMaxPadding2022 : draw % (kMaxPadding2022 + 1);
    }
    const size_t first = std::min(n, kMaxChunk - addr_len - 2 - padding);
    const size_t var_len = addr_len + 2 + padding + first;

    uint8_t* fixed = out + w;
    fixed[0] = kClientType;
    put_be64(fixed + 1, sh_->now());
    put_be16(fixed + 9, var_len);
    if (!seal_block(fixed, kRequestFixed, fixed)) return 0;
    w += kRequestFixed + kTagLen;

    uint8_t* var = out + w;
    std::memcpy(var, addr, addr_len);
    put_be16(var + addr_len, padding);
    std::memset(var + addr_len + 2, 0, padding);
    if (first > 0) std::memcpy(var + addr_len + 2 + padding, pt, first);
    if (!seal_block(var, var_len, var)) return 0;
    w += var_len + kTagLen;

    if (first < n) {
      const size_t more = seal_chunks(pt + first, n - first, out + w);
      if (more == 0) return 0;
      w += more;
    }
    return w;
  }
};

// ---- opening ----------------------------------------------------------------------------------

class Opener2022 : public TcpOpener {
 public:
  size_t max_output(size_t n) const override {
    // Every released plaintext byte comes from a distinct ciphertext byte held or fed.
    return n + buffered();
  }
  size_t buffered() const override { return partial_len_; }
  bool authenticated() const override { return authenticated_; }
  std::string_view failure() const override { return failure_; }

 protected:
  enum class State : uint8_t { Salt, Header, Request, Length, Payload, Failed };

  explicit Opener2022(std::shared_ptr<const Shared> shared)
      : sh_(std::move(shared)), aead_(*sh_->method->aead) {}

  Result error(std::string_view reason, size_t produced) {
    state_ = State::Failed;
    failure_ = reason;
    partial_.reset();  // a failed stream may be kept open a long time (probe resistance)
    partial_len_ = 0;
    return {DecryptStatus::Error, produced};
  }
  Result error_clock(std::string_view peer, uint64_t ts, uint64_t now, size_t produced) {
    const bool ahead = ts > now;
    const uint64_t diff = ahead ? ts - now : now - ts;
    char* p = failure_buf_;
    char* end = failure_buf_ + sizeof failure_buf_;
    auto put = [&](std::string_view s) {
      const size_t k = std::min(s.size(), static_cast<size_t>(end - p));
      std::memcpy(p, s.data(), k);
      p += k;
    };
    put(peer);
    put(" clock ");
    p = std::to_chars(p, end, diff).ptr;
    put(ahead ? " s ahead of ours" : " s behind ours");
    error({}, produced);
    failure_ = {failure_buf_, static_cast<size_t>(p - failure_buf_)};
    return {DecryptStatus::Error, produced};
  }
  static bool in_window(uint64_t ts, uint64_t now) {
    const uint64_t diff = ts > now ? ts - now : now - ts;
    return diff <= static_cast<uint64_t>(kMaxTimeDiff2022);
  }

  bool open_block(const uint8_t* ct, size_t n, uint8_t* out) {
    if (!aead_.open(nonce_.data(), ct, n, out)) return false;
    increment_nonce(nonce_.data(), kNonce);
    return true;
  }

  // The `need`-byte block at in[pos], in place or, once completed, from partial_; nullptr while
  // incomplete (everything buffered) or when the buffer cannot be allocated (then state_ is
  // Failed).
  const uint8_t* take_block(const uint8_t* in, size_t n, size_t& pos, size_t need) {
    const uint8_t* block =
        detail::take_block(partial_, partial_len_, kMaxChunk + kTagLen, in, n, pos, need);
    if (block == nullptr && !partial_) error("out of memory", 0);
    return block;
  }

  // Length and payload chunks from in[pos..n); the subclasses handle their headers first.
  Result run_chunks(const uint8_t* in, size_t n, size_t pos, uint8_t* out, size_t produced) {
    while (pos < n && (state_ == State::Length || state_ == State::Payload)) {
      const bool is_length = state_ == State::Length;
      const uint8_t* block =
          take_block(in, n, pos, is_length ? kLengthBlock : payload_len_ + kTagLen);
      if (block == nullptr) break;
      if (is_length) {
        uint8_t len[2];
        if (!open_block(block, kLengthBlock, len)) return error("bad tag", produced);
        payload_len_ = get_be16(len);
        state_ = State::Payload;
      } else {
        if (!open_block(block, payload_len_ + kTagLen, out + produced)) {
          return error("bad tag", produced);
        }
        produced += payload_len_;  // 0 for an empty chunk: skipped
        state_ = State::Length;
      }
    }
    if (state_ == State::Failed) return {DecryptStatus::Error, produced};
    return {produced > 0 ? DecryptStatus::Ok : DecryptStatus::NeedMore, produced};
  }

  std::shared_ptr<const Shared> sh_;
  Aead aead_;
  std::array<uint8_t, kNonce> nonce_{};
  State state_ = State::Salt;
  bool authenticated_ = false;
  size_t payload_len_ = 0;  // of the chunk being read (or of the request's variable header)
  std::unique_ptr<uint8_t[]> partial_;
  size_t partial_len_ = 0;
  std::string_view failure_;
  char failure_buf_[64] = {};
};

class ClientOpener2022 final : public Opener2022 {
 public:
  ClientOpener2022(std::shared_ptr<const Shared> shared, const TcpSealer& request)
      : Opener2022(std::move(shared)) {
    const auto* sealer = dynamic_cast<const ClientSealer2022*>(&request);
    if (sealer != nullptr) {
      std::memcpy(request_salt_.data(), sealer->salt().data(), sh_->salt_len());
      usable_ = !sh_->client_keys.empty();
    }
  }

  size_t buffered() const override {
    return state_ == State::Salt ? salt_filled_ : Opener2022::buffered();
  }

  Result feed(const uint8_t* in, size_t n, uint8_t* out) override {
    if (state_ == State::Failed) return {DecryptStatus::Error, 0};
    if (!usable_) return error("no client key or foreign request sealer", 0);
    const size_t s = sh_->salt_len();
    size_t pos = 0;
    if (state_ == State::Salt) {
      const size_t take = std::min(s - salt_filled_, n);
      std::memcpy(salt_.data() + salt_filled_, in, take);
      salt_filled_ += take;
      pos = take;
      if (salt_filled_ < s) return {DecryptStatus::NeedMore, 0};
      if (!key_session(aead_, sh_->client_keys.back(), {salt_.data(), s})) {
        return error("library failure", 0);
      }
      state_ = State::Header;
    }
    if (state_ == State::Header) {
      const size_t need = 1 + 8 + s + 2 + kTagLen;
      const uint8_t* block = take_block(in, n, pos, need);
      if (block == nullptr) {
        if (state_ == State::Failed) return {DecryptStatus::Error, 0};
        return {DecryptStatus::NeedMore, 0};
      }
      uint8_t hdr[1 + 8 + kMaxSaltLen + 2];
      if (!open_block(block, need, hdr)) return error("bad tag", 0);
      if (hdr[0] != kServerType) return error("wrong header type", 0);
      const uint64_t ts = get_be64(hdr + 1);
      const uint64_t now = sh_->now();
      if (!in_window(ts, now)) return error_clock("server", ts, now, 0);
      if (sodium_memcmp(hdr + 9, request_salt_.data(), s) != 0) {
        return error("wrong request salt", 0);
      }
      payload_len_ = get_be16(hdr + 9 + s);
      if (payload_len_ == 0) return error("zero-length first payload", 0);
      authenticated_ = true;
      state_ = State::Payload;
    }
    return run_chunks(in, n, pos, out, 0);
  }

 private:
  std::array<uint8_t, kMaxSaltLen> request_salt_{};
  std::array<uint8_t, kMaxSaltLen> salt_{};
  size_t salt_filled_ = 0;
  bool usable_ = false;
};

class ServerOpener2022 final : public Opener2022 {
 public:
  explicit ServerOpener2022(std::shared_ptr<const Shared> shared) : Opener2022(std::move(shared)) {}

  std::string_view user() const override {
    return user_ != nullptr ? std::string_view(user_->name) : std::string_view();
  }

  // For the response: set once the request header was read.
  bool request_read() const { return request_read_ && state_ != State::Failed; }
  std::span<const uint8_t> salt() const { return {salt_.data(), sh_->salt_len()}; }
  std::span<const uint8_t> key() const {
    return user_ != nullptr ? std::span<const uint8_t>(user_->key)
                            : std::span<const uint8_t>(sh_->server_psk);
  }

  Result feed(const uint8_t* in, size_t n, uint8_t* out) override {
    if (state_ == State::Failed) return {DecryptStatus::Error, 0};
    if (n == 0) return {DecryptStatus::NeedMore, 0};
    size_t pos = 0;
    size_t produced = 0;
    if (state_ == State::Salt) {
      if (sh_->server_psk.empty()) return error("no server key", 0);
      const size_t s = sh_->salt_len();
      const size_t eih = sh_->multi_user ? kEih : 0;
      // One read: salt, identity header and fixed header arrive together or not at all.
      if (n < s + eih + kRequestFixed + kTagLen) return error("header too short", 0);
      std::memcpy(salt_.data(), in, s);
      pos = s;
      if (eih > 0) {
        std::array<uint8_t, kMaxKeyLen> subkey{};
        identity_subkey_2022(sh_->server_psk, salt(), {subkey.data(), s});
        uint8_t hash[kEih];
        const bool ok = aes_block({subkey.data(), s}, in + pos, hash, false);
        secure_zero(subkey);
        if (!ok) return error("library failure", 0);
        user_ = sh_->find_user(hash);
        secure_zero(hash);
        if (user_ == nullptr) return error("unknown user", 0);
        pos += kEih;
      }
      if (!key_session(aead_, key(), salt())) return error("library failure", 0);
      uint8_t hdr[kRequestFixed];
      if (!open_block(in + pos, kRequestFixed + kTagLen, hdr)) return error("bad tag", 0);
      pos += kRequestFixed + kTagLen;
      if (hdr[0] != kClientType) return error("wrong header type", 0);
      const uint64_t ts = get_be64(hdr + 1);
      const uint64_t now = sh_->now();
      if (!in_window(ts, now)) return error_clock("client", ts, now, 0);
      // Only now, with the header authenticated and fresh, may the salt enter the pool.
      if (!sh_->pool->check_and_insert(salt(), now)) return error("replayed salt", 0);
      authenticated_ = true;
      payload_len_ = get_be16(hdr + 9);
      state_ = State::Request;
    }
    if (state_ == State::Request) {
      const size_t v = payload_len_;
      const uint8_t* block = take_block(in, n, pos, v + kTagLen);
      if (block == nullptr) {
        if (state_ == State::Failed) return {DecryptStatus::Error, 0};
        return {DecryptStatus::NeedMore, 0};
      }
      uint8_t* p = out;  // plaintext V <= the V + 16 input bytes it came from
      if (!open_block(block, v + kTagLen, p)) return error("bad tag", 0);
      const std::string_view bad = parse_request(p, v, produced);
      if (!bad.empty()) {
        secure_zero({p, v});
        return error(bad, 0);
      }
      request_read_ = true;
      state_ = State::Length;
    }
    return run_chunks(in, n, pos, out, produced);
  }

 private:
  // Checks the variable header at p[0..v) and compacts it in place to [address][payload];
  // `produced` receives that length. Returns a failure reason, empty if valid.
  static std::string_view parse_request(uint8_t* p, size_t v, size_t& produced) {
    if (v == 0) return "address header incomplete";
    size_t addr_len;
    switch (p[0]) {
      case 0x01:
        addr_len = 1 + 4 + 2;
        break;
      case 0x04:
        addr_len = 1 + 16 + 2;
        break;
      case 0x03:
        if (v < 2) return "address header incomplete";
        if (p[1] == 0) return "empty domain name";
        addr_len = 1 + 1 + p[1] + 2;
        break;
      default:
        return "bad address type";
    }
    if (addr_len + 2 > v) return "address header incomplete";
    const size_t padding = get_be16(p + addr_len);
    if (padding > kMaxPadding2022) return "padding longer than 900 bytes";
    if (addr_len + 2 + padding > v) return "padding exceeds the header chunk";
    const size_t payload = v - addr_len - 2 - padding;
    if (payload == 0 && padding == 0) return "no payload and no padding";
    std::memmove(p + addr_len, p + addr_len + 2 + padding, payload);
    produced = addr_len + payload;
    return {};
  }

  std::array<uint8_t, kMaxSaltLen> salt_{};
  const Tcp2022User* user_ = nullptr;
  bool request_read_ = false;
};

class ServerSealer2022 final : public Sealer2022 {
 public:
  ServerSealer2022(std::shared_ptr<const Shared> shared, const TcpOpener& request)
      : Sealer2022(std::move(shared)) {
    const auto* opener = dynamic_cast<const ServerOpener2022*>(&request);
    if (opener == nullptr || !opener->request_read()) return;  // not ready: seal() fails
    std::memcpy(request_salt_.data(), opener->salt().data(), sh_->salt_len());
    ready_ = key_session(aead_, opener->key(), salt());
  }

  size_t max_sealed_size(size_t n) const override {
    const size_t s = sh_->salt_len();
    return s + 1 + 8 + s + 2 + kTagLen + n + chunks_for(n == 0 ? 1 : n) * kChunkOverhead;
  }

  size_t seal(const uint8_t* pt, size_t n, uint8_t* out) override {
    if (!ready_ || n == 0) return 0;
    if (header_sent_) return seal_chunks(pt, n, out);
    header_sent_ = true;
    const size_t s = sh_->salt_len();
    std::memcpy(out, salt_.data(), s);
    size_t w = s;
    uint8_t* hdr = out + w;
    const size_t first = std::min(n, kMaxChunk);
    hdr[0] = kServerType;
    put_be64(hdr + 1, sh_->now());
    std::memcpy(hdr + 9, request_salt_.data(), s);
    put_be16(hdr + 9 + s, first);
    if (!seal_block(hdr, 1 + 8 + s + 2, hdr)) return 0;
    w += 1 + 8 + s + 2 + kTagLen;
    if (!seal_block(pt, first, out + w)) return 0;
    w += first + kTagLen;
    if (first < n) {
      const size_t more = seal_chunks(pt + first, n - first, out + w);
      if (more == 0) return 0;
      w += more;
    }
    return w;
  }

  // The server never sends a request.
  size_t seal_request(const uint8_t*, size_t, const uint8_t*, size_t, uint8_t*) override {
    return 0;
  }

 private:
  std::array<uint8_t, kMaxSaltLen> request_salt_{};
};

class Suite2022 final : public TcpCipherSuite {
 public:
  explicit Suite2022(std::shared_ptr<const Shared> shared) : sh_(std::move(shared)) {}
  std::unique_ptr<TcpSealer> client_sealer() const override {
    return std::make_unique<ClientSealer2022>(sh_);
  }
  std::unique_ptr<TcpOpener> client_opener(const TcpSealer& request) const override {
    return std::make_unique<ClientOpener2022>(sh_, request);
  }
  std::unique_ptr<TcpOpener> server_opener() const override {
    return std::make_unique<ServerOpener2022>(sh_);
  }
  std::unique_ptr<TcpSealer> server_sealer(const TcpOpener& request) const override {
    return std::make_unique<ServerSealer2022>(sh_, request);
  }

 private:
  std::shared_ptr<const Shared> sh_;
};

bool is_aes(const Method2022& m) {
  return m.kind == Kind2022::Aes128Gcm || m.kind == Kind2022::Aes256Gcm;
}

std::unique_ptr<TcpCipherSuite> fail(std::string* error, std::string text) {
  if (error != nullptr) *error = std::move(text);
  return nullptr;
}

}  // namespace

std::unique_ptr<TcpCipherSuite> make_2022_suite(Tcp2022Options options, std::string* error) {
  auto sh = std::make_shared<Shared>();
  // Moved in first, so every key is wiped by ~Shared whatever happens below.
  sh->method = options.method;
  sh->client_keys = std::move(options.client_keys);
  sh->server_psk = std::move(options.server_psk);
  sh->users = std::move(options.users);
  sh->multi_user = !sh->users.empty() || options.users_only;
  if (sh->method == nullptr) return fail(error, "2022 suite: no method");
  const Method2022& m = *sh->method;
  const std::string name(m.name);
  const std::string size = std::to_string(m.key_len) + " bytes";
  if (m.aead == nullptr || m.aead->nonce_len != kNonce || m.key_len > kMaxKeyLen) {
    return fail(error, name + ": not usable for TCP");
  }
  if (sh->client_keys.empty() && sh->server_psk.empty()) return fail(error, name + ": no key");
  for (size_t i = 0; i < sh->client_keys.size(); ++i) {
    if (sh->client_keys[i].size() != m.key_len) {
      return fail(error, name + ": key " + std::to_string(i + 1) + " is not " + size);
    }
  }
  if (!sh->server_psk.empty() && sh->server_psk.size() != m.key_len) {
    return fail(error, name + ": the server key is not " + size);
  }
  if ((sh->client_keys.size() > 1 || sh->multi_user) && !is_aes(m)) {
    return fail(error, name + ": identity headers (iPSK:uPSK passwords, users) need an AES method");
  }
  if (sh->multi_user && sh->server_psk.empty()) {
    return fail(error, name + ": users need the server's identity key (iPSK)");
  }
  for (size_t i = 0; i + 1 < sh->client_keys.size(); ++i) {
    std::array<uint8_t, kEih> h{};
    blake3_hash(sh->client_keys[i + 1], h);
    sh->eih_plain.push_back(h);
    secure_zero(h);
  }
  for (size_t i = 0; i < sh->users.size(); ++i) {
    const Tcp2022User& u = sh->users[i];
    if (u.key.size() != m.key_len) {
      return fail(error, name + ": the key of user '" + u.name + "' is not " + size);
    }
    Shared::UserHash e{};
    blake3_hash(u.key, e.hash);
    e.index = i;
    sh->by_hash.push_back(e);
  }
  std::sort(sh->by_hash.begin(), sh->by_hash.end());
  for (size_t i = 1; i < sh->by_hash.size(); ++i) {
    if (sh->by_hash[i].hash == sh->by_hash[i - 1].hash) {
      return fail(error, name + ": users '" + sh->users[sh->by_hash[i - 1].index].name + "' and '" +
                             sh->users[sh->by_hash[i].index].name + "' have the same key");
    }
  }
  sh->pool = options.salt_pool ? std::move(options.salt_pool) : std::make_shared<SaltPool>();
  sh->clock = std::move(options.clock);
  sh->random = std::move(options.random);
  return std::make_unique<Suite2022>(std::move(sh));
}

}  // namespace ss
