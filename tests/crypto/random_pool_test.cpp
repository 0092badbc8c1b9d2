// The per-thread random pool (crypto/random_pool.h): bytes are never handed out twice, a forked
// child does not repeat its parent's next bytes (MADV_WIPEONFORK), and other threads have pools
// of their own.

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstring>
#include <set>
#include <thread>

#include "crypto/random_pool.h"

using namespace ss;

using Salt = std::array<uint8_t, 32>;

static Salt draw() {
  Salt s{};
  pooled_random_bytes(s);
  return s;
}

TEST_CASE("random pool: no salt repeats across several refills", "[crypto]") {
  std::set<Salt> seen;
  for (int i = 0; i < 1000; ++i) CHECK(seen.insert(draw()).second);  // 8 pools' worth
  // Odd sizes and a request larger than the pool are served too.
  uint8_t big[10000] = {};
  pooled_random_bytes(big);
  size_t zeros = 0;
  for (uint8_t b : big) zeros += b == 0;
  CHECK(zeros < 200);  // about 39 expected
}

TEST_CASE("random pool: a forked child does not repeat its parent's bytes", "[crypto]") {
  draw();  // the pool is filled, with most of it left
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const Salt s = draw();
    const bool ok = ::write(fds[1], s.data(), s.size()) == static_cast<ssize_t>(s.size());
    ::_exit(ok ? 0 : 1);
  }
  ::close(fds[1]);
  Salt child{};
  const ssize_t n = ::read(fds[0], child.data(), child.size());
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(n == static_cast<ssize_t>(child.size()));
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(draw() != child);
}

TEST_CASE("random pool: each thread draws from its own pool", "[crypto]") {
  Salt other{};
  std::thread t([&] { other = draw(); });
  t.join();
  CHECK(draw() != other);
}
