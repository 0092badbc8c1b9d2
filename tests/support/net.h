#pragma once
// Loopback networking helpers for integration tests: free ports, readiness checks, blocking
// socket I/O with deadlines, threaded TCP and UDP target servers, a SOCKS5 client (CONNECT and
// UDP ASSOCIATE) and SHA-256.
// Everything binds 127.0.0.1 or ::1 on port 0; nothing talks to the internet. All sockets are
// owned by RAII objects and closed at scope exit.

#include <openssl/evp.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ss::test {

using Bytes = std::vector<uint8_t>;
using Millis = std::chrono::milliseconds;

// Thrown by the socket helpers: connection errors, unexpected EOF, deadline exceeded.
class NetError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// ---- SHA-256 (OpenSSL EVP) ----

using Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::span<const uint8_t> data);
  Digest finish();  // once

 private:
  EVP_MD_CTX* ctx_;
};

Digest sha256(std::span<const uint8_t> data);
std::string to_hex(std::span<const uint8_t> data);
inline std::string sha256_hex(std::span<const uint8_t> data) {
  return to_hex(sha256(data));
}

// ---- random data ----

// Fast non-cryptographic generator (splitmix64), seeded from std::random_device by default.
class RandomBytes {
 public:
  RandomBytes();
  explicit RandomBytes(uint64_t seed) : state_(seed) {}
  void fill(std::span<uint8_t> out);
  Bytes take(size_t n);

 private:
  uint64_t next();
  uint64_t state_;
};

Bytes random_bytes(size_t n);
// A printable random string (letters and digits), e.g. for passwords.
std::string random_token(size_t n);

// ---- sockets ----

class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() { reset(); }
  Socket(Socket&& o) noexcept : fd_(o.release()) {}
  Socket& operator=(Socket&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.release();
    }
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset();
  // shutdown(SHUT_WR): sends FIN, reading stays possible.
  void shutdown_write();
  // Closes with SO_LINGER {on, 0}: the kernel sends RST instead of FIN.
  void reset_hard();

 private:
  int fd_ = -1;
};

// Picks a port that is currently free for both TCP and UDP on 127.0.0.1 (bind port 0, read the
// port, check UDP, close). Never returns the same port twice within one test process.
uint16_t pick_free_port();

// Connects to host:port (host is an IPv4 or IPv6 literal). Throws NetError on failure/timeout.
Socket connect_tcp(const std::string& host, uint16_t port, Millis timeout = Millis(5000));
// Repeats connect attempts until one succeeds (then closes it) or the timeout passes.
bool wait_until_listening(uint16_t port, Millis timeout, const std::string& host = "127.0.0.1");

// Blocking helpers with an overall deadline. They throw NetError on error, timeout or (for
// recv_exact) EOF before `n` bytes; the message says how many bytes got through.
void send_all(const Socket& s, std::span<const uint8_t> data, Millis timeout = Millis(10000));
void send_all(const Socket& s, const std::string& data, Millis timeout = Millis(10000));
Bytes recv_exact(const Socket& s, size_t n, Millis timeout = Millis(10000));
// Reads until the peer's FIN. Throws on reset, on timeout or once more than `max` bytes came.
Bytes recv_until_eof(const Socket& s, Millis timeout = Millis(10000), size_t max = 64u << 20);
// True if the peer has closed (EOF or reset) within `timeout` without sending more data;
// false if data arrived or nothing happened.
bool wait_peer_closed(const Socket& s, Millis timeout);

// Sends `out` (then FIN if `fin_after_send`) while reading exactly `expect_in` bytes, at the same
// time, so that neither direction can stall the other. Returns what was read. `idle_timeout` is
// the longest time without progress in either direction (a stall fails fast, a slow but moving
// transfer does not).
struct TransferResult {
  uint64_t received = 0;
  Digest received_sha256{};
};
TransferResult duplex_transfer(const Socket& s, std::span<const uint8_t> out, size_t expect_in,
                               Millis idle_timeout, bool fin_after_send = false);

// ---- SOCKS5 client ----

enum class AddrType : uint8_t { IPv4 = 1, Domain = 3, IPv6 = 4 };

struct Socks5Reply {
  uint8_t rep = 0xFF;
  uint8_t atyp = 0;
  Bytes bound_addr;
  uint16_t bound_port = 0;
};

struct Socks5Connection {
  Socket socket;
  // nullopt if the proxy closed the connection before a complete reply.
  std::optional<Socks5Reply> reply;
};

// Builds a request: VER=5, CMD, RSV=0, ATYP, address, port. For AddrType::Domain the host is
// sent as the name (length-prefixed); for IPv4/IPv6 it must be a literal.
Bytes socks5_request(uint8_t cmd, AddrType atyp, const std::string& host, uint16_t port);

// Connects to the proxy, sends the greeting 05 01 00 and checks the answer is 05 00, then sends
// `request` verbatim and reads the reply. Throws NetError if the greeting fails.
Socks5Connection socks5_raw(uint16_t proxy_port, std::span<const uint8_t> request,
                            Millis timeout = Millis(10000));
// CONNECT (cmd 1) to host:port.
Socks5Connection socks5_connect(uint16_t proxy_port, AddrType atyp, const std::string& host,
                                uint16_t port, Millis timeout = Millis(10000));

// ---- threaded TCP target ----

// What the target does on each accepted connection. Every connection is handled on its own
// thread and produces one ConnectionReport.
struct TargetBehavior {
  enum class Kind {
    Echo,      // echo everything back; after the client's FIN, FIN back once all is echoed
    Sink,      // read and hash until the client's FIN, then close
    Source,    // send `send_bytes` random bytes then FIN, while reading and hashing until FIN
    FinFirst,  // send `send_bytes` then FIN, and only then read and hash until the client's FIN
    Duplex,    // send `send_bytes` while reading `expect_bytes`; FIN only when both are done,
               // then read until the client's FIN (no half-close needed on the path)
    Http,      // read a request up to "\r\n\r\n", answer 200 with `http_body`, FIN
  };
  Kind kind = Kind::Echo;
  uint64_t send_bytes = 0;
  uint64_t expect_bytes = 0;
  std::string http_body;
  // Source: spread `send_bytes` evenly over this time instead of sending as fast as possible
  // (a slow stream that is still in progress when the test acts on the proxy). 0 = no pacing.
  Millis send_over{0};

  static TargetBehavior echo() { return {Kind::Echo, 0, 0, {}}; }
  static TargetBehavior sink() { return {Kind::Sink, 0, 0, {}}; }
  static TargetBehavior source(uint64_t n) { return {Kind::Source, n, 0, {}}; }
  static TargetBehavior fin_first(uint64_t n) { return {Kind::FinFirst, n, 0, {}}; }
  static TargetBehavior duplex(uint64_t send, uint64_t expect) {
    return {Kind::Duplex, send, expect, {}};
  }
  static TargetBehavior http(std::string body) { return {Kind::Http, 0, 0, std::move(body)}; }
  static TargetBehavior paced_source(uint64_t n, Millis over) {
    return {Kind::Source, n, 0, {}, over};
  }
};

struct ConnectionReport {
  uint64_t sent = 0;
  Digest sent_sha256{};
  uint64_t received = 0;
  Digest received_sha256{};
  std::string received_head;  // the first 4 KiB received (e.g. the HTTP request)
  std::string error;          // empty if the connection ended cleanly
};

class TargetServer {
 public:
  // Listens on 127.0.0.1 port 0 (and also on ::1 at the same port if `dual_stack`), or on
  // `bind_host` (an IP literal) if given.
  explicit TargetServer(TargetBehavior behavior, bool dual_stack = false,
                        const std::string& bind_host = "127.0.0.1");
  ~TargetServer();
  TargetServer(const TargetServer&) = delete;
  TargetServer& operator=(const TargetServer&) = delete;

  uint16_t port() const { return port_; }
  size_t accepted() const { return accepted_.load(); }
  // Waits until `count` connections have finished; returns all reports so far (in completion
  // order). Throws NetError on timeout.
  std::vector<ConnectionReport> wait_reports(size_t count, Millis timeout = Millis(30000));
  std::vector<ConnectionReport> reports() const;

 private:
  void accept_loop();
  void serve(int fd);

  TargetBehavior behavior_;
  std::vector<Socket> listeners_;
  uint16_t port_ = 0;
  int stop_fd_ = -1;  // eventfd, readable once stopping
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
  std::vector<ConnectionReport> reports_;
  std::atomic<size_t> accepted_{0};
};

// ---- UDP ----

// A datagram and the address it came from.
struct Datagram {
  Bytes data;
  std::string host;  // the sender's IP literal, e.g. "127.0.0.1" or "::1"
  uint16_t port = 0;
};

// A UDP socket bound to `bind_host` (an IP literal) and `port` (0 = any free port).
class UdpSocket {
 public:
  explicit UdpSocket(const std::string& bind_host = "127.0.0.1", uint16_t port = 0);

  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }
  int fd() const { return sock_.fd(); }

  // Sends one datagram (may be empty). Throws NetError if the kernel refuses it.
  void send_to(const std::string& host, uint16_t port, std::span<const uint8_t> data) const;
  // The next datagram, or nullopt if none arrives within `timeout`. An ICMP error reported on
  // the socket (e.g. port unreachable) is skipped, not thrown.
  std::optional<Datagram> recv(Millis timeout) const;

 private:
  Socket sock_;
  std::string host_;
  uint16_t port_ = 0;
};

// A threaded UDP server on `bind_host` port 0. Every datagram is handed to the handler; what it
// returns (if anything) is sent back to the sender. The default handler echoes. It records every
// sender's address, so a test can see which source address a proxy used.
class UdpTarget {
 public:
  using Handler = std::function<std::optional<Bytes>(std::span<const uint8_t>)>;
  struct Source {
    std::string host;
    uint16_t port = 0;
    size_t datagrams = 0;
  };

  explicit UdpTarget(const std::string& bind_host = "127.0.0.1", Handler handler = {});
  ~UdpTarget();
  UdpTarget(const UdpTarget&) = delete;
  UdpTarget& operator=(const UdpTarget&) = delete;

  const std::string& host() const { return socket_.host(); }
  uint16_t port() const { return socket_.port(); }
  // Datagrams received so far.
  size_t received() const;
  // Distinct sender addresses, in order of first appearance.
  std::vector<Source> sources() const;
  // Waits until `count` datagrams have been received in all; false on timeout.
  bool wait_received(size_t count, Millis timeout) const;

 private:
  void loop();

  UdpSocket socket_;
  Handler handler_;
  int stop_fd_ = -1;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  size_t received_ = 0;
  std::vector<Source> sources_;
  std::thread thread_;
};

// ---- SOCKS5 UDP (RFC 1928 section 7) ----

// One SOCKS5 UDP datagram: RSV(2) FRAG ATYP DST.ADDR DST.PORT DATA.
struct Socks5UdpPacket {
  uint8_t frag = 0;
  AddrType atyp = AddrType::IPv4;
  std::string host;  // an IP literal for IPv4/IPv6, the name for Domain
  uint16_t port = 0;
  Bytes data;
};

Bytes socks5_udp_encode(const Socks5UdpPacket& packet);
// nullopt if the datagram is not a well-formed SOCKS5 UDP datagram (short, RSV != 0, bad ATYP,
// truncated address).
std::optional<Socks5UdpPacket> socks5_udp_decode(std::span<const uint8_t> datagram);

struct Socks5UdpAssociation {
  Socket control;  // the association lasts as long as this connection
  Socks5Reply reply;
  std::string relay_host;  // BND.ADDR as an IP literal
  uint16_t relay_port = 0;
};

// Connects to the proxy and sends UDP ASSOCIATE with DST = `source_host`:`source_port`, the
// address the client will send datagrams from ("0.0.0.0", 0 if unknown). Throws NetError unless
// the reply is a success with an IPv4 or IPv6 BND address.
Socks5UdpAssociation socks5_udp_associate(uint16_t proxy_port,
                                          const std::string& source_host = "0.0.0.0",
                                          uint16_t source_port = 0, Millis timeout = Millis(10000));

}  // namespace ss::test
