// Method selection: classic AEAD (with the server's replay filter), none, or the 2022 edition.

#include "relay/method.h"

#include "crypto/none_suite.h"
#include "crypto/replay_filter.h"
#include "crypto/salt_pool.h"
#include "crypto/tcp2022.h"

#include <ctime>

namespace ss {

namespace {

// A client's Config for one upstream server: its method and keys, nothing else.
Config client_config(const ServerSpec& spec, int64_t clock_offset) {
  Config c;
  c.role = Role::Local;
  c.method_kind = spec.method_kind;
  c.cipher = spec.cipher;
  c.method2022 = spec.method2022;
  c.key = spec.key;
  c.psk_keys = spec.psk_keys;
  c.clock_offset = clock_offset;
  return c;
}

}  // namespace

std::shared_ptr<const TcpCipherSuite> make_tcp_suite(const Config& cfg, std::string* error) {
  switch (cfg.method_kind) {
    case MethodKind::None:
      return make_none_suite();
    case MethodKind::Classic: {
      std::shared_ptr<ReplayFilter> replay;
      if (cfg.role == Role::Server && cfg.replay_capacity > 0) {
        replay = std::make_shared<ReplayFilter>(cfg.replay_capacity, cfg.replay_fp_rate);
      }
      return make_classic_suite(*cfg.cipher, cfg.key, std::move(replay));
    }
    case MethodKind::Aead2022: {
      Tcp2022Options o;
      o.method = cfg.method2022;
      if (cfg.role == Role::Server) {
        o.server_psk = cfg.psk_keys.front();
        for (const User2022& u : cfg.users) o.users.push_back({u.name, u.key});
        o.salt_pool = std::make_shared<SaltPool>();  // one per process: shared by every worker
      } else {
        o.client_keys = cfg.psk_keys;
      }
      if (cfg.clock_offset != 0) {
        int64_t offset = cfg.clock_offset;
        o.clock = [offset] { return static_cast<uint64_t>(time(nullptr) + offset); };
      }
      return make_2022_suite(std::move(o), error);
    }
  }
  return nullptr;
}

std::shared_ptr<const TcpCipherSuite> make_client_suite(const ServerSpec& spec,
                                                        int64_t clock_offset, std::string* error) {
  return make_tcp_suite(client_config(spec, clock_offset), error);
}

std::shared_ptr<const UdpCipherSuite> make_udp_suite(const Config& cfg, std::string* error) {
  switch (cfg.method_kind) {
    case MethodKind::None:
      return make_none_udp_suite();
    case MethodKind::Classic:
      return make_classic_udp_suite(*cfg.cipher, cfg.key);
    case MethodKind::Aead2022: {
      Udp2022Options o;
      o.method = cfg.method2022;
      if (cfg.role == Role::Server) {
        o.server_psk = cfg.psk_keys.front();
        for (const User2022& u : cfg.users) o.users.push_back({u.name, u.key});
      } else {
        o.client_keys = cfg.psk_keys;
      }
      const int64_t offset = cfg.clock_offset;
      o.clock = [offset] { return static_cast<int64_t>(time(nullptr)) + offset; };
      return make_2022_udp_suite(std::move(o), error);
    }
  }
  return nullptr;
}

std::shared_ptr<const UdpCipherSuite> make_client_udp_suite(const ServerSpec& spec,
                                                            int64_t clock_offset,
                                                            std::string* error) {
  return make_udp_suite(client_config(spec, clock_offset), error);
}

std::shared_ptr<Router> make_router(const Config& cfg, std::string* error) {
  std::vector<Outbound> outbounds;
  if (cfg.role == Role::Server) {
    Outbound o;
    o.kind = Outbound::Kind::Direct;
    o.bind_address = cfg.local_address;
    o.block_private = !cfg.allow_private_targets;
    outbounds.push_back(std::move(o));
    return std::make_shared<FixedRouter>(std::move(outbounds));
  }
  // A Config not made by finalize_config (tests) has only the flat keys.
  const std::vector<ServerSpec> flat =
      cfg.servers.empty() ? flat_servers(cfg) : std::vector<ServerSpec>{};
  for (const ServerSpec& spec : cfg.servers.empty() ? flat : cfg.servers) {
    Outbound o;
    o.kind = Outbound::Kind::Shadowsocks;
    if (std::optional<Address> a = make_address(spec.host, spec.port)) {
      o.server = *a;
    } else {
      o.server.type = Address::Type::Domain;
      o.server.host = spec.host;
      o.server.port = spec.port;
    }
    o.suite = make_client_suite(spec, cfg.clock_offset, error);
    if (!o.suite) return nullptr;
    outbounds.push_back(std::move(o));
  }
  return std::make_shared<FixedRouter>(std::move(outbounds));
}

}  // namespace ss
