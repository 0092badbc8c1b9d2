// The pure parts of the Redis fleet (server/fleet/fleet.h): users_url's parsing and checks, the
// user hash's entries, the users put on a config, and the counter arithmetic that makes a write
// repeated after an outage count nothing twice.

#include <catch2/catch.hpp>
#include <sstream>
#include <string>

#include "relay/config.h"
#include "relay/redis_url.h"
#include "server/fleet/fleet.h"
#include "tests/support/config_text.h"

namespace ss {
namespace {

using test::finalized;
using test::refusal;

TEST_CASE("fleet: redis URLs are parsed, rediss and junk refused", "[relay]") {
  std::string why;
  auto u = parse_redis_url("redis://127.0.0.1:6390/3", &why);
  REQUIRE(u);
  CHECK(u->host == "127.0.0.1");
  CHECK(u->port == 6390);
  CHECK(u->db == 3);
  CHECK(u->password.empty());
  u = parse_redis_url("redis://:s%40cret@redis.example", &why);
  REQUIRE(u);
  CHECK(u->host == "redis.example");
  CHECK(u->port == 6379);
  CHECK(u->db == 0);
  CHECK(u->password == "s@cret");
  u = parse_redis_url("redis://fleet:pw@[::1]:7000/", &why);
  REQUIRE(u);
  CHECK(u->host == "::1");
  CHECK(u->user == "fleet");
  CHECK(u->port == 7000);
  CHECK_FALSE(parse_redis_url("rediss://h:1/0", &why));
  CHECK(why.find("TLS") != std::string::npos);
  CHECK_FALSE(parse_redis_url("http://h/", &why));
  CHECK_FALSE(parse_redis_url("redis://h:0/", &why));
  CHECK_FALSE(parse_redis_url("redis://h:1/x", &why));
  CHECK_FALSE(parse_redis_url("redis://:1/0", &why));
  CHECK_FALSE(parse_redis_url("redis://:%zz@h/0", &why));
}

TEST_CASE("fleet: users_url is refused where it cannot work", "[relay]") {
  const std::string base = R"("server": "127.0.0.1", "server_port": 8388, )";
  auto starts = [](const std::string& text, const std::string& prefix) {
    INFO(text);
    return text.rfind(prefix, 0) == 0;
  };
  CHECK(starts(refusal(Role::Server,
                       "{" + base + R"("method": "aes-256-gcm", "users_url": "rediss://h/0"})"),
               "users_url: "));
  // A classic port's keys are its users' only.
  CHECK(starts(
      refusal(Role::Server, "{" + base + R"("method": "aes-256-gcm", "users_url": "redis://h/0",
                 "password": "x"})"),
      "password: "));
  // A 2022 port needs its server PSK (the iPSK of its users' identity headers).
  CHECK(starts(
      refusal(Role::Server,
              "{" + base + R"("method": "2022-blake3-aes-128-gcm", "users_url": "redis://h/0"})"),
      "password: "));
  CHECK(starts(refusal(Role::Server, "{" + base + R"("method": "2022-blake3-chacha20-poly1305",
                 "users_url": "redis://h/0", "password": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="})"),
               "users_url: "));
  CHECK(
      starts(refusal(Role::Server, "{" + base + R"("method": "none", "users_url": "redis://h/0"})"),
             "users_url: "));
  CHECK(starts(
      refusal(Role::Server, "{" + base + R"("method": "aes-256-gcm", "users_url": "redis://h/0",
                 "users": [{"name": "a", "password": "b"}]})"),
      "users: "));
  CHECK(
      starts(refusal(Role::Server,
                     R"({"server": "127.0.0.1", "method": "aes-256-gcm", "users_url": "redis://h/0",
                 "port_password": {"8001": "a"}})"),
             "users_url: "));
  CHECK(starts(refusal(Role::Server, R"({"users_url": "redis://h/0", "servers": [
                 {"server": "127.0.0.1", "server_port": 8001, "method": "aes-128-gcm",
                  "users": [{"name": "a", "password": "b"}]}]})"),
               "servers[0].users: "));
  CHECK(starts(refusal(Role::Server, R"({"users_url": "redis://h/0", "servers": [
                 {"server": "127.0.0.1", "server_port": 8001, "method": "aes-128-gcm"},
                 {"server": "127.0.0.1", "server_port": 8002, "method": "aes-128-gcm",
                  "password": "x"}]})"),
               "servers[1].password: "));
  CHECK(starts(refusal(Role::Server, R"({"users_url": "redis://h/0", "servers": [
                 {"server": "127.0.0.1", "server_port": 8001, "method": "aes-128-gcm",
                  "plugin": "obfs-server"}]})"),
               "servers[0].plugin: "));
  CHECK(starts(
      refusal(Role::Server, "{" + base + R"("method": "aes-256-gcm", "users_url": "redis://h/0",
                 "plugin": "obfs-server"})"),
      "plugin: "));

  const Config ok = finalized(
      Role::Server, "{" + base + R"("method": "aes-256-gcm", "users_url": "redis://h:1/2"})");
  REQUIRE(ok.inbounds.size() == 1);
  CHECK(ok.inbounds[0].users.empty());
  CHECK(ok.inbounds[0].key.empty());
  CHECK(ok.inbounds[0].users_only);
  // What was refused before: UDP, a 2022 method, several ports, the management API.
  const Config udp = finalized(Role::Server, "{" + base + R"("method": "aes-256-gcm",
      "users_url": "redis://h/0", "mode": "tcp_and_udp", "api_address": "127.0.0.1:9",
      "api_token": "0123456789abcdef"})");
  REQUIRE(udp.inbounds.size() == 1);
  CHECK(udp.inbounds[0].users_only);
  const Config psk = finalized(Role::Server, "{" + base + R"("method": "2022-blake3-aes-128-gcm",
      "users_url": "redis://h/0", "password": "AAAAAAAAAAAAAAAAAAAAAA=="})");
  REQUIRE(psk.inbounds.size() == 1);
  CHECK(psk.inbounds[0].users_only);
  CHECK(psk.inbounds[0].users.empty());
  CHECK(psk.inbounds[0].psk_keys.size() == 1);
  const Config two = finalized(Role::Server, R"({"users_url": "redis://h/0", "servers": [
      {"server": "127.0.0.1", "server_port": 8001, "method": "aes-128-gcm"},
      {"server": "127.0.0.1", "server_port": 8002, "method": "2022-blake3-aes-256-gcm",
       "password": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "mode": "tcp_and_udp"}]})");
  REQUIRE(two.inbounds.size() == 2);
  CHECK(two.inbounds[0].users_only);
  CHECK(two.inbounds[0].key.empty());
  CHECK(two.inbounds[1].users_only);
  // Without users_url nothing is users_only (a port's own key still opens it).
  CHECK_FALSE(finalized(Role::Server, "{" + base + R"("method": "aes-256-gcm", "password": "x"})")
                  .inbounds[0]
                  .users_only);
}

TEST_CASE("fleet: 2022 ports take each user's password as its uPSK, others left out by port",
          "[relay]") {
  const Config two = finalized(Role::Server, R"({"users_url": "redis://h/0", "servers": [
      {"server": "127.0.0.1", "server_port": 8001, "method": "aes-128-gcm"},
      {"server": "127.0.0.1", "server_port": 8002, "method": "2022-blake3-aes-128-gcm",
       "password": "AAAAAAAAAAAAAAAAAAAAAA=="}]})");
  std::vector<std::string> skipped;
  const auto users = fleet_users_from_hash(
      {{"ann", R"({"password": "MTIzNDU2Nzg5MDEyMzQ1Ng=="})"},  // 16 bytes: a uPSK
       {"ben", R"({"password": "short-password"})"},
       {"cid", R"({"password": "MTIzNDU2Nzg5MDEyMzQ1Ng=="})"},  // ann's key
       {"dot", R"({"key": "MTIzNDU2Nzg5MDEyMzQ1Ng=="})"}},      // no "key" alias in user entries
      &skipped);
  REQUIRE(users.size() == 3);
  REQUIRE(skipped.size() == 1);
  CHECK(skipped[0].rfind("dot: ", 0) == 0);
  skipped.clear();
  const Config next = with_fleet_users(two, users, &skipped);
  // The classic port: every password, cid's being ann's is a twin there too.
  REQUIRE(next.inbounds[0].users.size() == 2);
  CHECK(next.inbounds[0].users[0].name == "ann");
  CHECK(next.inbounds[0].users[1].name == "ben");
  REQUIRE(next.inbounds[1].users.size() == 1);
  CHECK(next.inbounds[1].users[0].name == "ann");
  CHECK(next.inbounds[1].users[0].key == std::vector<uint8_t>{'1', '2', '3', '4', '5', '6', '7',
                                                              '8', '9', '0', '1', '2', '3', '4',
                                                              '5', '6'});
  REQUIRE(skipped.size() == 3);
  CHECK(skipped[0].rfind("cid: port 8001: ", 0) == 0);
  CHECK(skipped[1].rfind("ben: port 8002: password: ", 0) == 0);
  CHECK(skipped[2].rfind("cid: port 8002: ", 0) == 0);
}

TEST_CASE("fleet: a user written by the API reads back the same", "[relay]") {
  UserSpec u;
  u.name = "erin";
  u.password = "pw-e";
  u.quota_bytes = 1000000000000;
  u.quota_period = QuotaPeriod::Month;
  u.rate_limit = 5000;
  std::vector<std::string> skipped;
  const auto back = fleet_users_from_hash({{"erin", fleet_user_json(u)}}, &skipped);
  REQUIRE(back.size() == 1);
  CHECK(skipped.empty());
  CHECK(back[0].password == "pw-e");
  CHECK(back[0].quota_bytes == 1000000000000);
  CHECK(back[0].quota_period == QuotaPeriod::Month);
  CHECK(back[0].rate_limit == 5000);
  UserSpec plain;
  plain.name = "fay";
  plain.password = "x";
  CHECK(fleet_user_json(plain) == R"({"password":"x"})");
}

TEST_CASE("fleet: the users hash becomes users, bad entries left out by name", "[relay]") {
  std::vector<std::string> skipped;
  const auto users = fleet_users_from_hash(
      {{"bob", R"({"password": "pw-b", "quota_bytes": 1000, "quota_period": "day"})"},
       {"alice", R"({"password": "pw-a", "rate_limit_bytes_per_second": 5000})"},
       {"mallory", "not json"},
       {"trudy", R"({"password": "pw-t", "quota": 1})"},
       {"eve", R"({"quota_bytes": 1})"}},
      &skipped);
  REQUIRE(users.size() == 2);
  CHECK(users[0].name == "alice");
  CHECK(users[0].rate_limit == 5000);
  CHECK(users[1].name == "bob");
  CHECK(users[1].quota_bytes == 1000);
  CHECK(users[1].quota_period == QuotaPeriod::Day);
  REQUIRE(skipped.size() == 3);
  CHECK(skipped[0].rfind("mallory: ", 0) == 0);
  CHECK(skipped[1].rfind("trudy: ", 0) == 0);
  CHECK(skipped[2].rfind("eve: ", 0) == 0);

  const Config base =
      finalized(Role::Server,
                R"({"server": "127.0.0.1", "server_port": 8388, "method": "aes-128-gcm",
          "users_url": "redis://h/0"})");
  std::vector<UserSpec> with_twin = users;
  with_twin.push_back(users[0]);
  with_twin.back().name = "zed";
  skipped.clear();
  const Config next = with_fleet_users(base, with_twin, &skipped);
  REQUIRE(next.inbounds[0].users.size() == 2);
  CHECK(next.inbounds[0].users[0].key.size() == 16);
  CHECK(next.inbounds[0].users[0].key != next.inbounds[0].users[1].key);
  REQUIRE(skipped.size() == 1);
  CHECK(skipped[0].rfind("zed: ", 0) == 0);
}

TEST_CASE("fleet: counters write this server's share and merge the fleet's total", "[relay]") {
  FleetCounter c;
  uint64_t used = 0;
  // 1000 bytes here; the other server has 500: the local count becomes 1500.
  used = 1000;
  CHECK(c.prepare(0, used) == 1000);
  used += c.merge(1500, 1000);
  CHECK(used == 1500);
  // 200 more here, 100 of them after the write went out; the other server now has 400.
  used += 100;
  CHECK(c.prepare(0, used) == 1100);
  used += 100;
  used += c.merge(2000, 1600);
  CHECK(used == 2100);
  // An outage: a write's reply is lost (no merge), then 400 more bytes; the next write carries
  // the whole share once: 1200 + 400, not 1200 + 100 + 400.
  CHECK(c.prepare(0, used) == 1200);
  used += 400;
  CHECK(c.prepare(0, used) == 1600);
  // Redis restarted empty and only this server wrote so far: the count drops to its own share.
  used += c.merge(1600, used);
  CHECK(used == 1600);
  // A new period starts from 0.
  CHECK(c.prepare(86400, 10) == 10);
}

}  // namespace
}  // namespace ss
