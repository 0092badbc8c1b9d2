#include "tests/support/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <set>
#include <tuple>

namespace ss::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text(const std::string& what, int err) {
  return what + ": " + std::strerror(err);
}

// Milliseconds left until `deadline` for poll(), at least 0.
int poll_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return static_cast<int>(std::min<long long>(left + 1, 1 << 30));
}

// Waits for `events` on fd until the deadline. Returns the revents, 0 on timeout.
short wait_fd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, poll_ms(deadline));
    if (r > 0) return p.revents;
    if (r == 0) return 0;
    if (errno != EINTR) throw NetError(errno_text("poll", errno));
  }
}

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_INET;
};

Endpoint make_endpoint(const std::string& host, uint16_t port) {
  Endpoint ep;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ep.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ep.addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    ep.len = sizeof(sockaddr_in);
    ep.family = AF_INET;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    ep.len = sizeof(sockaddr_in6);
    ep.family = AF_INET6;
  } else {
    throw NetError("not an IP literal: '" + host + "'");
  }
  return ep;
}

Socket make_socket(int family, int type) {
  const int fd = ::socket(family, type | SOCK_CLOEXEC, 0);
  if (fd < 0) throw NetError(errno_text("socket", errno));
  return Socket(fd);
}

void set_nonblocking(int fd, bool on) {
  const int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK));
}

// Reads up to n bytes into buf before the deadline. Returns the count; less than n only on EOF
// (or on reset when `reset_is_eof`). Throws on timeout and other errors.
size_t read_exact_or_eof(int fd, uint8_t* buf, size_t n, Clock::time_point deadline,
                         bool reset_is_eof = false) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::recv(fd, buf + got, n - got, MSG_DONTWAIT);
    if (r > 0) {
      got += static_cast<size_t>(r);
      continue;
    }
    if (r == 0) return got;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (wait_fd(fd, POLLIN, deadline) == 0) {
        throw NetError("timeout after receiving " + std::to_string(got) + " of " +
                       std::to_string(n) + " bytes");
      }
      continue;
    }
    if (reset_is_eof && (errno == ECONNRESET || errno == EPIPE)) return got;
    throw NetError(errno_text(
        "recv after " + std::to_string(got) + " of " + std::to_string(n) + " bytes", errno));
  }
  return got;
}

// Appends ATYP, the address and the port (RFC 1928 section 5) to `out`.
void append_socks5_address(Bytes& out, AddrType atyp, const std::string& host, uint16_t port) {
  out.push_back(static_cast<uint8_t>(atyp));
  if (atyp == AddrType::IPv4) {
    uint8_t a[4];
    if (::inet_pton(AF_INET, host.c_str(), a) != 1) throw NetError("bad IPv4 literal " + host);
    out.insert(out.end(), a, a + 4);
  } else if (atyp == AddrType::IPv6) {
    uint8_t a[16];
    if (::inet_pton(AF_INET6, host.c_str(), a) != 1) throw NetError("bad IPv6 literal " + host);
    out.insert(out.end(), a, a + 16);
  } else {
    if (host.size() > 255) throw NetError("domain name too long");
    out.push_back(static_cast<uint8_t>(host.size()));
    out.insert(out.end(), host.begin(), host.end());
  }
  out.push_back(static_cast<uint8_t>(port >> 8));
  out.push_back(static_cast<uint8_t>(port & 0xFF));
}

// The IP literal and port of a sockaddr (IPv4 or IPv6).
std::pair<std::string, uint16_t> describe(const sockaddr_storage& ss) {
  char text[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    return {text, ntohs(v4->sin_port)};
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
  return {text, ntohs(v6->sin6_port)};
}

std::mutex& port_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

// ---- SHA-256 ----

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(ctx_);
    throw std::runtime_error("EVP sha256 init failed");
  }
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(ctx_);
}

void Sha256::update(std::span<const uint8_t> data) {
  if (!data.empty() && EVP_DigestUpdate(ctx_, data.data(), data.size()) != 1) {
    throw std::runtime_error("EVP_DigestUpdate failed");
  }
}

Digest Sha256::finish() {
  Digest d{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_, d.data(), &len) != 1 || len != d.size()) {
    throw std::runtime_error("EVP_DigestFinal_ex failed");
  }
  return d;
}

Digest sha256(std::span<const uint8_t> data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

std::string to_hex(std::span<const uint8_t> data) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (uint8_t b : data) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// ---- random data ----

RandomBytes::RandomBytes() {
  std::random_device rd;
  state_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

uint64_t RandomBytes::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void RandomBytes::fill(std::span<uint8_t> out) {
  size_t i = 0;
  for (; i + 8 <= out.size(); i += 8) {
    const uint64_t v = next();
    std::memcpy(out.data() + i, &v, 8);
  }
  if (i < out.size()) {
    const uint64_t v = next();
    std::memcpy(out.data() + i, &v, out.size() - i);
  }
}

Bytes RandomBytes::take(size_t n) {
  Bytes b(n);
  fill(b);
  return b;
}

Bytes random_bytes(size_t n) {
  return RandomBytes().take(n);
}

std::string random_token(size_t n) {
  static constexpr char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  RandomBytes rng;
  Bytes raw = rng.take(n);
  std::string out;
  for (uint8_t b : raw) out += kAlphabet[b % (sizeof(kAlphabet) - 1)];
  return out;
}

// ---- sockets ----

void Socket::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void Socket::shutdown_write() {
  if (::shutdown(fd_, SHUT_WR) != 0) throw NetError(errno_text("shutdown(SHUT_WR)", errno));
}

void Socket::reset_hard() {
  if (fd_ < 0) return;
  const linger lin{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lin, sizeof lin);
  reset();
}

uint16_t pick_free_port() {
  static std::set<uint16_t> handed_out;
  for (int attempt = 0; attempt < 200; ++attempt) {
    Socket tcp = make_socket(AF_INET, SOCK_STREAM);
    Endpoint ep = make_endpoint("127.0.0.1", 0);
    if (::bind(tcp.fd(), reinterpret_cast<sockaddr*>(&ep.addr), ep.len) != 0) {
      throw NetError(errno_text("bind 127.0.0.1:0", errno));
    }
    sockaddr_in bound{};
    socklen_t len = sizeof bound;
    ::getsockname(tcp.fd(), reinterpret_cast<sockaddr*>(&bound), &len);
    const uint16_t port = ntohs(bound.sin_port);
    Socket udp = make_socket(AF_INET, SOCK_DGRAM);
    Endpoint uep = make_endpoint("127.0.0.1", port);
    if (::bind(udp.fd(), reinterpret_cast<sockaddr*>(&uep.addr), uep.len) != 0) continue;
    std::lock_guard lock(port_mutex());
    if (handed_out.insert(port).second) return port;
  }
  throw NetError("no free port found");
}

Socket connect_tcp(const std::string& host, uint16_t port, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  Endpoint ep = make_endpoint(host, port);
  Socket s = make_socket(ep.family, SOCK_STREAM);
  set_nonblocking(s.fd(), true);
  const std::string where = host + ":" + std::to_string(port);
  if (::connect(s.fd(), reinterpret_cast<sockaddr*>(&ep.addr), ep.len) != 0) {
    if (errno != EINPROGRESS) throw NetError(errno_text("connect " + where, errno));
    if (wait_fd(s.fd(), POLLOUT, deadline) == 0) throw NetError("connect " + where + ": timeout");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) throw NetError(errno_text("connect " + where, err));
  }
  set_nonblocking(s.fd(), false);
  int one = 1;
  ::setsockopt(s.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

bool wait_until_listening(uint16_t port, Millis timeout, const std::string& host) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    try {
      connect_tcp(host, port, Millis(500));
      return true;
    } catch (const NetError&) {
    }
    if (Clock::now() >= deadline) return false;
    // Nothing to wait on for "someone started listening": retry connect attempts.
    std::this_thread::sleep_for(Millis(10));
  }
}

void send_all(const Socket& s, std::span<const uint8_t> data, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t r =
        ::send(s.fd(), data.data() + done, data.size() - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r > 0) {
      done += static_cast<size_t>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (wait_fd(s.fd(), POLLOUT, deadline) == 0) {
        throw NetError("send timeout after " + std::to_string(done) + " of " +
                       std::to_string(data.size()) + " bytes");
      }
      continue;
    }
    throw NetError(errno_text("send after " + std::to_string(done) + " bytes", errno));
  }
}

void send_all(const Socket& s, const std::string& data, Millis timeout) {
  send_all(s, std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()), timeout);
}

Bytes recv_exact(const Socket& s, size_t n, Millis timeout) {
  Bytes buf(n);
  const size_t got = read_exact_or_eof(s.fd(), buf.data(), n, Clock::now() + timeout);
  if (got < n) {
    throw NetError("EOF after " + std::to_string(got) + " of " + std::to_string(n) + " bytes");
  }
  return buf;
}

Bytes recv_until_eof(const Socket& s, Millis timeout, size_t max) {
  const auto deadline = Clock::now() + timeout;
  Bytes out;
  uint8_t buf[65536];
  for (;;) {
    const ssize_t r = ::recv(s.fd(), buf, sizeof buf, MSG_DONTWAIT);
    if (r > 0) {
      out.insert(out.end(), buf, buf + r);
      if (out.size() > max) throw NetError("more than " + std::to_string(max) + " bytes");
      continue;
    }
    if (r == 0) return out;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (wait_fd(s.fd(), POLLIN, deadline) == 0) {
        throw NetError("no EOF within the timeout (" + std::to_string(out.size()) +
                       " bytes received)");
      }
      continue;
    }
    throw NetError(errno_text("recv after " + std::to_string(out.size()) + " bytes", errno));
  }
}

bool wait_peer_closed(const Socket& s, Millis timeout) {
  if (wait_fd(s.fd(), POLLIN, Clock::now() + timeout) == 0) return false;
  uint8_t b;
  const ssize_t r = ::recv(s.fd(), &b, 1, MSG_DONTWAIT | MSG_PEEK);
  if (r == 0) return true;
  if (r < 0 && (errno == ECONNRESET || errno == EPIPE)) return true;
  return false;
}

TransferResult duplex_transfer(const Socket& s, std::span<const uint8_t> out, size_t expect_in,
                               Millis idle_timeout, bool fin_after_send) {
  auto deadline = Clock::now() + idle_timeout;
  TransferResult result;
  Sha256 h;
  size_t sent = 0;
  bool fin_sent = !fin_after_send;
  std::vector<uint8_t> buf(65536);
  while (sent < out.size() || !fin_sent || result.received < expect_in) {
    if (sent == out.size() && !fin_sent) {
      if (::shutdown(s.fd(), SHUT_WR) != 0) throw NetError(errno_text("shutdown", errno));
      fin_sent = true;
      continue;
    }
    short events = 0;
    if (sent < out.size()) events |= POLLOUT;
    if (result.received < expect_in) events |= POLLIN;
    const short rev = wait_fd(s.fd(), events, deadline);
    if (rev == 0) {
      throw NetError("duplex: no progress for " + std::to_string(idle_timeout.count()) +
                     " ms: sent " + std::to_string(sent) + " of " + std::to_string(out.size()) +
                     ", received " + std::to_string(result.received) + " of " +
                     std::to_string(expect_in));
    }
    if ((rev & (POLLIN | POLLHUP | POLLERR)) && result.received < expect_in) {
      const size_t want = std::min(buf.size(), expect_in - static_cast<size_t>(result.received));
      const ssize_t r = ::recv(s.fd(), buf.data(), want, MSG_DONTWAIT);
      if (r > 0) {
        h.update(std::span(buf.data(), static_cast<size_t>(r)));
        result.received += static_cast<uint64_t>(r);
        deadline = Clock::now() + idle_timeout;
      } else if (r == 0) {
        throw NetError("duplex: EOF after receiving " + std::to_string(result.received) + " of " +
                       std::to_string(expect_in) + " bytes (sent " + std::to_string(sent) + ")");
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        throw NetError(errno_text("duplex recv", errno));
      }
    }
    if ((rev & (POLLOUT | POLLERR | POLLHUP)) && sent < out.size()) {
      const size_t chunk = std::min<size_t>(out.size() - sent, 65536);
      const ssize_t r = ::send(s.fd(), out.data() + sent, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (r > 0) {
        sent += static_cast<size_t>(r);
        deadline = Clock::now() + idle_timeout;
      } else if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        throw NetError(errno_text("duplex send after " + std::to_string(sent) + " bytes", errno));
      }
    }
  }
  result.received_sha256 = h.finish();
  return result;
}

// ---- SOCKS5 client ----

Bytes socks5_request(uint8_t cmd, AddrType atyp, const std::string& host, uint16_t port) {
  Bytes req{0x05, cmd, 0x00};
  append_socks5_address(req, atyp, host, port);
  return req;
}

Socks5Connection socks5_raw(uint16_t proxy_port, std::span<const uint8_t> request, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  Socks5Connection c;
  c.socket = connect_tcp("127.0.0.1", proxy_port, timeout);
  const uint8_t greeting[] = {0x05, 0x01, 0x00};
  send_all(c.socket, greeting, timeout);
  uint8_t method[2];
  if (read_exact_or_eof(c.socket.fd(), method, 2, deadline, true) != 2) {
    throw NetError("SOCKS5 greeting: proxy closed the connection");
  }
  if (method[0] != 0x05 || method[1] != 0x00) {
    throw NetError("SOCKS5 greeting: unexpected answer " + to_hex(method));
  }
  send_all(c.socket, request, timeout);

  uint8_t head[4];
  if (read_exact_or_eof(c.socket.fd(), head, 4, deadline, true) != 4) return c;
  if (head[0] != 0x05) throw NetError("SOCKS5 reply: bad version " + to_hex(head));
  Socks5Reply rep;
  rep.rep = head[1];
  rep.atyp = head[3];
  size_t addr_len = 0;
  if (rep.atyp == 1) {
    addr_len = 4;
  } else if (rep.atyp == 4) {
    addr_len = 16;
  } else if (rep.atyp == 3) {
    uint8_t l;
    if (read_exact_or_eof(c.socket.fd(), &l, 1, deadline, true) != 1) return c;
    addr_len = l;
  } else {
    throw NetError("SOCKS5 reply: bad ATYP " + to_hex(head));
  }
  rep.bound_addr.resize(addr_len + 2);
  if (read_exact_or_eof(c.socket.fd(), rep.bound_addr.data(), addr_len + 2, deadline, true) !=
      addr_len + 2) {
    return c;
  }
  rep.bound_port =
      static_cast<uint16_t>((rep.bound_addr[addr_len] << 8) | rep.bound_addr[addr_len + 1]);
  rep.bound_addr.resize(addr_len);
  c.reply = std::move(rep);
  return c;
}

Socks5Connection socks5_connect(uint16_t proxy_port, AddrType atyp, const std::string& host,
                                uint16_t port, Millis timeout) {
  const Bytes req = socks5_request(0x01, atyp, host, port);
  return socks5_raw(proxy_port, req, timeout);
}

// ---- threaded TCP target ----

TargetServer::TargetServer(TargetBehavior behavior, bool dual_stack, const std::string& bind_host)
    : behavior_(std::move(behavior)) {
  for (int attempt = 0;; ++attempt) {
    listeners_.clear();
    Endpoint ep = make_endpoint(bind_host, 0);
    Socket l = make_socket(ep.family, SOCK_STREAM);
    if (::bind(l.fd(), reinterpret_cast<sockaddr*>(&ep.addr), ep.len) != 0) {
      throw NetError(errno_text("bind " + bind_host + ":0", errno));
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    ::getsockname(l.fd(), reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(ep.family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    if (::listen(l.fd(), 1024) != 0) throw NetError(errno_text("listen", errno));
    listeners_.push_back(std::move(l));
    if (!dual_stack) break;
    Endpoint ep6 = make_endpoint(ep.family == AF_INET ? "::1" : "127.0.0.1", port_);
    Socket l6 = make_socket(ep6.family, SOCK_STREAM);
    int one = 1;
    if (ep6.family == AF_INET6) ::setsockopt(l6.fd(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(l6.fd(), reinterpret_cast<sockaddr*>(&ep6.addr), ep6.len) == 0 &&
        ::listen(l6.fd(), 1024) == 0) {
      listeners_.push_back(std::move(l6));
      break;
    }
    if (attempt >= 50) throw NetError("no port free on both 127.0.0.1 and ::1");
  }
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) throw NetError(errno_text("eventfd", errno));
  acceptor_ = std::thread([this] { accept_loop(); });
}

TargetServer::~TargetServer() {
  const uint64_t one = 1;
  ssize_t ignored = ::write(stop_fd_, &one, sizeof one);
  (void)ignored;
  if (acceptor_.joinable()) acceptor_.join();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
  ::close(stop_fd_);
}

void TargetServer::accept_loop() {
  for (;;) {
    std::vector<pollfd> fds;
    fds.push_back({stop_fd_, POLLIN, 0});
    for (const auto& l : listeners_) fds.push_back({l.fd(), POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) return;
    for (size_t i = 1; i < fds.size(); ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      const int fd = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) continue;
      accepted_.fetch_add(1);
      std::lock_guard lock(mu_);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }
}

void TargetServer::serve(int raw_fd) {
  using Kind = TargetBehavior::Kind;
  Socket sock(raw_fd);
  const Kind kind = behavior_.kind;
  ConnectionReport rep;
  Sha256 sent_hash;
  Sha256 recv_hash;
  RandomBytes rng;
  uint64_t to_generate = behavior_.send_bytes;
  Bytes out;
  size_t out_off = 0;
  bool fin_sent = false;
  bool read_eof = false;
  bool http_answered = false;
  constexpr size_t kChunk = 65536;
  constexpr size_t kHeadMax = 4096;
  constexpr size_t kEchoHighWater = 1 << 20;
  std::vector<uint8_t> buf(kChunk);

  // Pacing (Source with send_over): by time t after the start, at most
  // send_bytes * t / send_over bytes may have been generated.
  const bool paced = kind == Kind::Source && behavior_.send_over.count() > 0;
  const auto started = Clock::now();
  int pace_wait_ms = -1;  // poll timeout while pacing holds the next chunk back

  for (;;) {
    pace_wait_ms = -1;
    if (out_off == out.size()) {
      out.clear();
      out_off = 0;
      if (to_generate > 0) {
        uint64_t n = std::min<uint64_t>(kChunk, to_generate);
        if (paced) {
          const auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - started);
          const uint64_t total = behavior_.send_bytes;
          const uint64_t allowed = elapsed >= behavior_.send_over
                                       ? total
                                       : total * static_cast<uint64_t>(elapsed.count()) /
                                             static_cast<uint64_t>(behavior_.send_over.count());
          const uint64_t generated = total - to_generate;
          n = std::min<uint64_t>(n, allowed > generated ? allowed - generated : 0);
          if (n == 0) pace_wait_ms = 5;  // the next bytes are due in a few milliseconds
        }
        out.resize(static_cast<size_t>(n));
        rng.fill(out);
        to_generate -= n;
      }
    }
    const bool pending = out_off < out.size() || to_generate > 0;
    bool want_fin = false;
    switch (kind) {
      case Kind::Echo:
        want_fin = read_eof && !pending;
        break;
      case Kind::Sink:
        want_fin = false;
        break;
      case Kind::Source:
      case Kind::FinFirst:
        want_fin = !pending;
        break;
      case Kind::Duplex:
        want_fin = !pending && rep.received >= behavior_.expect_bytes;
        break;
      case Kind::Http:
        want_fin = http_answered && !pending;
        break;
    }
    if (want_fin && !fin_sent) {
      if (::shutdown(sock.fd(), SHUT_WR) != 0) {
        rep.error = errno_text("shutdown", errno);
        break;
      }
      fin_sent = true;
    }
    if (read_eof && (fin_sent || kind == Kind::Sink)) break;

    bool want_read = !read_eof;
    if (kind == Kind::Echo) want_read = want_read && (out.size() - out_off) < kEchoHighWater;
    if (kind == Kind::FinFirst) want_read = want_read && fin_sent;
    const bool want_write = out_off < out.size();
    short events = static_cast<short>((want_read ? POLLIN : 0) | (want_write ? POLLOUT : 0));
    if (events == 0 && pace_wait_ms < 0) {
      rep.error = "target stalled (client closed before the request was complete?)";
      break;
    }
    pollfd fds[2] = {{sock.fd(), events, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 2, pace_wait_ms) < 0) {
      if (errno == EINTR) continue;
      rep.error = errno_text("poll", errno);
      break;
    }
    if (fds[1].revents != 0) {
      rep.error = "target stopped before the connection finished";
      break;
    }
    const short rev = fds[0].revents;
    if (want_read && (rev & (POLLIN | POLLHUP | POLLERR))) {
      const ssize_t r = ::recv(sock.fd(), buf.data(), buf.size(), 0);
      if (r > 0) {
        const auto data = std::span<const uint8_t>(buf.data(), static_cast<size_t>(r));
        rep.received += data.size();
        recv_hash.update(data);
        if (rep.received_head.size() < kHeadMax) {
          const size_t take = std::min(kHeadMax - rep.received_head.size(), data.size());
          rep.received_head.append(reinterpret_cast<const char*>(data.data()), take);
        }
        if (kind == Kind::Echo) {
          out.insert(out.end(), data.begin(), data.end());
        } else if (kind == Kind::Http && !http_answered &&
                   rep.received_head.find("\r\n\r\n") != std::string::npos) {
          const std::string resp =
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
              "Content-Length: " +
              std::to_string(behavior_.http_body.size()) + "\r\nConnection: close\r\n\r\n" +
              behavior_.http_body;
          out.insert(out.end(), resp.begin(), resp.end());
          http_answered = true;
        }
      } else if (r == 0) {
        read_eof = true;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        rep.error = errno_text("recv", errno);
        break;
      }
    }
    if (want_write && (rev & (POLLOUT | POLLERR))) {
      const ssize_t r = ::send(sock.fd(), out.data() + out_off, out.size() - out_off,
                               MSG_DONTWAIT | MSG_NOSIGNAL);
      if (r > 0) {
        sent_hash.update(std::span<const uint8_t>(out.data() + out_off, static_cast<size_t>(r)));
        out_off += static_cast<size_t>(r);
        rep.sent += static_cast<uint64_t>(r);
      } else if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        rep.error = errno_text("send", errno);
        break;
      }
    }
  }
  rep.sent_sha256 = sent_hash.finish();
  rep.received_sha256 = recv_hash.finish();
  sock.reset();
  std::lock_guard lock(mu_);
  reports_.push_back(std::move(rep));
  cv_.notify_all();
}

std::vector<ConnectionReport> TargetServer::wait_reports(size_t count, Millis timeout) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return reports_.size() >= count; })) {
    throw NetError("target: only " + std::to_string(reports_.size()) + " of " +
                   std::to_string(count) + " connections finished in time (" +
                   std::to_string(accepted_.load()) + " accepted)");
  }
  return reports_;
}

std::vector<ConnectionReport> TargetServer::reports() const {
  std::lock_guard lock(mu_);
  return reports_;
}

// ---- UDP ----

UdpSocket::UdpSocket(const std::string& bind_host, uint16_t port) : host_(bind_host) {
  Endpoint ep = make_endpoint(bind_host, port);
  sock_ = make_socket(ep.family, SOCK_DGRAM);
  if (::bind(sock_.fd(), reinterpret_cast<sockaddr*>(&ep.addr), ep.len) != 0) {
    throw NetError(errno_text("bind UDP " + bind_host + ":" + std::to_string(port), errno));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(sock_.fd(), reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = describe(bound).second;
  // Room for bursts of large datagrams (8 KB replies) without kernel drops.
  const int size = 1 << 20;
  ::setsockopt(sock_.fd(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  ::setsockopt(sock_.fd(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

void UdpSocket::send_to(const std::string& host, uint16_t port,
                        std::span<const uint8_t> data) const {
  Endpoint ep = make_endpoint(host, port);
  for (;;) {
    const ssize_t r = ::sendto(sock_.fd(), data.data(), data.size(), MSG_NOSIGNAL,
                               reinterpret_cast<sockaddr*>(&ep.addr), ep.len);
    if (r >= 0) return;
    // An ICMP error from an earlier datagram can surface on any later call: not ours.
    if (errno == EINTR || errno == ECONNREFUSED) continue;
    throw NetError(errno_text("sendto " + host + ":" + std::to_string(port) + " (" +
                                  std::to_string(data.size()) + " bytes)",
                              errno));
  }
}

std::optional<Datagram> UdpSocket::recv(Millis timeout) const {
  const auto deadline = Clock::now() + timeout;
  std::vector<uint8_t> buf(65536);
  for (;;) {
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    const ssize_t r = ::recvfrom(sock_.fd(), buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC,
                                 reinterpret_cast<sockaddr*>(&from), &len);
    if (r >= 0) {
      if (static_cast<size_t>(r) > buf.size()) throw NetError("datagram larger than 64 KiB");
      Datagram d;
      d.data.assign(buf.begin(), buf.begin() + r);
      std::tie(d.host, d.port) = describe(from);
      return d;
    }
    if (errno == EINTR || errno == ECONNREFUSED) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) throw NetError(errno_text("recvfrom", errno));
    if (wait_fd(sock_.fd(), POLLIN, deadline) == 0) return std::nullopt;
  }
}

UdpTarget::UdpTarget(const std::string& bind_host, Handler handler)
    : socket_(bind_host), handler_(std::move(handler)) {
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) throw NetError(errno_text("eventfd", errno));
  thread_ = std::thread([this] { loop(); });
}

UdpTarget::~UdpTarget() {
  const uint64_t one = 1;
  ssize_t ignored = ::write(stop_fd_, &one, sizeof one);
  (void)ignored;
  if (thread_.joinable()) thread_.join();
  ::close(stop_fd_);
}

void UdpTarget::loop() {
  for (;;) {
    pollfd fds[2] = {{socket_.fd(), POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    std::optional<Datagram> d;
    try {
      d = socket_.recv(Millis(0));
    } catch (const NetError&) {
      continue;
    }
    if (!d) continue;
    {
      std::lock_guard lock(mu_);
      ++received_;
      auto it = std::find_if(sources_.begin(), sources_.end(), [&](const Source& s) {
        return s.host == d->host && s.port == d->port;
      });
      if (it == sources_.end()) {
        sources_.push_back({d->host, d->port, 1});
      } else {
        ++it->datagrams;
      }
    }
    cv_.notify_all();
    std::optional<Bytes> reply = handler_ ? handler_(d->data) : std::optional<Bytes>(d->data);
    if (!reply) continue;
    try {
      socket_.send_to(d->host, d->port, *reply);
    } catch (const NetError&) {
      // The sender is gone; a UDP server just moves on.
    }
  }
}

size_t UdpTarget::received() const {
  std::lock_guard lock(mu_);
  return received_;
}

std::vector<UdpTarget::Source> UdpTarget::sources() const {
  std::lock_guard lock(mu_);
  return sources_;
}

bool UdpTarget::wait_received(size_t count, Millis timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return received_ >= count; });
}

// ---- SOCKS5 UDP ----

Bytes socks5_udp_encode(const Socks5UdpPacket& packet) {
  Bytes out{0x00, 0x00, packet.frag};
  append_socks5_address(out, packet.atyp, packet.host, packet.port);
  out.insert(out.end(), packet.data.begin(), packet.data.end());
  return out;
}

std::optional<Socks5UdpPacket> socks5_udp_decode(std::span<const uint8_t> d) {
  if (d.size() < 4 || d[0] != 0 || d[1] != 0) return std::nullopt;
  Socks5UdpPacket p;
  p.frag = d[2];
  size_t off = 4;
  char text[INET6_ADDRSTRLEN] = {};
  switch (d[3]) {
    case 1:
      if (d.size() < off + 4 + 2) return std::nullopt;
      ::inet_ntop(AF_INET, d.data() + off, text, sizeof text);
      p.atyp = AddrType::IPv4;
      p.host = text;
      off += 4;
      break;
    case 4:
      if (d.size() < off + 16 + 2) return std::nullopt;
      ::inet_ntop(AF_INET6, d.data() + off, text, sizeof text);
      p.atyp = AddrType::IPv6;
      p.host = text;
      off += 16;
      break;
    case 3: {
      if (d.size() < off + 1) return std::nullopt;
      const size_t n = d[off];
      if (d.size() < off + 1 + n + 2) return std::nullopt;
      p.atyp = AddrType::Domain;
      p.host.assign(reinterpret_cast<const char*>(d.data() + off + 1), n);
      off += 1 + n;
      break;
    }
    default:
      return std::nullopt;
  }
  p.port = static_cast<uint16_t>((d[off] << 8) | d[off + 1]);
  off += 2;
  p.data.assign(d.begin() + static_cast<std::ptrdiff_t>(off), d.end());
  return p;
}

Socks5UdpAssociation socks5_udp_associate(uint16_t proxy_port, const std::string& source_host,
                                          uint16_t source_port, Millis timeout) {
  const AddrType atyp =
      source_host.find(':') != std::string::npos ? AddrType::IPv6 : AddrType::IPv4;
  const Bytes req = socks5_request(0x03, atyp, source_host, source_port);
  Socks5Connection c = socks5_raw(proxy_port, req, timeout);
  if (!c.reply) throw NetError("UDP ASSOCIATE: the proxy closed the connection without a reply");
  if (c.reply->rep != 0x00) {
    throw NetError("UDP ASSOCIATE: reply code " + std::to_string(c.reply->rep));
  }
  Socks5UdpAssociation a;
  char text[INET6_ADDRSTRLEN] = {};
  if (c.reply->atyp == 1 && c.reply->bound_addr.size() == 4) {
    ::inet_ntop(AF_INET, c.reply->bound_addr.data(), text, sizeof text);
  } else if (c.reply->atyp == 4 && c.reply->bound_addr.size() == 16) {
    ::inet_ntop(AF_INET6, c.reply->bound_addr.data(), text, sizeof text);
  } else {
    throw NetError("UDP ASSOCIATE: BND.ADDR is not an IP address (ATYP " +
                   std::to_string(c.reply->atyp) + ")");
  }
  a.relay_host = text;
  a.relay_port = c.reply->bound_port;
  a.reply = std::move(*c.reply);
  a.control = std::move(c.socket);
  return a;
}

}  // namespace ss::test
