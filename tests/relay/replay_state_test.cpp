// The replay state file (relay/replay_state): round trips of the classic filter and the 2022 salt
// pool, and every kind of damaged file refused whole (truncated, wrong magic, wrong version, a
// flipped bit, another filter size), the atomic write, and the load/save policy.

#include "relay/replay_state.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "crypto/kdf.h"
#include "crypto/replay_filter.h"
#include "crypto/salt_pool.h"
#include "tests/support/temp_dir.h"

using namespace ss;
using Bytes = std::vector<uint8_t>;

namespace {

Bytes salt(int i, size_t n = 32) {
  Bytes b(n);
  random_bytes(b);
  b[0] = static_cast<uint8_t>(i);
  return b;
}

Bytes read_all(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

}  // namespace

TEST_CASE("replay state: the classic filter and the salt pool survive a round trip", "[relay]") {
  ReplayFilter f(5000, 1e-10);
  SaltPool pool(60);
  std::vector<Bytes> seen, fresh, old_pool, new_pool;
  for (int i = 0; i < 3000; ++i) {
    seen.push_back(salt(i));
    CHECK_FALSE(f.check_and_insert(seen.back()));
  }
  for (int i = 0; i < 50; ++i) {
    old_pool.push_back(salt(i, 16));
    CHECK(pool.check_and_insert(old_pool.back(), 1000));
    new_pool.push_back(salt(i, 32));
    CHECK(pool.check_and_insert(new_pool.back(), 1050));
  }
  const Bytes file = encode_replay_state(&f, &pool);
  // Much smaller than the two bit arrays (2 x 27 KB here): zero runs are compressed.
  CHECK(file.size() < 2 * f.bits_per_filter() / 8);

  ReplayFilter f2(5000, 1e-10);
  SaltPool pool2(60);
  // At 1100 the entries inserted at 1000 are 100 s old: dropped; those from 1050 are kept.
  CHECK(decode_replay_state(file, &f2, &pool2, 1100) == "");
  for (const Bytes& s : seen) CHECK(f2.check_and_insert(s));
  for (int i = 0; i < 100; ++i) CHECK_FALSE(f2.check_and_insert(salt(i)));
  CHECK(pool2.size() == new_pool.size());
  for (const Bytes& s : new_pool) CHECK_FALSE(pool2.check_and_insert(s, 1100));
  for (const Bytes& s : old_pool) CHECK(pool2.check_and_insert(s, 1100));

  // The file holds no salt in the clear.
  for (const Bytes& s : new_pool) {
    CHECK(std::search(file.begin(), file.end(), s.begin(), s.end()) == file.end());
  }
  CHECK(std::search(file.begin(), file.end(), seen[0].begin(), seen[0].end()) == file.end());

  // A process with only one of the two loads its part and skips the other.
  SaltPool pool3(60);
  CHECK(decode_replay_state(file, nullptr, &pool3, 1060) == "");
  CHECK(pool3.size() == 100);
}

TEST_CASE("replay state: damaged files are refused whole", "[relay]") {
  ReplayFilter f(1000, 1e-10);
  SaltPool pool(60);
  const Bytes s1 = salt(1), s2 = salt(2);
  f.check_and_insert(s1);
  pool.check_and_insert(s2, 500);
  const Bytes good = encode_replay_state(&f, &pool);

  auto refused = [&](const Bytes& file, const std::string& why) {
    ReplayFilter g(1000, 1e-10);
    SaltPool p(60);
    const std::string err = decode_replay_state(file, &g, &p, 510);
    INFO(err);
    CHECK(err.find(why) != std::string::npos);
    // Nothing was loaded.
    CHECK_FALSE(g.check_and_insert(s1));
    CHECK(p.size() == 0);
  };
  SECTION("truncated") {
    for (size_t n : {size_t{0}, size_t{5}, size_t{12}, good.size() / 2, good.size() - 1}) {
      refused(Bytes(good.begin(), good.begin() + static_cast<long>(n)),
              n < 44 ? "short" : "checksum");
    }
  }
  SECTION("wrong magic") {
    Bytes b = good;
    b[0] ^= 1;
    refused(b, "not a replay state file");
  }
  SECTION("wrong version") {
    Bytes b = good;
    b[8] = static_cast<uint8_t>(kReplayStateVersion + 1);
    refused(b, "version " + std::to_string(kReplayStateVersion + 1));
  }
  SECTION("a flipped bit anywhere") {
    for (size_t i = 12; i < good.size(); i += 7) {
      Bytes b = good;
      b[i] ^= 0x10;
      refused(b, "checksum");
    }
  }
  SECTION("another capacity") {
    ReplayFilter g(2000, 1e-10);
    CHECK(decode_replay_state(good, &g, nullptr, 510).find("capacity") != std::string::npos);
    CHECK_FALSE(g.check_and_insert(s1));
  }
}

TEST_CASE("replay state: the file is written atomically and loaded at start", "[relay]") {
  const ss::test::TempDir dir("ss-replay-state");
  auto f = std::make_shared<ReplayFilter>(1000, 1e-10);
  auto pool = std::make_shared<SaltPool>(60);
  uint64_t now = 2000;
  auto clock = [&now] { return now; };
  const std::string sub = dir / "state";
  ReplayStateFile file(sub, "ss-server-1.replay", f, pool, clock);
  CHECK(file.path() == sub + "/ss-server-1.replay");
  file.load();  // missing: logged, nothing changes
  file.save();  // nothing recorded: nothing written
  CHECK_FALSE(std::filesystem::exists(file.path()));

  const Bytes s1 = salt(1), s2 = salt(2);
  f->check_and_insert(s1);
  pool->check_and_insert(s2, now);
  file.save();
  REQUIRE(std::filesystem::exists(file.path()));
  CHECK_FALSE(std::filesystem::exists(file.path() + ".tmp"));
  CHECK((std::filesystem::status(sub).permissions() & std::filesystem::perms::others_all) ==
        std::filesystem::perms::none);
  CHECK((std::filesystem::status(file.path()).permissions() & std::filesystem::perms::group_all) ==
        std::filesystem::perms::none);

  // A restarted process.
  auto f2 = std::make_shared<ReplayFilter>(1000, 1e-10);
  auto pool2 = std::make_shared<SaltPool>(60);
  now = 2030;
  ReplayStateFile again(sub, "ss-server-1.replay", f2, pool2, clock);
  again.load();
  CHECK(f2->check_and_insert(s1));
  CHECK_FALSE(pool2->check_and_insert(s2, now));

  // A corrupt file: ignored, the process starts with empty filters.
  Bytes bytes = read_all(file.path());
  bytes[bytes.size() / 2] ^= 0xff;
  REQUIRE(write_file_atomically(file.path(), bytes) == "");
  auto f3 = std::make_shared<ReplayFilter>(1000, 1e-10);
  ReplayStateFile third(sub, "ss-server-1.replay", f3, nullptr, clock);
  third.load();
  CHECK_FALSE(f3->check_and_insert(s1));

  // A directory that cannot be made: save logs and does not throw.
  ReplayStateFile nowhere("/proc/ss-no-such-dir", "x.replay", f3, nullptr, clock);
  nowhere.save(true);
  CHECK_FALSE(std::filesystem::exists("/proc/ss-no-such-dir/x.replay"));
}
