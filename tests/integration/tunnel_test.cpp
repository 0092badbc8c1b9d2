// ss-tunnel -L 127.0.0.1:<echo> -> ss-server -> echo target, byte-exact.

#include <catch2/catch.hpp>

#include "tests/integration/harness.h"

namespace ss::test {
namespace {

using namespace std::chrono_literals;

void tunnel_echo(Impl tunnel, Impl server) {
  const std::string method = GENERATE(as<std::string>{}, "chacha20-ietf-poly1305", "aes-128-gcm");
  INFO("ss-tunnel: " << impl_name(tunnel) << ", ss-server: " << impl_name(server)
                     << ", method: " << method);
  const NodeOptions opt{method, random_token(24), 60, {}};
  TargetServer target(TargetBehavior::echo());
  Node srv = start_server(server, opt);
  Node tun = start_tunnel(tunnel, opt, srv.port, "127.0.0.1", target.port());

  for (size_t size : {size_t{1}, size_t{16384}, size_t{1} << 20}) {
    INFO("payload " << size << " bytes");
    Socket s = connect_tcp("127.0.0.1", tun.port);
    const Bytes payload = random_bytes(size);
    const TransferResult r = duplex_transfer(s, payload, payload.size(), 30s);
    CHECK(r.received == size);
    CHECK(to_hex(r.received_sha256) == sha256_hex(payload));
  }

  check_clean_shutdown(tun);
  check_clean_shutdown(srv);
}

}  // namespace

TEST_CASE("interop control: ss-tunnel libev x libev", "[integration][interop][libev-only]") {
  tunnel_echo(Impl::Libev, Impl::Libev);
}

TEST_CASE("ss-tunnel ours x ours", "[integration]") {
  tunnel_echo(Impl::Ours, Impl::Ours);
}

TEST_CASE("interop: our ss-tunnel x libev ss-server", "[integration][interop]") {
  tunnel_echo(Impl::Ours, Impl::Libev);
}

TEST_CASE("interop: libev ss-tunnel x our ss-server", "[integration][interop]") {
  tunnel_echo(Impl::Libev, Impl::Ours);
}

}  // namespace ss::test
