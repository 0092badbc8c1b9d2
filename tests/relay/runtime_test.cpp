// The runtime snapshot: a connection keeps the snapshot it was accepted with (its suites, router
// and outbounds) while its listener is given another; new connections take the new one, and the
// old snapshot is freed when its last connection ends.

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "crypto/cipher_spec.h"
#include "crypto/stream.h"
#include "relay/runtime.h"
#include "tests/relay/server_fixture.h"
#include "tests/support/net.h"

using namespace ss;
using namespace ss::test;
using namespace std::chrono_literals;

namespace {

// One client of the in-process ss-server, its own cipher state in both directions.
class Client {
 public:
  Client(const CipherSpec& spec, const Config& cfg, uint16_t server_port, uint16_t target_port)
      : enc_(spec, cfg.key), dec_(spec, cfg.key), s_(connect_tcp("127.0.0.1", server_port)) {
    header_ = {0x01,
               127,
               0,
               0,
               1,
               static_cast<uint8_t>(target_port >> 8),
               static_cast<uint8_t>(target_port)};
  }
  // Sends `text` (after the address header, the first time) and returns what came back, or ""
  // if the server closed first.
  std::string echo(const std::string& text, std::chrono::milliseconds wait = 5000ms) {
    Bytes pt = header_;
    header_.clear();
    pt.insert(pt.end(), text.begin(), text.end());
    Bytes ct(enc_.sealed_size(pt.size()));
    ct.resize(enc_.seal(pt.data(), pt.size(), ct.data()));
    send_all(s_, ct);
    std::string got;
    while (got.size() < text.size()) {
      Bytes b;
      try {
        b = recv_exact(s_, 1, wait);
      } catch (const NetError&) {
        return "";
      }
      if (b.empty()) return "";
      Bytes out(dec_.max_output(1));
      const auto r = dec_.feed(b.data(), 1, out.data());
      if (r.status == DecryptStatus::Error) return "";
      got.append(reinterpret_cast<const char*>(out.data()), r.produced);
    }
    return got;
  }

 private:
  StreamEncryptor enc_;
  StreamDecryptor dec_;
  Socket s_;
  Bytes header_;
};

}  // namespace

TEST_CASE("runtime: a connection keeps its snapshot while the listener's is swapped", "[relay]") {
  const CipherSpec& spec = *find_cipher("aes-128-gcm");
  TargetServer target(TargetBehavior::echo());
  const Config first = server_config(spec, "first password", /*allow_private_targets=*/true);
  const Config second = server_config(spec, "second password", /*allow_private_targets=*/true);
  LoopServer server(first);
  std::weak_ptr<const Runtime> old_runtime = server.first_runtime();

  std::optional<Client> live;
  live.emplace(spec, first, server.port(), target.port());
  CHECK(live->echo("before the swap") == "before the swap");

  std::shared_ptr<const Runtime> next = make_runtime(second);
  REQUIRE(next);
  server.set_runtime(next);
  // The listener dropped the first snapshot; the live connection still holds it.
  CHECK_FALSE(old_runtime.expired());
  CHECK(live->echo("after the swap") == "after the swap");

  // New connections take the second snapshot: its key works, the first one's does not.
  Client fresh(spec, second, server.port(), target.port());
  CHECK(fresh.echo("new key") == "new key");
  Client stale(spec, first, server.port(), target.port());
  CHECK(stale.echo("old key", 1000ms).empty());

  // The first snapshot goes with its last connection.
  live.reset();
  for (int i = 0; i < 200 && !old_runtime.expired(); ++i) std::this_thread::sleep_for(10ms);
  CHECK(old_runtime.expired());
  CHECK(server.finish() == 0);
}
