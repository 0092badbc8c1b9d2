// The pump's extra pause condition: the token bucket on its own, the Pump's pause and resume
// decisions, and a limiter plugged into a real connection on a loop (reading pauses and resumes,
// and the transfer stays byte-exact).

#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "client/inbound/socks5_inbound.h"
#include "relay/buffer_pool.h"
#include "relay/net/listener.h"
#include "relay/pump.h"
#include "relay/runtime.h"
#include "tests/support/net.h"

using namespace ss;
using namespace ss::test;
using namespace std::chrono_literals;

TEST_CASE("token bucket: starts full, refills at its rate, never above its burst", "[relay]") {
  TokenBucket bucket(1000, 500);  // 1000 bytes/s, 500 at once
  CHECK(bucket.wait_ms(100) == 0);
  CHECK(bucket.tokens(100) == 500);
  bucket.consume(500, 100);
  CHECK(bucket.tokens(100) == 0);
  CHECK(bucket.wait_ms(100) == 1);  // one byte takes 1 ms at 1000 bytes/s
  CHECK(bucket.tokens(350) == 250);
  CHECK(bucket.tokens(10'000) == 500);  // a long idle only fills it
  // Overdrawn by a large read: the wait covers the whole debt.
  bucket.consume(2500, 10'000);
  CHECK(bucket.tokens(10'000) == -2000);
  CHECK(bucket.wait_ms(10'000) == 2001);
  CHECK(bucket.wait_ms(12'000) == 1);
  CHECK(bucket.wait_ms(12'001) == 0);
}

TEST_CASE("token bucket: a slow rate refills exactly over whole milliseconds", "[relay]") {
  TokenBucket bucket(3, 10);  // 3 bytes/s: 0.003 bytes per ms
  bucket.consume(10, 0);
  CHECK(bucket.tokens(0) == 0);
  CHECK(bucket.wait_ms(0) == 334);
  for (uint64_t t = 1; t <= 1000; ++t) bucket.tokens(t);  // refilled one ms at a time
  CHECK(bucket.tokens(1000) == 3);
}

TEST_CASE("pump: watermarks pause at the high mark and resume at the low mark", "[relay]") {
  Pump pump;
  CHECK_FALSE(pump.paused());
  CHECK(pump.high_water() == Pump::kStartHigh);
  CHECK(pump.low_water() == Pump::kStartHigh / 4);
  CHECK_FALSE(pump.sink_queued(Pump::kStartHigh - 1, 0));
  CHECK(pump.sink_queued(Pump::kStartHigh, 0));
  CHECK(pump.throttled());
  CHECK_FALSE(pump.sink_written(Pump::kStartHigh / 4 + 1, 500));
  CHECK(pump.paused());
  CHECK(pump.sink_written(Pump::kStartHigh / 4, 500));  // neither fast nor slow: marks stay
  CHECK_FALSE(pump.paused());
  CHECK(pump.high_water() == Pump::kStartHigh);
  // No limiter: reads are never held back.
  CHECK_FALSE(pump.charge(1 << 30, 0));
  CHECK(pump.resume_at() == 0);
}

TEST_CASE("pump: a sink that drains fast raises the marks to 128/32 KiB, a slow one lowers them",
          "[relay]") {
  Pump pump;
  uint64_t now = 1000;
  // A sink that drains to the low mark within kFastDrainMs: the high mark doubles each time.
  std::vector<size_t> highs;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(pump.sink_queued(pump.high_water(), now));
    now += Pump::kFastDrainMs - 1;
    REQUIRE(pump.sink_written(pump.low_water(), now));
    highs.push_back(pump.high_water());
  }
  CHECK(highs == std::vector<size_t>{16 * 1024, 32 * 1024, 64 * 1024, 128 * 1024, 128 * 1024});
  CHECK(pump.high_water() == Pump::kHighWater);
  CHECK(pump.low_water() == Pump::kLowWater);
  // A sink read slowly: each pause of kSlowDrainMs or more halves it, down to kStartHigh.
  highs.clear();
  for (int i = 0; i < 5; ++i) {
    REQUIRE(pump.sink_queued(pump.high_water(), now));
    now += Pump::kSlowDrainMs;
    REQUIRE(pump.sink_written(pump.low_water(), now));
    highs.push_back(pump.high_water());
  }
  CHECK(highs == std::vector<size_t>{64 * 1024, 32 * 1024, 16 * 1024, 8 * 1024, 8 * 1024});
  // A queue still above the mark after more writes does not restart the pause's clock.
  REQUIRE(pump.sink_queued(pump.high_water(), now));
  REQUIRE(pump.sink_queued(pump.high_water() + 1, now + Pump::kSlowDrainMs));
  REQUIRE(pump.sink_written(0, now + Pump::kSlowDrainMs + 1));
  CHECK(pump.high_water() == Pump::kStartHigh);
}

TEST_CASE("pump: a read takes at most the room left under the high mark", "[relay]") {
  Pump pump;
  const size_t high = pump.high_water();
  CHECK(pump.read_size(0) == kReadSize);  // an empty queue: the sink takes what it gets
  CHECK(pump.read_size(1) == high - 1);
  CHECK(pump.read_size(high - 100) == 100);
  CHECK(pump.read_size(high - 1) == 1);
  // At or above the mark the source should not be read; a read that comes anyway is one byte.
  CHECK(pump.read_size(high) == 1);
  CHECK(pump.read_size(10 * Pump::kHighWater) == 1);
  // At the ceiling, one read is at most kReadSize.
  uint64_t now = 0;
  while (pump.high_water() < Pump::kHighWater) {
    pump.sink_queued(pump.high_water(), now);
    pump.sink_written(0, ++now);
  }
  CHECK(pump.read_size(0) == kReadSize);
  CHECK(pump.read_size(1) == kReadSize);
  CHECK(pump.read_size(Pump::kHighWater - kReadSize) == kReadSize);
  CHECK(pump.read_size(Pump::kHighWater - kReadSize + 1) == kReadSize - 1);
}

TEST_CASE("pump: a sink that takes nothing queues the high mark or one read, plus its overhead",
          "[relay]") {
  // Each read is as large as the pump allows and the transform adds `overhead` bytes to it (AEAD
  // tags and lengths); nothing is written out. Reading stops at the mark, never a read above it
  // (but the first read into an empty queue is a whole one), at the start mark and at the
  // ceiling.
  for (const bool grown : {false, true}) {
    for (const size_t overhead : {size_t{0}, size_t{34}, size_t{4 * 34 + 32}}) {
      Pump pump;
      uint64_t now = 0;
      while (grown && pump.high_water() < Pump::kHighWater) {
        pump.sink_queued(pump.high_water(), now);
        pump.sink_written(0, ++now);
      }
      const size_t high = pump.high_water();
      size_t queued = 0;
      int reads = 0;
      while (!pump.paused()) {
        queued += pump.read_size(queued) + overhead;
        pump.sink_queued(queued, now);
        REQUIRE(++reads < 100);
      }
      CHECK(queued >= high);
      CHECK(queued <= std::max(high, kReadSize) + overhead);
      CHECK(reads <= static_cast<int>((high + kReadSize - 1) / kReadSize) + 1);
      // The sink drains to the low mark (not empty): reading resumes, and fills up to the mark
      // again, never above it.
      CHECK(pump.sink_written(pump.low_water(), now + 500));
      queued = pump.low_water();
      while (!pump.paused()) {
        queued += pump.read_size(queued) + overhead;
        pump.sink_queued(queued, now + 500);
      }
      CHECK(queued <= pump.high_water() + overhead);
    }
  }
}

TEST_CASE("block pool: the free list keeps the recent peak and lets it go after it", "[relay]") {
  BlockPool& pool = BlockPool::local();
  const size_t live0 = pool.live_blocks();
  std::vector<Block*> burst;
  for (int i = 0; i < 40; ++i) burst.push_back(pool.acquire());
  CHECK(pool.live_blocks() == live0 + 40);
  for (Block* b : burst) pool.release(b);
  burst.clear();
  // The same load again takes every block from the free list: nothing is mapped.
  CHECK(pool.free_blocks() >= 40);
  const size_t free_before = pool.free_blocks();
  for (int i = 0; i < 40; ++i) burst.push_back(pool.acquire());
  CHECK(pool.free_blocks() == free_before - 40);
  burst.back()->data[kBlockCapacity - 1] = 1;  // the whole block is writable
  for (Block* b : burst) pool.release(b);
  burst.clear();
  // A burst above the cap: the free list never holds more than kMaxFree.
  for (int i = 0; i < 200; ++i) burst.push_back(pool.acquire());
  for (Block* b : burst) {
    pool.release(b);
    CHECK(pool.free_blocks() <= BlockPool::kMaxFree);
  }
  burst.clear();
  CHECK(pool.live_blocks() == live0);
  // Two windows later the peak is over: trim() (an idle thread's listener calls it) unmaps down
  // to the minimum plus what is live.
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * BlockPool::kPeakWindowMs + 50));
  pool.trim();
  CHECK(pool.free_blocks() <= BlockPool::kMinFree + live0);
}

TEST_CASE("block pool: the pages a sink already took go back, the rest stays", "[relay]") {
  BlockPool& pool = BlockPool::local();
  Block* b = pool.acquire();
  std::memset(b->data, 7, kReadSize);
  b->len = static_cast<uint32_t>(kReadSize);
  b->off = 40'000;
  pool.drop_written(b, 40'000);
  CHECK(b->len == kReadSize);
  CHECK(b->off == 40'000);
  CHECK(b->data[40'000] == 7);
  CHECK(b->data[kReadSize - 1] == 7);
  // A whole page inside the written part is no longer resident (Linux's mincore).
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t inside = (reinterpret_cast<uintptr_t>(b->data) + page) & ~(page - 1);
  unsigned char vec = 1;
  REQUIRE(mincore(reinterpret_cast<void*>(inside), page, &vec) == 0);
  CHECK((vec & 1) == 0);
  // ... and the one holding bytes not yet written is.
  const uintptr_t kept = (reinterpret_cast<uintptr_t>(b->data) + 40'000) & ~(page - 1);
  REQUIRE(mincore(reinterpret_cast<void*>(kept), page, &vec) == 0);
  CHECK((vec & 1) == 1);
  // Pages already given back are not given back again (the call is repeated while a sink stays
  // throttled): a byte written there since survives a second call for the same part.
  reinterpret_cast<uint8_t*>(inside)[0] = 9;
  pool.drop_written(b, 40'000);
  CHECK(reinterpret_cast<uint8_t*>(inside)[0] == 9);
  // ... while a larger written part gives back the pages after them.
  pool.drop_written(b, kReadSize);
  REQUIRE(mincore(reinterpret_cast<void*>(kept), page, &vec) == 0);
  CHECK((vec & 1) == 0);
  CHECK(reinterpret_cast<uint8_t*>(inside)[0] == 9);
  pool.release(b);
}

TEST_CASE("pump: a limiter pauses reading until its retry time", "[relay]") {
  Pump pump;
  pump.set_limiter(std::make_shared<TokenBucket>(1000, 100));
  CHECK_FALSE(pump.charge(50, 0));
  CHECK(pump.charge(100, 0));  // 50 bytes overdrawn: 51 ms until a byte is back
  CHECK(pump.limited());
  CHECK(pump.paused());
  CHECK(pump.resume_at() == 51);
  CHECK_FALSE(pump.retry(50));  // too early: still paused
  CHECK(pump.paused());
  CHECK(pump.retry(51));
  CHECK_FALSE(pump.paused());
  CHECK(pump.resume_at() == 0);
  // Both pauses at once: each ends on its own condition.
  CHECK(pump.charge(200, 51));
  CHECK(pump.sink_queued(Pump::kHighWater + 1, 0));
  CHECK(pump.sink_written(0, 0));
  CHECK(pump.paused());  // the limiter still holds it
  pump.release();
  CHECK_FALSE(pump.paused());
}

namespace {

// A token bucket that records what the pump did with it, on the loop's thread (read by the test
// only after the loop has stopped).
class RecordingLimiter final : public PumpLimiter {
 public:
  RecordingLimiter(uint64_t rate, uint64_t burst) : bucket_(rate, burst) {}
  void consume(size_t n, uint64_t now_ms) override {
    consumed += n;
    ++reads;
    // The pump was told to wait until blocked_until_: no read may arrive before that.
    if (now_ms < blocked_until_) ++reads_while_paused;
    bucket_.consume(n, now_ms);
  }
  uint64_t wait_ms(uint64_t now_ms) override {
    const uint64_t w = bucket_.wait_ms(now_ms);
    if (w > 0) {
      if (!paused_) ++pauses;
      paused_ = true;
      blocked_until_ = now_ms + w;
    } else if (paused_) {
      paused_ = false;
      ++resumes;
    }
    return w;
  }

  uint64_t consumed = 0;
  uint64_t reads = 0;
  uint64_t reads_while_paused = 0;
  uint64_t pauses = 0;
  uint64_t resumes = 0;

 private:
  TokenBucket bucket_;
  uint64_t blocked_until_ = 0;
  bool paused_ = false;
};

// A SOCKS5 listener relaying straight to its targets, on a loop in a background thread.
class DirectProxy {
 public:
  explicit DirectProxy(PumpLimiters limiters, int timeout_s = 30) {
    REQUIRE(uv_loop_init(&loop_) == 0);
    auto runtime = std::make_shared<Runtime>();
    runtime->router = std::make_shared<FixedRouter>(std::vector<Outbound>{Outbound{}});
    runtime->limits.timeout = timeout_s;
    listener_ = std::make_unique<Listener>(&loop_, std::move(runtime), [](Listener&) {
      return std::make_unique<Socks5Inbound>(true, false);
    });
    listener_->set_limiters(std::move(limiters));
    REQUIRE(listener_->listen("127.0.0.1", 0) == 0);
    stop_.data = this;
    REQUIRE(uv_async_init(&loop_, &stop_, [](uv_async_t* a) {
              static_cast<DirectProxy*>(a->data)->listener_->shutdown();
              uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
            }) == 0);
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  ~DirectProxy() {
    if (thread_.joinable()) finish();
  }
  uint16_t port() const { return listener_->port(); }
  int finish() {
    uv_async_send(&stop_);
    thread_.join();
    listener_.reset();
    return uv_loop_close(&loop_);
  }

 private:
  uv_loop_t loop_;
  std::unique_ptr<Listener> listener_;
  uv_async_t stop_;
  std::thread thread_;
};

}  // namespace

TEST_CASE("pump: a token bucket on a connection pauses and resumes its reading, byte-exact",
          "[relay]") {
  // 512 KiB each way through buckets of 256 KiB/s with a 16 KiB burst: each direction must wait
  // for tokens several times.
  constexpr uint64_t kRate = 256 * 1024;
  constexpr uint64_t kBurst = 16 * 1024;
  constexpr size_t kSize = 512 * 1024;
  auto up = std::make_shared<RecordingLimiter>(kRate, kBurst);
  auto down = std::make_shared<RecordingLimiter>(kRate, kBurst);
  TargetServer target(TargetBehavior::echo());
  DirectProxy proxy(PumpLimiters{up, down});
  const auto start = std::chrono::steady_clock::now();
  {
    auto conn = socks5_connect(proxy.port(), AddrType::IPv4, "127.0.0.1", target.port());
    REQUIRE(conn.reply);
    REQUIRE(conn.reply->rep == 0);
    Bytes data = random_bytes(kSize);
    auto got = duplex_transfer(conn.socket, data, data.size(), 20000ms, true);
    CHECK(got.received == data.size());
    CHECK(got.received_sha256 == sha256(data));
    CHECK(recv_until_eof(conn.socket, 5000ms).empty());
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  target.wait_reports(1);
  CHECK(proxy.finish() == 0);
  // Every relayed byte was charged, reading paused and resumed, and never read while paused.
  CHECK(up->consumed == kSize);
  CHECK(down->consumed == kSize);
  for (const RecordingLimiter* l : {up.get(), down.get()}) {
    CHECK(l->pauses >= 2);
    CHECK(l->resumes >= 2);
    CHECK(l->reads_while_paused == 0);
  }
  // A bucket lets through at most its burst, its rate, and one read's overdraft: the transfer
  // cannot have been faster than that (a lower bound only, so a slow machine cannot fail it).
  const double floor_s = double(kSize - kBurst - kReadSize) / double(kRate);
  CHECK(std::chrono::duration<double>(elapsed).count() >= floor_s * 0.99);
}

TEST_CASE("pump: a wait for the limiter longer than the idle timeout is not idleness", "[relay]") {
  // One 64 KiB upload at 16 KiB/s with a 1 KiB burst: about 4 s of waiting for tokens, with a
  // 1 s idle timeout. The echo comes back byte-exact instead of the connection being aborted.
  constexpr size_t kSize = 64 * 1024;
  auto up = std::make_shared<RecordingLimiter>(16 * 1024, 1024);
  TargetServer target(TargetBehavior::echo());
  DirectProxy proxy(PumpLimiters{up, nullptr}, 1);
  {
    auto conn = socks5_connect(proxy.port(), AddrType::IPv4, "127.0.0.1", target.port());
    REQUIRE(conn.reply);
    REQUIRE(conn.reply->rep == 0);
    Bytes data = random_bytes(kSize);
    auto got = duplex_transfer(conn.socket, data, data.size(), 20000ms, true);
    CHECK(got.received == data.size());
    CHECK(got.received_sha256 == sha256(data));
    CHECK(recv_until_eof(conn.socket, 5000ms).empty());
  }
  target.wait_reports(1);
  CHECK(proxy.finish() == 0);
  CHECK(up->consumed == kSize);
  CHECK(up->pauses >= 1);
  CHECK(up->reads_while_paused == 0);
}
