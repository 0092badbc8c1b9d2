#pragma once
// Configuration shared by ss-local, ss-tunnel, ss-redir and ss-server: shadowsocks-libev's JSON
// keys and command-line flags. Flags override the file.

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crypto/aead2022.h"
#include "crypto/cipher_spec.h"
#include "relay/address.h"

#include <nlohmann/json_fwd.hpp>

namespace ss {

class UserTable;
class Acl;

enum class Role { Local, Server, Tunnel, Redir, Manager };
// ss-server and ss-manager (server/manager: ss-server's ports, added and removed at run time by
// shadowsocks-libev's manager protocol) serve Shadowsocks ports; the others are clients.
constexpr bool serves_ports(Role r) {
  return r == Role::Server || r == Role::Manager;
}
enum class Mode { TcpOnly, TcpAndUdp, UdpOnly };
// Classic AEAD (SIP004/SIP007), no encryption ("none", for measurements only), or the 2022
// edition (SIP022/SIP023).
enum class MethodKind { Classic, None, Aead2022 };

// One line that names the offending key or flag, e.g. "method: unknown method 'foo'".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A user of a Shadowsocks inbound: a name for logs and metrics, and the user's key. With a 2022
// method a SIP023 user (the password is the base64 uPSK); with a classic method a key-trial user
// (the password derives the master key, as a client's does).
// A user's limits (relay/user_limits.h): "quota_bytes" per "quota_period" (bytes ss-server reads
// for the user, both directions summed; 0: none) and "rate_limit_bytes_per_second" (the same
// bytes, both directions summed; 0: none).
enum class QuotaPeriod : uint8_t { None, Day, Month };
struct UserSpec {
  std::string name;
  std::string password;  // as configured (never logged)
  std::vector<uint8_t> key;
  uint64_t quota_bytes = 0;
  QuotaPeriod quota_period = QuotaPeriod::None;
  uint64_t rate_limit = 0;
};
using User2022 = UserSpec;

// The limits the engine enforces, whatever the binary.
struct Limits {
  int timeout = 60;                    // idle timeout, seconds
  int udp_timeout = 60;                // idle seconds before a UDP association expires
  size_t udp_max_associations = 1024;  // least recently used evicted beyond this
  size_t max_connections = 0;          // concurrent TCP connections; 0 = from the descriptor limit
  size_t replay_capacity = 1'000'000;  // classic Shadowsocks inbound's replay filter; 0 = off
  double replay_fp_rate = 1e-10;
};

// Socket and resolver options of every TCP connection.
struct TcpOptions {
  bool no_delay = false;
  bool ipv6_first = false;
  bool fast_open = false;
  uint32_t fwmark = 0;  // "outbound_fwmark": SO_MARK on outbound sockets (0: none)
};

// The direct outbound (ss-server relays to the targets itself).
struct DirectSpec {
  std::string bind_address;   // outbound connections bind here; empty: any
  bool block_private = true;  // refuse loopback, private, link-local... targets (SSRF guard)
};

// A SIP003 plugin (relay/plugin.h): the program (found on PATH), its options (given to it as
// SS_PLUGIN_OPTIONS) and arguments (shadowsocks-rust's "plugin_args"). No name: no plugin.
struct PluginSpec {
  std::string name;
  std::string opts;
  std::vector<std::string> args;
  bool empty() const { return name.empty(); }
};

// One upstream Shadowsocks server of ss-local/ss-tunnel: its address and its method's keys.
// libev's flat keys give one per "server" host, all with the same method; shadowsocks-rust's
// "servers" list gives each its own.
struct ServerSpec {
  std::string host;
  uint16_t port = 0;
  std::string method;
  std::string password;  // as configured (never logged)
  std::string key_b64;
  // The key its errors are reported under: "password" (libev's flat keys) or "servers".
  std::string source = "password";
  double weight = 1.0;  // rust's "weight": its share of new connections in the weighted mode
  std::string tag;      // rust's "remarks", or a URI's #tag (for logs and --url)
  PluginSpec plugin;    // its SIP003 plugin (TCP goes through it; UDP goes to host:port)
  // Where TCP connects instead of host:port: the plugin's loopback end, set when the plugin is
  // arranged (relay/plugin.h), not by the config.
  std::optional<Address> tcp_via;
  // Derived by finalize_config.
  MethodKind method_kind = MethodKind::Classic;
  const CipherSpec* cipher = nullptr;
  const Method2022* method2022 = nullptr;
  std::vector<uint8_t> key;
  std::vector<std::vector<uint8_t>> psk_keys;
  // ss-server's inbounds only: the users on this port (SIP023 for 2022; key trial for classic)
  // and the entry's own "mode" (else the top-level one).
  std::vector<UserSpec> users;
  std::optional<Mode> mode{};
  // ss-server: the users are the port's only keys (users_url: they come from Redis); with none,
  // every client is refused (a 2022 port's PSK alone never opens it).
  bool users_only = false;
};

// How a client picks among several servers (relay/balancer.h): shadowsocks-rust's "balancer"
// keys plus ours for the probe and the hysteresis. Times in milliseconds.
struct BalancerSpec {
  enum class Pick : uint8_t { Best, Weighted, RoundRobin };
  Pick mode = Pick::Best;
  uint64_t max_server_rtt_ms = 5'000;        // a probe slower than this failed
  uint64_t check_interval_ms = 10'000;       // every server is probed this often
  uint64_t check_best_interval_ms = 0;       // the current one more often (0: check_interval)
  uint64_t min_switch_interval_ms = 30'000;  // never switch more often, but on failure
  double switch_margin = 0.2;                // another must score this much better (fraction) ...
  int switch_rounds = 3;                     // ... in this many rounds in a row
  int window = 10;                           // probes remembered per server for the score
  uint64_t connect_timeout_ms = 5'000;       // a connect to a server slower than this failed
  // The probe's target through the server ("host:port"); empty: a TCP handshake with the server
  // only (see relay/balancer.h for why).
  std::optional<Address> probe_target;
  // The UDP probe's target through the server (a DNS query is sent to it); empty: probe_target's,
  // and with neither, no UDP probes (UDP follows the TCP probes' health).
  std::optional<Address> udp_probe_target;
  uint32_t fwmark = 0;  // the probes' SO_MARK (from "outbound_fwmark", not a balancer key)
};

// shadowsocks-rust's "online_config" (SIP008, relay/online_config.h): the server list fetched
// over HTTPS at start and every update_interval, beside the configured servers.
struct OnlineConfigSpec {
  std::string url;                    // "config_url": https:// only
  uint64_t update_interval_s = 3600;  // "update_interval", seconds (rust's default)
  std::string ca_file;                // ours: PEM CA certificates to trust; empty: the system store
};

// One listening socket and the protocol it serves. libev's flat keys give ss-local one mixed
// listener, ss-tunnel one tunnel and ss-server one Shadowsocks listener per "server" address;
// shadowsocks-rust's "locals" list gives ss-local several.
class TunDevice;

struct ListenerSpec {
  enum class Protocol : uint8_t { Mixed, Tunnel, Redir, Shadowsocks, Tun, Dns };
  Protocol protocol = Protocol::Mixed;
  std::string address;
  uint16_t port = 0;
  std::optional<Address> forward;  // Tunnel: the fixed destination
  bool transparent = false;        // Redir: connections arrive by TPROXY, not REDIRECT
  // TCP: a TCP listener (Mixed: CONNECT served; its listener stays for UDP ASSOCIATE anyway).
  bool tcp = true;
  // UDP: a UDP socket on the same port, in every worker (Mixed: UDP ASSOCIATE served).
  bool udp = false;
  std::shared_ptr<const UserTable> users = nullptr;  // Mixed: the proxy's own users (auth), or none
  std::optional<Mode> mode{};  // rust's per-local "mode" (tcp/udp follow it); else the top-level
  size_t inbound = 0;          // Shadowsocks: its method and keys, an index into Specs::inbounds
  // Shadowsocks: the SIP003 plugin that listens on address:port in our stead and hands TCP to
  // our listener on a loopback port (relay/plugin.h); UDP stays on address:port.
  PluginSpec plugin{};
  // A plugin's listener moved to loopback (relay/plugin.h): the public port its plugin serves,
  // which metrics and ss-manager's ping count by. 0: none.
  uint16_t public_port = 0;
  // Tun (client/tun): the device's name and "address/prefix"; the device itself once start-up
  // has created it (address and port are then its NAT listener's).
  std::string tun_name{};
  std::string tun_cidr{};   // IPv4
  std::string tun_cidr6{};  // IPv6, optional
  std::shared_ptr<TunDevice> tun_device{};
  // Tun: DNS on the device (client/tun/tun_dns.h): "" (none), "fake" or "relay"; the resolver
  // ("IP:PORT") relay mode sends to; fake mode's pools (rust's fake-dns keys) and expiry.
  std::string tun_dns{};
  std::optional<Address> tun_dns_resolver{};
  std::string fake_dns_ipv4_network{"198.18.0.0/15"};
  std::string fake_dns_ipv6_network{"fc00::/18"};
  uint32_t fake_dns_expire_s = 600;
  std::string fake_dns_database_path{};  // the fake table's file (client/tun/fake_dns_file.cpp)
  // Dns (client/dns): the resolver asked directly (an IP, rust's local_dns_address/_port), the
  // one asked through the tunnel (remote_dns_address/_port), and the answer cache's entries.
  std::optional<Address> local_dns{};
  std::optional<Address> remote_dns{};
  size_t dns_cache_size = 1024;
};

// What the engine is built from (see relay/runtime.h): pure, validated, with no field whose
// meaning depends on the binary. ss-server has Shadowsocks listeners, the inbound method and a
// direct outbound; ss-local, ss-tunnel and ss-redir have local listeners and upstream servers.
struct Specs {
  std::vector<ListenerSpec> listeners;
  std::vector<ServerSpec> servers;  // the Shadowsocks outbounds (upstream servers)
  BalancerSpec balancer;            // how a request picks among them
  // ss-server: each Shadowsocks listener's method, keys and users (ListenerSpec::inbound); one
  // with libev's flat keys, one per port with "port_password" or a server-side "servers".
  std::vector<ServerSpec> inbounds;
  std::optional<DirectSpec> direct;  // the direct outbound
  Limits limits;
  TcpOptions tcp;
  int64_t clock_offset = 0;  // seconds added to the clock (2022 timestamps; tests)
  // The ACL: ss-local/ss-redir route by it (bypass: direct); the Shadowsocks inbound refuses
  // clients and the direct outbound targets by it. Null: none.
  std::shared_ptr<const Acl> acl;
};

struct Config {
  Role role = Role::Local;
  // Local/Tunnel: the ss-server host(s) to connect to. Server: the address(es) to listen on.
  std::vector<std::string> server;
  uint16_t server_port = 0;
  // Local/Tunnel: address to listen on. Server: address outbound connections bind to (may be
  // empty).
  std::string local_address;
  uint16_t local_port = 0;
  // ss-server: name servers for target lookups (c-ares CSV form); empty: the system's.
  std::string nameserver;
  std::string method;
  std::string password;  // never logged
  std::string key_b64;   // "key" / --key: base64 master key, preferred over password
  MethodKind method_kind = MethodKind::Classic;
  const CipherSpec* cipher = nullptr;          // Classic only; for Aead2022, the method's AEAD
  const Method2022* method2022 = nullptr;      // Aead2022 only
  std::vector<std::vector<uint8_t>> psk_keys;  // Aead2022: the password's keys, uPSK last
  std::vector<User2022> users;  // ss-server: SIP023 users (2022) or key-trial users (classic)
  // ss-server: libev's "port_password", {"8001": "pw1", ...}: one port each, the top-level method.
  std::vector<std::pair<uint16_t, std::string>> port_password;
  // ss-server: the Shadowsocks inbounds finalize_config derives (flat keys, port_password, or
  // rust's "servers"), indexed by ListenerSpec::inbound.
  std::vector<ServerSpec> inbounds;
  int64_t clock_offset = 0;  // seconds added to the clock (env SS_CLOCK_OFFSET; skew tests)
  std::vector<uint8_t> key;  // master key: from "key" (base64) or derived from "password"
  int timeout = 60;          // idle timeout, seconds
  int udp_timeout = 60;      // idle seconds before a UDP association expires
  size_t udp_max_associations = 1024;  // least recently used evicted beyond this
  Mode mode = Mode::TcpOnly;
  bool no_delay = false;
  bool ipv6_first = false;
  bool reuse_port = false;
  bool fast_open = false;
  // One worker per CPU: pin each to its CPU and steer connections by CPU (relay/net/listener.h).
  bool pin_workers = true;
  std::optional<Address> tunnel_target;  // Tunnel: -L host:port
  // Redir: -T / "tcp_tproxy": connections arrive by TPROXY (the listeners are transparent), not
  // by REDIRECT. Always false for the other roles.
  bool tcp_tproxy = false;
  int verbose = 0;          // -v count
  bool quiet = false;       // -q: errors only
  std::string log_file;     // --log-file: append log lines here instead of stderr
  bool use_syslog = false;  // "use_syslog": log to syslog(3) instead of stderr
  std::string run_as_user;  // -a / "user": drop privileges to this user after binding
  std::string pid_file;     // -f: write the pid here and run in the background
  long long nofile = 0;     // -n / "nofile": raise RLIMIT_NOFILE to this; 0 = leave
  // ss-local: shadowsocks-rust's user file for SOCKS5 and HTTP authentication, and its table.
  std::string socks5_auth_config_path;
  std::shared_ptr<const UserTable> local_users;
  // --acl / "acl": the ACL file (ss-local, ss-redir, ss-server) and what it parsed to.
  std::string acl_path;
  std::shared_ptr<const Acl> acl;
  // Listen addresses given more than once, merged by finalize_config (logged at -v).
  size_t merged_listeners = 0;
  // ss:// URIs given with -s, "server" or as arguments (each its own server spec).
  std::vector<std::string> urls;
  // The balancer over several servers (relay/balancer.h), from "balancer".
  BalancerSpec balancer;
  // The specs finalize_config derives (from the flat keys, or from rust's "locals"/"servers").
  std::vector<ListenerSpec> listeners;
  std::vector<ServerSpec> servers;
  bool rust_locals = false;      // "locals" was given
  uint32_t outbound_fwmark = 0;  // "outbound_fwmark" / --outbound-fwmark
  std::string tun_name;          // --tun NAME: a tun listener too (ss-local)
  std::string tun_cidr;          // --tun-address CIDR
  bool tun_setup = false;        // "tun_setup" / --tun-setup: ss-local sets the tun's routes
  bool rust_servers = false;     // "servers" was given
  int workers = 0;               // event-loop threads; 0 = one per CPU
  // shadowsocks-rust's sslocal flags for a DNS local: --protocol dns makes the -b/-l listener a
  // DNS one; --local-dns-addr/--remote-dns-addr set its resolvers (or a "locals" dns entry's).
  std::string local_protocol;
  std::optional<Address> local_dns_flag, remote_dns_flag;
  // ss-server: relay to loopback, private, link-local... destinations too (off: SSRF guard).
  bool allow_private_targets = false;
  // Concurrent TCP sessions per process; 0 = derived from the descriptor limit (two per session).
  size_t max_connections = 0;
  // ss-server, classic ciphers: the replay filter (capacity 0 = off).
  size_t replay_capacity = 1'000'000;
  double replay_fp_rate = 1e-10;
  // The replay filters' state file goes in this directory (relative to the working directory at
  // start; empty: no state file), rewritten every replay_state_interval seconds when it changed
  // (0: at exit only) and at exit.
  std::string state_dir = "ss-state";
  int replay_state_interval = 60;
  // "plugin", "plugin_opts", "plugin_args" (--plugin, --plugin-opts): the flat keys' plugin, for
  // each "server" host (clients) or each listen address (ss-server).
  PluginSpec plugin{};
  // "host:port" of the Prometheus endpoint (relay/metrics_server); empty: none.
  std::string metrics_address;
  // "online_config" (clients): servers fetched from a SIP008 URL; none if not given.
  std::optional<OnlineConfigSpec> online_config;
  // ss-server: the users' quota counters (relay/user_limits.h); empty: state_dir/<program>-<first
  // port>.quota when a user has a quota and state_dir is set.
  std::string quota_state_file;
  // ss-server: a reload (SIGHUP) also closes the live sessions of removed users and ports (else
  // they finish on the configuration they started with).
  bool reload_drop_removed = false;
  // ss-server's management API and status page (server/api): "host:port" (empty: none), its
  // bearer token ("api_token", or read from "api_token_file" by finalize_config), and whether a
  // non-loopback address is allowed ("api_allow_remote").
  std::string api_address;
  std::string api_token;
  std::string api_token_file;
  bool api_allow_remote = false;
  // ss-manager (server/manager): where its manager protocol listens ("host:port" for UDP, or a
  // Unix datagram socket's path); --executable (libev's ss-server for each port) is accepted and
  // not used: every port is served inside the one process.
  std::string manager_address;
  std::string manager_executable;
  // Per-port traffic counters (relay/metrics.h) even with no metrics endpoint: ss-manager's ping.
  bool count_ports = false;
  // ss-server: "users_url": the users come from Redis (server/fleet/fleet.h), shared by a fleet of
  // servers with their quota counters; empty: from the config.
  std::string users_url;
};

// The flat keys' servers: one ServerSpec per "server" host, with the config's method and keys
// (finalize_config fills cfg.servers with these unless rust's "servers" is given).
std::vector<ServerSpec> flat_servers(const Config& cfg);
// The flat keys' method, keys and users as one spec: ss-server's one Shadowsocks inbound, and
// (with a host) each of a client's servers.
ServerSpec flat_inbound(const Config& cfg);

// The specs of a finalized config: libev's flat keys become one listener per address and one
// server per host, rust's "locals"/"servers" their own.
Specs specs_of(const Config& cfg);

// A users array in the config's form ([{"name": ..., "password": ..., "quota_bytes"?, ...}]) as
// JSON text; `key` names it in errors. Throws ConfigError. The keys are not derived here.
std::vector<UserSpec> parse_users_json(const std::string& text, std::string_view key);

// "ss-local", "ss-server", "ss-tunnel" or "ss-redir".
const char* program_name(Role role);

// Parses argv (with argv[0]) and, if -c is given, that JSON file. Returns nullopt after printing
// the help text to `out` for -h/--help, the version for -V/--version, or a key for --genkey (the
// caller exits 0). Unknown JSON keys are warned about
// by name on `warn`. Throws ConfigError for every invalid value.
std::optional<Config> load_config(Role role, int argc, const char* const* argv, std::ostream& out,
                                  std::ostream& warn);

// JSON text with every trailing comma (one followed by `]` or `}`, across white space and
// comments) blanked out, so configs that shadowsocks-libev accepts parse. Strings are untouched.
std::string strip_trailing_commas(std::string_view json_text);

// "ss-server 0.1.0 (libuv 1.44.2, OpenSSL 3.0.x, libsodium 1.0.18, BLAKE3 1.3.1)" plus a line
// naming the backend of each method, for -V/--version.
std::string version_text(Role role);

// The SIP002 URI of a server (its password, never its key).
std::string server_uri(const ServerSpec& spec);
// --url and --qr: each server's URI (as a QR code first with `qr`). Throws ConfigError for a
// server that has a key but no password.
void print_server_uris(const Config& cfg, std::ostream& out, bool qr);

// A client's servers from a JSON array of shadowsocks-rust "servers" entries (SIP008's among
// them), checked and finalized exactly as the config's own "servers". Throws ConfigError naming
// the entry ("servers[1].method: ...").
std::vector<ServerSpec> client_servers_from_json(Role role, const nlohmann::json& entries);

// ss-manager's "add": one port from a JSON object with shadowsocks-libev's fields (server_port as
// an integer or a string, password, method, mode, fast_open, no_delay, plugin, plugin_opts) plus
// shadowsocks-rust's "users", finalized like a "servers" entry of `running` (its method and mode
// are the defaults). fast_open and no_delay are the process's (flags): a different value is
// refused, as are unknown keys. A "plugin" is started by the running process (relay/plugin.h).
// Throws ConfigError naming the field.
ServerSpec manager_port_from_json(const Config& running, const nlohmann::json& entry);

// Parses a config from JSON text only (no flags): for tests and for load_config itself.
Config parse_config_json(Role role, const std::string& json_text, std::ostream& warn);

// Checks cross-field requirements (method known, key or password present, ports set for the
// role, tunnel target for Tunnel) and derives `cipher` and `key`. Throws ConfigError.
void finalize_config(Config& cfg);

}  // namespace ss
