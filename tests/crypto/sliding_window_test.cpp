// SIP022 UDP packet-ID window: in order, out of order, the exact edge, far jumps, duplicates,
// ring wrap-around, and check() never changing state.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "crypto/sliding_window.h"

using ss::SlidingWindow;

namespace {
constexpr uint64_t kW = SlidingWindow::kWindowSize;
}  // namespace

TEST_CASE("SlidingWindow: constants match WireGuard/sing/shadowsocks-rust", "[crypto]") {
  CHECK(SlidingWindow::kBlocks == 128);
  CHECK(kW == 8128);
}

TEST_CASE("SlidingWindow: in order from 0 with each ID once", "[crypto]") {
  SlidingWindow w;
  for (uint64_t id = 0; id < 20000; ++id) {
    REQUIRE(w.check(id));
    w.accept(id);
    REQUIRE_FALSE(w.check(id));
    REQUIRE(w.last() == id);
  }
  // Everything still inside the window is a duplicate; everything behind it is too old.
  for (uint64_t id = 0; id < 20000; ++id) REQUIRE_FALSE(w.check(id));
}

TEST_CASE("SlidingWindow: duplicates rejected and check() does not record", "[crypto]") {
  SlidingWindow w;
  CHECK(w.check(5));
  CHECK(w.check(5));  // checking twice changes nothing
  w.accept(5);
  CHECK_FALSE(w.check(5));
  CHECK_FALSE(w.check_and_accept(5));
  CHECK(w.check_and_accept(3));
  CHECK_FALSE(w.check_and_accept(3));
  CHECK(w.check(0));
  CHECK(w.check(4));
  CHECK(w.last() == 5);
}

TEST_CASE("SlidingWindow: out of order within the window", "[crypto]") {
  SlidingWindow w;
  w.accept(10000);
  for (uint64_t id = 10000 - kW; id < 10000; id += 7) {
    REQUIRE(w.check(id));
    w.accept(id);
    REQUIRE_FALSE(w.check(id));
  }
  CHECK(w.last() == 10000);
  // IDs not yet seen inside the window are still fresh.
  CHECK(w.check(10000 - kW + 1));
  CHECK(w.check(9998));
  // Random permutation of a block of IDs: each accepted once.
  std::vector<uint64_t> ids;
  for (uint64_t id = 20000; id < 20000 + 4000; ++id) ids.push_back(id);
  std::mt19937 rng(7);
  std::shuffle(ids.begin(), ids.end(), rng);
  for (uint64_t id : ids) {
    REQUIRE(w.check_and_accept(id));
  }
  for (uint64_t id : ids) REQUIRE_FALSE(w.check(id));
}

TEST_CASE("SlidingWindow: exactly at the edge", "[crypto]") {
  for (uint64_t last :
       {kW + 1, kW + 2, uint64_t{100000}, uint64_t{100000 + 63}, uint64_t{1} << 40}) {
    INFO("last " << last);
    SlidingWindow w;
    w.accept(last);
    CHECK(w.check(last - kW));            // exactly 8128 behind: accepted
    CHECK_FALSE(w.check(last - kW - 1));  // 8129 behind: too old
    w.accept(last - kW - 1);              // a no-op
    CHECK_FALSE(w.check(last - kW - 1));
    w.accept(last - kW);
    CHECK_FALSE(w.check(last - kW));
    CHECK(w.last() == last);
    // One step forward pushes the edge ID out.
    w.accept(last + 1);
    CHECK_FALSE(w.check(last - kW));
    CHECK(w.check(last + 1 - kW));
  }
}

TEST_CASE("SlidingWindow: far-ahead jumps clear the skipped blocks", "[crypto]") {
  SlidingWindow w;
  for (uint64_t id = 0; id < 200; ++id) w.accept(id);
  // Jump by more than the whole ring: nothing old survives, the old IDs are now too old.
  const uint64_t far = 200 + 64 * 200;
  CHECK(w.check(far));
  w.accept(far);
  CHECK(w.last() == far);
  for (uint64_t id = 0; id < 200; ++id) REQUIRE_FALSE(w.check(id));
  // Everything in the window except `far` itself is fresh, including IDs whose ring slots were
  // used by the old IDs.
  for (uint64_t id = far - kW; id < far; ++id) REQUIRE(w.check(id));
  CHECK_FALSE(w.check(far));

  // Jump by less than the ring: blocks between stay usable, recorded IDs still in range remain.
  SlidingWindow v;
  v.accept(1000);
  v.accept(1000 + 3000);
  CHECK_FALSE(v.check(1000));
  CHECK(v.check(1001));
  CHECK(v.check(2500));

  // A huge jump (near 2^64) works without overflow.
  SlidingWindow h;
  h.accept(5);
  const uint64_t top = UINT64_MAX - 1;
  CHECK(h.check_and_accept(top));
  CHECK_FALSE(h.check(5));
  CHECK(h.check(top - kW));
  CHECK_FALSE(h.check(top - kW - 1));
  CHECK(h.check_and_accept(UINT64_MAX));
  CHECK_FALSE(h.check(UINT64_MAX));
}

TEST_CASE("SlidingWindow: the ring wraps many times without stale bits", "[crypto]") {
  // Accept every third ID over many ring revolutions; at each step the untouched IDs inside the
  // window must be fresh (a stale bit from a previous revolution would reject them).
  SlidingWindow w;
  const uint64_t span = 128 * 64 * 5;  // five revolutions of the ring
  for (uint64_t id = 0; id < span; id += 3) {
    REQUIRE(w.check_and_accept(id));
    if (id % 997 == 0 && id > kW) {
      for (uint64_t back = id - kW; back < id; ++back) {
        REQUIRE(w.check(back) == (back % 3 != 0));
      }
    }
  }
}

TEST_CASE("SlidingWindow: agrees with a reference model on random traffic", "[crypto]") {
  // Model: an ID is acceptable iff never accepted and last - id <= 8128 (or id > last).
  std::mt19937_64 rng(2022);
  SlidingWindow w;
  std::set<uint64_t> seen;
  uint64_t last = 0;
  bool any = false;
  uint64_t base = 0;
  for (int step = 0; step < 200000; ++step) {
    const uint64_t r = rng() % 100;
    if (r < 2) base += rng() % 20000;  // occasional jump
    const uint64_t id = base + rng() % 9000;
    const bool fresh = seen.count(id) == 0;
    const bool in_window = !any || id > last || last - id <= kW;
    // Before anything is accepted the window's `last` is 0: the model agrees for id >= 0.
    const bool expect = fresh && in_window;
    REQUIRE(w.check(id) == expect);
    if (rng() % 4 != 0) {  // sometimes check without accepting (a packet that failed validation)
      w.accept(id);
      if (expect) {
        seen.insert(id);
        if (!any || id > last) last = id;
        any = true;
      }
    }
  }
  w.reset();
  CHECK(w.last() == 0);
  CHECK(w.check(0));
}

TEST_CASE("SlidingWindow: no ring while the accepted IDs form one run, the same answers after",
          "[crypto]") {
  // Model as above. Traffic in order (from a random start), with runs extended backwards, far
  // jumps that leave the old run behind the window, duplicates and stale IDs: none of these needs
  // the ring. Then one gap inside the window: the ring is made and the answers go on agreeing.
  std::mt19937_64 rng(17);
  for (int round = 0; round < 50; ++round) {
    SlidingWindow w;
    std::set<uint64_t> seen;
    uint64_t last = 0;
    bool any = false;
    auto step = [&](uint64_t id) {
      const bool expect = seen.count(id) == 0 && (!any || id > last || last - id <= kW);
      REQUIRE(w.check(id) == expect);
      w.accept(id);
      if (expect) {
        seen.insert(id);
        if (!any || id > last) last = id;
        any = true;
      }
    };
    const uint64_t start = rng() % 3 == 0 ? 0 : rng() % 100000;
    uint64_t lo = start;
    uint64_t hi = start;
    step(start);
    for (int i = 0; i < 3000; ++i) {
      const uint64_t r = rng() % 100;
      if (r < 60) {
        step(++hi);
      } else if (r < 70 && lo > 0 && hi - (lo - 1) <= kW) {
        step(--lo);
      } else if (r < 72) {
        hi += kW + 1 + rng() % 1000;  // the whole run falls out of the window
        lo = hi;
        step(hi);
      } else {
        step(lo + rng() % (hi - lo + 1));                // a duplicate
        if (hi > kW + 5) step(hi - kW - 1 - rng() % 5);  // too old
      }
      REQUIRE_FALSE(w.has_ring());
    }
    // A gap inside the window.
    hi += 2 + rng() % 100;
    step(hi);
    CHECK(w.has_ring());
    for (int i = 0; i < 3000; ++i) {
      const uint64_t base = hi > kW + 100 ? hi - kW - 100 : 0;
      step(base + rng() % (hi - base + 200));
      if (rng() % 8 == 0) hi += rng() % 50;
    }
  }
}

TEST_CASE("SlidingWindow: the first ID alone, then an older one within the window", "[crypto]") {
  SlidingWindow w;
  w.accept(100);
  CHECK_FALSE(w.has_ring());
  CHECK_FALSE(w.check(100));
  CHECK(w.check(99));
  CHECK(w.check(0));
  w.accept(98);  // a gap (99) inside the window
  CHECK(w.has_ring());
  CHECK(w.check(99));
  CHECK_FALSE(w.check(98));
  CHECK_FALSE(w.check(100));
}
