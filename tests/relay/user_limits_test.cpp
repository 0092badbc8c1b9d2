// Per-user quotas and rate limits (relay/user_limits.h): the UTC period arithmetic, the shared
// token bucket, a user's counters with their roll-over, the table, and the quota state file.

#include "relay/user_limits.h"

#include <catch2/catch.hpp>

#include <sstream>
#include <thread>
#include <vector>

#include "relay/config.h"
#include "relay/runtime.h"

namespace ss {
namespace {

// 2026-03-15 12:34:56 UTC.
constexpr int64_t kMid = 1773578096;
constexpr int64_t kDay = 86400;

Specs specs_with(std::vector<UserSpec> users) {
  Specs s;
  ServerSpec in;
  in.users = std::move(users);
  s.inbounds.push_back(std::move(in));
  return s;
}

UserSpec user(std::string name, uint64_t quota, QuotaPeriod p = QuotaPeriod::None,
              uint64_t rate = 0) {
  UserSpec u;
  u.name = std::move(name);
  u.quota_bytes = quota;
  u.quota_period = p;
  u.rate_limit = rate;
  return u;
}

}  // namespace

TEST_CASE("user limits: periods start at UTC midnight and on the 1st of the month", "[relay]") {
  CHECK(quota_period_start(QuotaPeriod::None, kMid) == 0);
  CHECK(quota_period_end(QuotaPeriod::None, 0) == INT64_MAX);
  // 2026-03-15 00:00:00 UTC and the next midnight.
  CHECK(quota_period_start(QuotaPeriod::Day, kMid) == 1773532800);
  CHECK(quota_period_end(QuotaPeriod::Day, 1773532800) == 1773532800 + kDay);
  CHECK(quota_period_start(QuotaPeriod::Day, 1773532800) == 1773532800);
  CHECK(quota_period_start(QuotaPeriod::Day, 1773532799) == 1773532800 - kDay);
  // 2026-03-01 00:00:00 UTC; April 1st.
  CHECK(quota_period_start(QuotaPeriod::Month, kMid) == 1772323200);
  CHECK(quota_period_end(QuotaPeriod::Month, 1772323200) == 1775001600);
  // December rolls into January of the next year: 2026-12-01 -> 2027-01-01.
  CHECK(quota_period_start(QuotaPeriod::Month, 1796083200 + 5 * kDay) == 1796083200);
  CHECK(quota_period_end(QuotaPeriod::Month, 1796083200) == 1798761600);
  // A leap February: 2028-02-01 -> 2028-03-01 is 29 days.
  CHECK(quota_period_end(QuotaPeriod::Month, 1832976000) - 1832976000 == 29 * kDay);
  CHECK(std::string(quota_period_name(QuotaPeriod::Month)) == "month");
}

TEST_CASE("user limits: the shared bucket lets rate bytes per second through after its burst",
          "[relay]") {
  SharedRateLimiter b(1000, 100);  // 1000 bytes/s, 100 at once: tau = 100 ms
  const uint64_t t0 = 5'000;
  CHECK(b.wait_ms(t0) == 0);
  b.consume(100, t0);  // the burst
  CHECK(b.wait_ms(t0) == 0);
  b.consume(1, t0);  // one byte over: 1 ms to wait
  CHECK(b.wait_ms(t0) == 1);
  CHECK(b.wait_ms(t0 + 1) == 0);
  // An overdraw of a whole read is paid back by waiting: 1000 bytes more = 1 s.
  b.consume(1000, t0 + 1);
  CHECK(b.wait_ms(t0 + 1) == 1000);
  CHECK(b.wait_ms(t0 + 500) == 501);
  CHECK(b.wait_ms(t0 + 1001) == 0);
  // A long idle only fills the bucket up to the burst.
  b.consume(150, t0 + 100'000);
  CHECK(b.wait_ms(t0 + 100'000) == 50);
  CHECK(SharedRateLimiter::default_burst(1'000'000) == 100'000);
  CHECK(SharedRateLimiter::default_burst(5) == 1);
}

TEST_CASE("user limits: over 10 s of 64 KiB reads from four threads the bucket passes the rate",
          "[relay]") {
  // Every thread reads whenever the bucket lets it, on a simulated clock: the bytes that got
  // through in 10 simulated seconds are rate * 10 plus the burst plus at most one read each.
  constexpr uint64_t kRate = 1'000'000;
  SharedRateLimiter b(kRate, SharedRateLimiter::default_burst(kRate));
  std::atomic<uint64_t> passed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (uint64_t now = 1000; now < 11'000;) {
        const uint64_t w = b.wait_ms(now);
        if (w != 0) {
          now += w;
          continue;
        }
        if (now >= 11'000) break;
        b.consume(65536, now);
        passed += 65536;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(passed.load() >= kRate * 10);
  CHECK(passed.load() <= kRate * 10 + 100'000 + 4 * 65536);
}

TEST_CASE("user limits: a quota counts to its limit, refuses the read past it, and rolls over",
          "[relay]") {
  UserState u("alice", 1000, QuotaPeriod::Day, 0);
  CHECK(u.limiter() == nullptr);
  CHECK(u.charge(600, kMid));
  CHECK(u.charge(400, kMid));  // exactly the quota
  CHECK(u.used(kMid) == 1000);
  CHECK(u.over_quota(kMid));
  CHECK_FALSE(u.charge(1, kMid));  // refused and not counted
  CHECK(u.used(kMid) == 1000);
  // The read that would pass the quota is refused whole.
  UserState v("bob", 1000, QuotaPeriod::None, 0);
  CHECK(v.charge(900, kMid));
  CHECK_FALSE(v.charge(101, kMid));
  // ... and the quota is then used up: less than that read was left.
  CHECK(v.used(kMid) == 1000);
  CHECK(v.over_quota(kMid));
  // Lifetime: never rolls.
  CHECK(v.used(kMid + 400 * kDay) == 1000);
  // Day: the next midnight starts at 0.
  const int64_t next = quota_period_start(QuotaPeriod::Day, kMid) + kDay;
  CHECK(u.used(next - 1) == 1000);
  CHECK(u.used(next) == 0);
  CHECK(u.period_start(next) == next);
  CHECK_FALSE(u.over_quota(next));
  // add() counts whatever the quota (bytes already relayed).
  u.add(5000, next);
  CHECK(u.used(next) == 5000);
  // No quota: counts, never refuses.
  UserState r("carol", 0, QuotaPeriod::None, 1000);
  CHECK(r.limiter() != nullptr);
  CHECK(r.charge(1'000'000, kMid));
  CHECK_FALSE(r.over_quota(kMid));
}

TEST_CASE("user limits: the table holds the limited users, sorted, one state per name", "[relay]") {
  std::string err;
  CHECK(UserLimits::make(specs_with({user("a", 0)}), &err) == nullptr);
  CHECK(err.empty());
  Specs s = specs_with({user("zed", 10), user("amy", 0, QuotaPeriod::None, 500), user("bo", 0)});
  ServerSpec second;
  second.users = {user("zed", 10)};  // the same user on another port: one state
  s.inbounds.push_back(second);
  auto t = UserLimits::make(s, &err);
  REQUIRE(t != nullptr);
  REQUIRE(t->states().size() == 2);
  CHECK(t->states()[0]->name() == "amy");
  CHECK(t->find("zed") == t->states()[1].get());
  CHECK(t->find("bo") == nullptr);
  CHECK(t->find("") == nullptr);
  // Different limits for one name on two ports: refused, naming the user.
  s.inbounds[1].users[0].quota_bytes = 11;
  CHECK(UserLimits::make(s, &err) == nullptr);
  CHECK_THAT(err, Catch::Contains("\"zed\"") && Catch::Contains("quota_bytes"));
}

TEST_CASE("user limits: a reload's table keeps the states of users whose limits are the same",
          "[relay]") {
  std::string err;
  auto old_table = UserLimits::make(specs_with({user("a", 100), user("b", 100)}), &err);
  REQUIRE(old_table);
  old_table->set_clock([] { return kMid; });
  CHECK(old_table->find("a")->charge(60, kMid));
  CHECK(old_table->find("b")->charge(70, kMid));
  auto new_table =
      UserLimits::make(specs_with({user("a", 100), user("b", 200), user("c", 5)}), &err);
  REQUIRE(new_table);
  new_table->set_clock([] { return kMid; });
  new_table->keep_states_of(*old_table);
  CHECK(new_table->find("a") == old_table->find("a"));  // the same state goes on
  CHECK(new_table->find("b") != old_table->find("b"));  // new limits, the count carried
  CHECK(new_table->find("b")->used(kMid) == 70);
  CHECK(new_table->find("b")->quota() == 200);
  CHECK(new_table->find("c")->used(kMid) == 0);
}

TEST_CASE("user limits: the quota state file round-trips and damaged files are refused",
          "[relay]") {
  std::string err;
  const Specs s = specs_with(
      {user("alice smith", 1000, QuotaPeriod::Day), user("bob", 1000), user("r", 0, {}, 9)});
  auto t = UserLimits::make(s, &err);
  REQUIRE(t);
  CHECK(t->find("alice smith")->charge(123, kMid));
  CHECK(t->find("bob")->charge(456, kMid));
  const std::string text = encode_quota_state(*t, kMid);
  CHECK(text == "ss-quota 1\n1773532800 123 alice smith\n0 456 bob\nend 2\n");

  auto fresh = UserLimits::make(s, &err);
  size_t restored = 0, dropped = 0;
  CHECK(decode_quota_state(text, *fresh, kMid, &restored, &dropped).empty());
  CHECK(restored == 2);
  CHECK(dropped == 0);
  CHECK(fresh->find("alice smith")->used(kMid) == 123);
  CHECK(fresh->find("bob")->used(kMid) == 456);

  // A day later: alice's period has ended (dropped), bob's lifetime count stays.
  auto later = UserLimits::make(s, &err);
  CHECK(decode_quota_state(text, *later, kMid + kDay, &restored, &dropped).empty());
  CHECK(restored == 1);
  CHECK(dropped == 1);
  CHECK(later->find("alice smith")->used(kMid + kDay) == 0);
  CHECK(later->find("bob")->used(kMid + kDay) == 456);

  // A user no longer in the config is dropped.
  CHECK(decode_quota_state("ss-quota 1\n0 5 gone\nend 1\n", *later, kMid, &restored, &dropped)
            .empty());
  CHECK(dropped == 1);

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "empty"},
      {"ss-quota 2\nend 0\n", "line 1"},
      {"ss-quota 1\n0 456 bob\n", "no end line"},
      {"ss-quota 1\n0 456 bob\nend 1", "cut short"},
      {"ss-quota 1\n0 456 bob\nend 2\n", "line 3"},
      {"ss-quota 1\n0 -5 bob\nend 1\n", "line 2"},
      {"ss-quota 1\nx 5 bob\nend 1\n", "line 2"},
      {"ss-quota 1\n0 5\nend 1\n", "line 2"},
      {"ss-quota 1\n0 5 bob\n0 6 bob\nend 2\n", "appears twice"},
      {"ss-quota 1\nend 0\n0 5 bob\n", "after the end line"},
  };
  for (const auto& [file, why] : bad) {
    INFO(file);
    auto u = UserLimits::make(s, &err);
    u->find("bob")->charge(7, kMid);
    CHECK_THAT(decode_quota_state(file, *u, kMid), Catch::Contains(why));
    CHECK(u->find("bob")->used(kMid) == 7);  // nothing loaded
  }
}

TEST_CASE(
    "user limits: user entries take quota_bytes, quota_period and the rate; bad values "
    "name the key",
    "[relay]") {
  std::ostringstream warn;
  const std::string head =
      R"({"server": "127.0.0.1", "server_port": 8388, "method": "chacha20-ietf-poly1305", )";
  Config c = parse_config_json(Role::Server, head + R"("users": [{"name": "a", "password": "x",
      "quota_bytes": 5000, "quota_period": "month", "rate_limit_bytes_per_second": 700},
      {"name": "b", "password": "y", "quota_bytes": "123456789"}]})",
                               warn);
  REQUIRE(c.users.size() == 2);
  CHECK(c.users[0].quota_bytes == 5000);
  CHECK(c.users[0].quota_period == QuotaPeriod::Month);
  CHECK(c.users[0].rate_limit == 700);
  CHECK(c.users[1].quota_bytes == 123456789);
  CHECK(c.users[1].quota_period == QuotaPeriod::None);
  CHECK(c.users[1].rate_limit == 0);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"("quota_bytes": 0)", "users[0].quota_bytes"},
      {R"("quota_bytes": -1)", "users[0].quota_bytes"},
      {R"("quota_bytes": "lots")", "users[0].quota_bytes"},
      {R"("quota_bytes": 5, "quota_period": "week")", "users[0].quota_period"},
      {R"("quota_period": "day")", "users[0].quota_period: needs quota_bytes"},
      {R"("rate_limit_bytes_per_second": 0)", "users[0].rate_limit_bytes_per_second"},
      {R"("rate_limit": 5)", "users[0].rate_limit: unknown key"},
  };
  for (const auto& [extra, key] : bad) {
    INFO(extra);
    try {
      parse_config_json(Role::Server,
                        head + R"("users": [{"name": "a", "password": "x", )" + extra + "}]}",
                        warn);
      FAIL("accepted");
    } catch (const ConfigError& e) {
      CHECK_THAT(e.what(), Catch::StartsWith(key));
    }
  }
}

}  // namespace ss
