// TcpStream's reading on a real loop: a connecting stream is read from the start but marked
// stopped, and read_stop() only marks the stream stopped until something arrives (relay/net/
// tcp_stream.cpp). Either way no byte and no end may reach the handler while it is stopped, and
// everything must arrive, in order, once it reads again.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "relay/net/tcp_stream.h"

using namespace ss;

namespace {

struct Recorder final : StreamHandler {
  std::string data;
  int ended = 0;  // the error of on_stream_end, 0 if none came
  int connected = 1;
  bool closed = false;
  bool on_stream_read(uint8_t, Block* block, size_t n) override {
    data.append(reinterpret_cast<const char*>(block->data), n);
    return false;
  }
  void on_stream_end(uint8_t, int err) override { ended = err; }
  void on_stream_written(uint8_t, int) override {}
  void on_stream_shutdown(uint8_t, int) override {}
  void on_stream_connected(uint8_t, int status) override { connected = status; }
  void on_stream_closed(uint8_t) override { closed = true; }
};

// Turns the loop without blocking for about `ms`, so that whatever the kernel has is seen.
void spin(uv_loop_t* loop, int ms) {
  for (int i = 0; i < ms; ++i) {
    uv_run(loop, UV_RUN_NOWAIT);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void send_all(int fd, const std::string& s) {
  REQUIRE(::send(fd, s.data(), s.size(), 0) == static_cast<ssize_t>(s.size()));
}

}  // namespace

TEST_CASE("TcpStream: nothing is delivered while stopped, everything once reading again",
          "[relay]") {
  const int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(lfd >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(::listen(lfd, 4) == 0);
  REQUIRE(::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);

  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  Recorder rec;
  TcpStream s;
  s.set_handler(&rec, 0);
  REQUIRE(s.init(&loop) == 0);
  REQUIRE(s.connect(reinterpret_cast<const sockaddr*>(&sa)) == 0);
  const int peer = ::accept(lfd, nullptr, nullptr);
  REQUIRE(peer >= 0);
  // The peer speaks before the stream is even connected; the handler does not read yet.
  send_all(peer, "hello ");
  for (int i = 0; i < 2000 && rec.connected == 1; ++i) spin(&loop, 1);
  REQUIRE(rec.connected == 0);
  spin(&loop, 50);
  CHECK(rec.data.empty());
  CHECK(rec.ended == 0);

  REQUIRE(s.read_start() == 0);
  for (int i = 0; i < 2000 && rec.data.size() < 6; ++i) spin(&loop, 1);
  CHECK(rec.data == "hello ");

  // Stopped with nothing pending (only marked), then bytes and the end arrive: they wait.
  s.read_stop();
  send_all(peer, "world");
  REQUIRE(::shutdown(peer, SHUT_WR) == 0);
  spin(&loop, 50);
  CHECK(rec.data == "hello ");
  CHECK(rec.ended == 0);
  // Started and stopped again before the loop turns: still nothing.
  REQUIRE(s.read_start() == 0);
  s.read_stop();
  spin(&loop, 50);
  CHECK(rec.data == "hello ");
  CHECK(rec.ended == 0);

  REQUIRE(s.read_start() == 0);
  for (int i = 0; i < 2000 && rec.ended == 0; ++i) spin(&loop, 1);
  CHECK(rec.data == "hello world");
  CHECK(rec.ended == UV_EOF);

  s.close(false);
  for (int i = 0; i < 2000 && !rec.closed; ++i) spin(&loop, 1);
  CHECK(rec.closed);
  ::close(peer);
  ::close(lfd);
  CHECK(uv_loop_close(&loop) == 0);
}
