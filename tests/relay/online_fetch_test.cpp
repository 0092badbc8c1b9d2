// The HTTPS fetcher on a libuv loop (curl's multi socket API) and LoopTasks: a refused
// connection ends the fetch with curl's reason, a fetch cancelled by close() never calls back,
// and every handle is closed (uv_loop_close succeeds); tasks posted from another thread run on
// the loop, in order, and not after close().

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "relay/https_fetch.h"
#include "relay/loop_tasks.h"
#include "tests/support/net.h"

namespace ss {
namespace {

TEST_CASE("https fetch: a refused connection fails with a reason; every handle closed", "[relay]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    HttpsFetcher f(&loop);
    int calls = 0;
    FetchResult got;
    FetchRequest r;
    r.url = "https://127.0.0.1:" + std::to_string(test::pick_free_port()) + "/x.json";
    REQUIRE(f.get(r, [&](FetchResult res) {
      ++calls;
      got = std::move(res);
    }));
    CHECK(f.busy());
    CHECK_FALSE(f.get(r, [](FetchResult) {}));  // one at a time
    while (calls == 0 && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
    CHECK(calls == 1);
    CHECK_FALSE(got.ok);
    CHECK(got.status == 0);
    CHECK_FALSE(got.error.empty());
    CHECK(got.error.find('\n') == std::string::npos);
    CHECK_FALSE(f.busy());
    // http:// is not spoken, whatever the caller asks.
    FetchRequest plain = r;
    plain.url = "http://127.0.0.1:" + std::to_string(test::pick_free_port()) + "/x.json";
    calls = 0;
    REQUIRE(f.get(plain, [&](FetchResult res) {
      ++calls;
      got = std::move(res);
    }));
    while (calls == 0 && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
    CHECK(calls == 1);
    CHECK_FALSE(got.ok);
    CHECK(got.error.find("http") != std::string::npos);
    f.close();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(f.closed());
  }
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("https fetch: close() during a transfer never calls back", "[relay]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    HttpsFetcher f(&loop);
    bool called = false;
    FetchRequest r;
    // A loopback listener that never accepts nor answers: the kernel completes the handshake,
    // the TLS ClientHello waits for an answer that never comes.
    const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(lfd >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(lfd, 4) == 0);
    socklen_t len = sizeof sa;
    REQUIRE(::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    r.url = "https://127.0.0.1:" + std::to_string(ntohs(sa.sin_port)) + "/x.json";
    REQUIRE(f.get(r, [&](FetchResult) { called = true; }));
    for (int i = 0; i < 20; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(f.busy());
    f.close();
    ::close(lfd);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_FALSE(called);
    CHECK(f.closed());
    CHECK_FALSE(f.get(r, [&](FetchResult) { called = true; }));
  }
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("loop tasks: posted from another thread, run on the loop in order", "[relay]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  LoopTasks tasks;
  tasks.init(&loop);
  std::vector<int> ran;
  const std::thread::id loop_thread = std::this_thread::get_id();
  bool on_loop_thread = true;
  std::thread poster([&] {
    for (int i = 0; i < 100; ++i) {
      tasks.post([&, i] {
        on_loop_thread = on_loop_thread && std::this_thread::get_id() == loop_thread;
        ran.push_back(i);
        if (i == 99) tasks.close();
      });
    }
  });
  uv_run(&loop, UV_RUN_DEFAULT);  // ends once the last task closed the handle
  poster.join();
  REQUIRE(ran.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(ran[static_cast<size_t>(i)] == i);
  CHECK(on_loop_thread);
  CHECK_FALSE(tasks.post([&] { ran.push_back(-1); }));
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace ss
