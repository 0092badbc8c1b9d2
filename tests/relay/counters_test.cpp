// Sharded counters: each thread adds to its own shard, a read sums them all, and what a thread
// counted still counts after it ends.

#include "relay/counters.h"

#include <catch2/catch.hpp>
#include <thread>
#include <vector>

namespace ss {
namespace {

TEST_CASE("counters: adds from several threads sum exactly once they stop", "[relay]") {
  const int64_t before = counters::read(Counter::Accepted);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 10'000; ++i) counters::add(Counter::Accepted);
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(counters::read(Counter::Accepted) - before == 40'000);
}

TEST_CASE("counters: a gauge raised on one thread may be lowered on another", "[relay]") {
  const int64_t before = counters::read(Counter::OrphanedLookups);
  std::thread([] { counters::add(Counter::OrphanedLookups, 3); }).join();
  CHECK(counters::read(Counter::OrphanedLookups) - before == 3);
  counters::sub(Counter::OrphanedLookups, 3);
  CHECK(counters::read(Counter::OrphanedLookups) == before);
}

TEST_CASE("counters: each thread has a shard of its own", "[relay]") {
  counters::Shard* other = nullptr;
  std::thread([&] { other = &counters::local_shard(); }).join();
  CHECK(other != &counters::local_shard());
  CHECK(&counters::local_shard() == &counters::local_shard());
}

}  // namespace
}  // namespace ss
