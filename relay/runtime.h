#pragma once
// The runtime snapshot: what the engine runs on, built once from the specs and never changed.
// Listeners hold the current one and connections take a reference at accept
// (std::shared_ptr<const Runtime>), so a reload can give a listener a new snapshot while live
// connections finish on theirs. State that outlives a snapshot (replay filters, counters) is
// shared by reference count, never by raw pointer.

#include <memory>
#include <string>
#include <vector>

#include "crypto/tcp_cipher.h"
#include "relay/config.h"
#include "relay/outbound.h"

namespace ss {

class ReplayFilter;
class SaltPool;
class UserLimits;

struct Runtime {
  // The Shadowsocks inbounds' suites (ss-server), indexed like Specs::inbounds (a listener's
  // ListenerSpec::inbound), with the replay filter or salt pool; empty on the clients.
  std::vector<std::shared_ptr<const TcpCipherSuite>> inbound_suites;
  // Picks each request's outbound; the outbounds (and their suites) live as long as it does.
  std::shared_ptr<Router> router;
  // ss-server's --acl with client rules: clients it refuses are closed at accept. Null: none.
  std::shared_ptr<const Acl> client_acl;
  Limits limits;
  TcpOptions tcp;
  // The process's classic replay filter (ss-server: request and response salts; ss-local,
  // ss-tunnel, ss-redir: its classic servers' response salts and its own request salts), and the
  // 2022 inbound's salt pool; null where there is none. The suites hold them; here for the state
  // file (relay/replay_state).
  std::shared_ptr<ReplayFilter> replay_filter;
  std::shared_ptr<SaltPool> salt_pool;
  // ss-server: the users with a quota or a rate limit (relay/user_limits.h); null: none. Its
  // states outlive the snapshot: a reload's new table takes them over (keep_states_of).
  std::shared_ptr<UserLimits> user_limits;
};

// The snapshot of `specs`. Null, with a one-line reason in *error that starts with the key at
// fault ("password: ..." or "servers: ..."), if keys do not suit their method.
// With `previous` (a new snapshot replacing it: a refresh, a reload), its replay filter and salt
// pool are kept, so salts seen before the change are still refused after it.
std::shared_ptr<const Runtime> make_runtime(const Specs& specs, std::string* error = nullptr,
                                            const Runtime* previous = nullptr);

// The same for a reload: the new snapshot takes `carry`'s replay filter and salt pool (when it has
// them) instead of new ones, so salts seen before the reload are still refused after it.
std::shared_ptr<const Runtime> make_runtime(const Specs& specs, const Runtime& carry,
                                            std::string* error = nullptr);

// The same from a config (finalized, or filled by hand in tests): make_runtime(specs_of(cfg)).
std::shared_ptr<const Runtime> make_runtime(const Config& cfg, std::string* error = nullptr);

}  // namespace ss
