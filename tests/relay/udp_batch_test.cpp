// The send batch: datagrams queued in place or copied, sent with sendmmsg in order, counted; a
// closing socket's datagrams dropped; a full send buffer drops and counts.

#include "relay/udp_batch.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

namespace ss {
namespace {

struct Sock {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  sockaddr_in addr{};
  Sock() {
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  }
  ~Sock() { close(fd); }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&addr); }
  std::vector<std::string> drain() {
    std::vector<std::string> out;
    char buf[70000];
    for (;;) {
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n < 0) return out;
      out.emplace_back(buf, static_cast<size_t>(n));
    }
  }
};

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

TEST_CASE("UDP send batch: in place and copied datagrams leave in order, replies counted",
          "[relay][udp]") {
  UdpStats stats;
  UdpSendBatch batch(65536, stats);
  Sock from, a, b;
  std::span<uint8_t> room = batch.space();
  REQUIRE(room.size() >= 65536);
  std::memcpy(room.data(), "one", 3);
  batch.push(from.fd, a.sa(), room.first(3), /*reply=*/true);
  batch.push(from.fd, b.sa(), bytes_of("two"), /*reply=*/false);
  room = batch.space();
  std::memcpy(room.data(), "three", 5);
  batch.push(from.fd, a.sa(), room.first(5), /*reply=*/true);
  batch.push(from.fd, a.sa(), {}, /*reply=*/true);  // an empty datagram is one too
  CHECK(a.drain().empty());                         // nothing before the flush
  batch.flush();
  CHECK(batch.empty());
  CHECK(a.drain() == std::vector<std::string>{"one", "three", ""});
  CHECK(b.drain() == std::vector<std::string>{"two"});
  CHECK(stats.packets_out == 3);
  CHECK(stats.drop_overflow == 0);
}

TEST_CASE("UDP send batch: a forgotten socket's datagrams are dropped, others sent",
          "[relay][udp]") {
  UdpStats stats;
  UdpSendBatch batch(2048, stats);
  Sock s1, s2, to;
  batch.push(s1.fd, to.sa(), bytes_of("from s1"), false);
  batch.push(s2.fd, to.sa(), bytes_of("from s2"), false);
  batch.push(s1.fd, to.sa(), bytes_of("again s1"), false);
  batch.forget(s1.fd);
  batch.flush();
  CHECK(to.drain() == std::vector<std::string>{"from s2"});
}

TEST_CASE("UDP send batch: more datagrams than a batch holds are all sent, in order",
          "[relay][udp]") {
  UdpStats stats;
  UdpSendBatch batch(1500, stats);
  Sock from, to;
  int rcv = 1 << 20;
  setsockopt(to.fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  std::vector<std::string> sent;
  for (size_t i = 0; i < UdpSendBatch::kMaxDatagrams * 3 + 5; ++i) {
    sent.push_back("datagram " + std::to_string(i) + std::string(i % 700, 'x'));
    batch.push(from.fd, to.sa(), bytes_of(sent.back()), true);
  }
  batch.flush();
  CHECK(to.drain() == sent);
  CHECK(stats.packets_out == sent.size());
}

TEST_CASE("UDP send batch: a datagram larger than the maximum is dropped and counted",
          "[relay][udp]") {
  UdpStats stats;
  UdpSendBatch batch(100, stats);
  Sock from, to;
  batch.push(from.fd, to.sa(), bytes_of(std::string(101, 'y')), true);
  batch.flush();
  CHECK(to.drain().empty());
  CHECK(stats.drop_overflow == 1);
  CHECK(stats.packets_out == 0);
}

}  // namespace ss

namespace ss {

TEST_CASE("UDP send batch: a run of equal datagrams to one address arrives whole and in order",
          "[relay][udp]") {
  // Such a run may leave as one UDP GSO message; the receiver must see the datagrams as sent.
  UdpStats stats;
  UdpSendBatch batch(65536, stats);
  Sock from, to, other;
  int rcv = 1 << 20;
  setsockopt(to.fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  std::vector<std::string> sent;
  for (int i = 0; i < 70; ++i) {
    std::string d = std::to_string(i) + ":";
    d.resize(1000, static_cast<char>('a' + i % 26));
    sent.push_back(d);
  }
  sent.push_back("short last one");
  for (const std::string& d : sent) {
    std::span<uint8_t> room = batch.space();
    std::memcpy(room.data(), d.data(), d.size());
    batch.push(from.fd, to.sa(), room.first(d.size()), true);
  }
  batch.push(from.fd, other.sa(), bytes_of("elsewhere"), false);
  batch.flush();
  CHECK(to.drain() == sent);
  CHECK(other.drain() == std::vector<std::string>{"elsewhere"});
  CHECK(stats.packets_out == sent.size());
  CHECK(stats.drop_overflow == 0);
}

}  // namespace ss
