// The UDP NAT's socket slots (relay/udp_nat.h): a freed slot is reused, under a new generation, so
// a worker can open and close sockets without limit, and an id kept from before its socket was
// closed (a reload's, a tun engine's) finds nothing instead of the socket that took its slot.

#include <netinet/in.h>
#include <uv.h>

#include <catch2/catch.hpp>

#include <memory>
#include <vector>

#include "relay/udp_nat.h"
#include "relay/udp_relay.h"

namespace ss {
namespace {

// Counts the datagrams handed to it and drops them (no association is made).
class CountingInbound final : public UdpInbound {
 public:
  explicit CountingInbound(size_t* count) : count_(count) {}
  bool receive(std::span<const uint8_t>, const sockaddr*, const sockaddr*, UdpFlows&,
               std::span<uint8_t>, UdpRequest&, UdpStats&) override {
    ++*count_;
    return false;
  }
  size_t reply(UdpFlowState*, std::span<const uint8_t>, std::span<const uint8_t>,
               std::span<uint8_t>) override {
    return kNoReply;
  }

 private:
  size_t* count_;
};

class NoOutbound final : public UdpOutbound {
 public:
  std::unique_ptr<UdpFlowState> open_flow() override { return nullptr; }
  bool send(UdpFlowState*, std::span<const uint8_t>, std::span<const uint8_t>, std::span<uint8_t>,
            Address&, std::span<const uint8_t>&, UdpStats&) override {
    return false;
  }
  bool receive(UdpFlowState*, std::span<const uint8_t>, const sockaddr*, std::span<uint8_t>,
               UdpPacket&, UdpStats&) override {
    return false;
  }
};

class NoSink final : public PacketSink {
 public:
  void write_packet(std::span<const uint8_t>) override {}
};

struct Fixture {
  uv_loop_t loop;
  UdpRelay relay;
  std::unique_ptr<UdpNat> nat;
  NoSink sink;
  sockaddr_in from{};
  Fixture() {
    uv_loop_init(&loop);
    nat = std::make_unique<UdpNat>(&loop, relay, UdpNatOptions{});
    from.sin_family = AF_INET;
    from.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    from.sin_port = htons(1234);
  }
  ~Fixture() {
    nat->shutdown();
    uv_run(&loop, UV_RUN_DEFAULT);
    nat.reset();
    CHECK(uv_loop_close(&loop) == 0);
  }
  UdpSocketId attach(size_t* count) {
    return nat->attach(std::make_unique<CountingInbound>(count), std::make_unique<NoOutbound>(),
                       &sink);
  }
  void inject(UdpSocketId id) {
    const uint8_t byte = 0;
    nat->inject(id, {&byte, 1}, reinterpret_cast<const sockaddr*>(&from),
                reinterpret_cast<const sockaddr*>(&from));
  }
};

}  // namespace

TEST_CASE("UDP NAT: 70,000 sources attached and removed reuse one slot; stale ids find nothing",
          "[relay][udp]") {
  Fixture f;
  size_t stale_count = 0;
  UdpSocketId stale = f.attach(&stale_count);
  REQUIRE(stale != kNoUdpSocket);
  f.nat->unlisten(stale);
  size_t mismatches = 0;
  for (int i = 0; i < 70'000; ++i) {
    size_t count = 0;
    const UdpSocketId id = f.attach(&count);
    // The same slot, a new generation: the old id is not the new one's.
    if (id == kNoUdpSocket || (id & 0xffff) != 0 || id == stale) ++mismatches;
    // The id of the source removed before: inject, set_inbound and unlisten do nothing to this
    // one.
    f.inject(stale);
    size_t hijack = 0;
    f.nat->set_inbound(stale, std::make_unique<CountingInbound>(&hijack),
                       std::make_unique<NoOutbound>());
    f.nat->unlisten(stale);
    f.inject(id);
    if (count != 1 || hijack != 0) ++mismatches;
    f.nat->unlisten(id);
    f.inject(id);  // removed: nothing
    if (count != 1) ++mismatches;
    stale = id;
  }
  CHECK(mismatches == 0);
  CHECK(stale_count == 0);
  CHECK(f.nat->socket_slots() == 1);
  CHECK(f.nat->sockets_in_use() == 0);
}

TEST_CASE("UDP NAT: bound sockets opened and closed 2,000 times reuse their slots",
          "[relay][udp]") {
  Fixture f;
  size_t count = 0;
  // One source stays attached the whole time: its slot is never given out again.
  const UdpSocketId kept = f.attach(&count);
  size_t failures = 0;
  for (int i = 0; i < 2'000; ++i) {
    UdpSocketId id = kNoUdpSocket;
    const int r = f.nat->listen("127.0.0.1", 0, std::make_unique<CountingInbound>(&count),
                                std::make_unique<NoOutbound>(), false, &id);
    if (r != 0 || id == kNoUdpSocket || id == kept) ++failures;
    f.nat->unlisten(id);
    f.nat->unlisten(id);  // twice: the second does nothing
    // The slot is freed once the handle's close callback has run.
    uv_run(&f.loop, UV_RUN_NOWAIT);
  }
  CHECK(failures == 0);
  CHECK(f.nat->socket_slots() <= 3);
  CHECK(f.nat->sockets_in_use() == 1);
  f.inject(kept);
  CHECK(count == 1);
}

}  // namespace ss
