// tun mode's configuration: rust's "protocol": "tun" locals with tun_interface_name and
// tun_interface_address, the --tun/--tun-address flags, outbound_fwmark, and the refusals.

#include <catch2/catch.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "relay/config.h"
#include "tests/support/config_text.h"

namespace ss {
namespace {

using test::finalized;
using test::refusal;

std::optional<Config> flags(std::vector<const char*> args) {
  args.insert(args.begin(), "ss-local");
  std::ostringstream out, warn;
  return load_config(Role::Local, static_cast<int>(args.size()), args.data(), out, warn);
}

constexpr const char* kServer =
    R"("server": "10.0.0.9", "server_port": 8388, "password": "x", "method": "aes-256-gcm")";

}  // namespace

TEST_CASE("tun config: a tun local, beside a socks one, with outbound_fwmark", "[relay]") {
  const Config c = finalized(Role::Local, std::string("{") + kServer +
                                              R"(, "outbound_fwmark": 21331, "locals": [
      {"protocol": "tun", "tun_interface_name": "tun7", "tun_interface_address": "10.255.0.1/24"},
      {"protocol": "socks", "local_port": 1080}]})");
  REQUIRE(c.listeners.size() == 2);
  const ListenerSpec& t = c.listeners[0];
  CHECK(t.protocol == ListenerSpec::Protocol::Tun);
  CHECK(t.tun_name == "tun7");
  CHECK(t.tun_cidr == "10.255.0.1/24");
  CHECK(t.address == "10.255.0.1");  // the NAT listener sits on the device's own address
  CHECK(t.port == 0);                // picked at start-up
  CHECK(c.listeners[1].protocol == ListenerSpec::Protocol::Mixed);
  CHECK(c.outbound_fwmark == 21331);
  CHECK(specs_of(c).tcp.fwmark == 21331);
  CHECK(specs_of(c).balancer.fwmark == 21331);
}

TEST_CASE("tun config: --tun and --tun-address, alone or with -l", "[relay]") {
  auto c = flags({"-s", "10.0.0.9", "-p", "8388", "-k", "x", "--tun", "tun3", "--tun-address",
                  "192.168.77.1/30", "--outbound-fwmark", "7"});
  REQUIRE(c);
  REQUIRE(c->listeners.size() == 1);
  CHECK(c->listeners[0].protocol == ListenerSpec::Protocol::Tun);
  CHECK(c->listeners[0].tun_name == "tun3");
  CHECK(c->listeners[0].address == "192.168.77.1");
  CHECK(c->outbound_fwmark == 7);
  CHECK(c->listeners[0].tun_cidr6.empty());
  // Dual stack: an IPv6 address/prefix after the IPv4 one.
  c = flags({"-s", "10.0.0.9", "-p", "8388", "-k", "x", "--tun", "tun3", "--tun-address",
             "10.255.0.1/24,fd55::1/64"});
  REQUIRE(c);
  CHECK(c->listeners[0].tun_cidr == "10.255.0.1/24");
  CHECK(c->listeners[0].tun_cidr6 == "fd55::1/64");
  CHECK(c->listeners[0].address == "10.255.0.1");
  c = flags({"-s", "10.0.0.9", "-p", "8388", "-k", "x", "-l", "1080", "--tun", "tun3",
             "--tun-address", "10.1.0.1/16"});
  REQUIRE(c);
  REQUIRE(c->listeners.size() == 2);
  CHECK(c->listeners[0].protocol == ListenerSpec::Protocol::Mixed);
  CHECK(c->listeners[1].protocol == ListenerSpec::Protocol::Tun);
}

TEST_CASE("tun config: missing or malformed keys are refused by name", "[relay]") {
  const std::string head = std::string("{") + kServer + R"(, "locals": [)";
  CHECK(refusal(Role::Local, head + R"({"protocol": "tun", "tun_interface_address":
        "10.255.0.1/24"}]})") ==
        "locals[0].tun_interface_name: missing (a tun needs its device "
        "name)");
  CHECK(refusal(Role::Local, head + R"({"protocol": "tun", "tun_interface_name": "t"}]})")
            .find("locals[0].tun_interface_address: must be an IPv4 address/prefix") == 0);
  CHECK(refusal(Role::Local, head + R"({"protocol": "tun", "tun_interface_name": "t",
        "tun_interface_address": "fd00::1/64"}]})")
            .find("locals[0].tun_interface_address: must be an IPv4 address/prefix") == 0);
  CHECK(refusal(Role::Local, head + R"({"protocol": "tun", "tun_interface_name": "t",
        "tun_interface_address": "10.0.0.1/24,10.0.1.1/24"}]})")
            .find("locals[0].tun_interface_address: must be an IPv4 address/prefix") == 0);
  CHECK(refusal(Role::Local, head + R"({"protocol": "socks", "local_port": 1,
        "tun_interface_name": "t"}]})")
            .find("locals[0]: tun_interface_name/tun_interface_address are for") == 0);
  CHECK(refusal(Role::Local, head + R"({"protocol": "tun", "tun_interface_name":
        "a-very-long-name-x", "tun_interface_address": "10.0.0.1/24"}]})")
            .find("locals[0].tun_interface_name: longer than 15") == 0);
  std::ostringstream out, warn;
  const char* argv[] = {"ss-local",      "-s",         "h", "-p", "1", "-k", "x", "-l", "1",
                        "--tun-address", "10.0.0.1/24"};
  CHECK_THROWS_WITH(load_config(Role::Local, 11, argv, out, warn),
                    "--tun-address: needs --tun NAME");
  // Only ss-local has a tun.
  CHECK_FALSE(refusal(Role::Tunnel, std::string("{") + kServer + R"(, "local_port": 1,
        "tunnel_address": "1.2.3.4:5", "locals": [{"protocol": "tun"}]})")
                  .empty());
}

}  // namespace ss

namespace ss {

TEST_CASE("tun config: DNS modes, pools and resolver, misuse refused by key", "[relay]") {
  const std::string head = std::string("{") + kServer +
                           R"(, "locals": [{"protocol": "tun", "tun_interface_name": "t",
      "tun_interface_address": "10.255.0.1/24")";
  Config c = finalized(Role::Local, head + R"(, "tun_dns": "fake",
      "fake_dns_ipv4_network": "100.64.0.0/10", "fake_dns_record_expire_duration": 30,
      "fake_dns_database_path": "/var/lib/ss/fake.db"}]})");
  CHECK(c.listeners[0].tun_dns == "fake");
  CHECK(c.listeners[0].fake_dns_database_path == "/var/lib/ss/fake.db");
  CHECK(c.listeners[0].fake_dns_ipv4_network == "100.64.0.0/10");
  CHECK(c.listeners[0].fake_dns_ipv6_network == "fc00::/18");  // the default
  CHECK(c.listeners[0].fake_dns_expire_s == 30);
  CHECK_FALSE(c.listeners[0].tun_dns_resolver);
  c = finalized(Role::Local,
                head + R"(, "tun_dns": "relay", "tun_dns_resolver": "[2001:db8::53]:53"}]})");
  REQUIRE(c.listeners[0].tun_dns_resolver);
  CHECK(c.listeners[0].tun_dns_resolver->to_string() == "[2001:db8::53]:53");

  CHECK(refusal(Role::Local, head + R"(, "tun_dns": "fakeip"}]})")
            .find("locals[0].tun_dns: must be \"fake\" or \"relay\"") == 0);
  CHECK(refusal(Role::Local, head + R"(, "tun_dns": "relay"}]})")
            .find("locals[0].tun_dns_resolver: missing") == 0);
  CHECK(refusal(Role::Local,
                head + R"(, "tun_dns": "relay", "tun_dns_resolver": "dns.example:53"}]})")
            .find("locals[0].tun_dns_resolver: must be an IP address and port") == 0);
  CHECK(refusal(Role::Local, head + R"(, "tun_dns_resolver": "9.9.9.9:53"}]})")
            .find("locals[0].tun_dns_resolver: needs \"tun_dns\"") == 0);
  CHECK(refusal(Role::Local, head + R"(, "fake_dns_ipv4_network": "198.18.0.0/15"}]})")
            .find("locals[0]: the fake_dns_* keys need \"tun_dns\": \"fake\"") == 0);
  CHECK(
      refusal(Role::Local, head + R"(, "tun_dns": "fake", "fake_dns_ipv4_network": "fc00::/18"}]})")
          .find("locals[0].fake_dns_ipv4_network: must be an IPv4 network") == 0);
  CHECK(refusal(Role::Local,
                head + R"(, "tun_dns": "fake", "fake_dns_ipv6_network": "fc00::/127"}]})")
            .find("locals[0].fake_dns_ipv6_network: must be an IPv6 network") == 0);
  CHECK(refusal(Role::Local, head + R"(, "tun_dns": "fake", "fake_dns_database_path": ""}]})")
            .find("locals[0].fake_dns_database_path: must be a file path") == 0);
  CHECK(refusal(Role::Local, head + R"(, "tun_dns": "relay", "tun_dns_resolver": "9.9.9.9:53",
      "fake_dns_database_path": "/tmp/x"}]})")
            .find("locals[0]: the fake_dns_* keys need \"tun_dns\": \"fake\"") == 0);
  CHECK(refusal(Role::Local, std::string("{") + kServer +
                                 R"(, "locals": [{"protocol": "socks", "local_port": 1080,
      "tun_dns": "fake"}]})")
            .find("locals[0]: tun_dns, tun_dns_resolver and the fake_dns_* keys are for") == 0);
}

}  // namespace ss
