// ss-manager: shadowsocks-libev's manager protocol (spec/protocol.md §4; libev's manager.c) served
// inside one process. Datagrams arrive on a UDP socket ("host:port") or a Unix datagram socket (a
// path), on the main loop; each reply goes back to the sender's address, as libev's do.
//
//   add: {json}    -> "ok"; "err" (bad JSON, no port or password, a field refused: the reason is
//                     logged); "port is not available" (a new port that cannot be bound).
//                     The port is served at once on every listen address by every worker
//                     (ServerControl::put_port): no process is started. A port already served is
//                     replaced; its listening socket is kept.
//   remove: {json} -> "ok" (also for a port not served); "err" for bad JSON or no port. Live
//                     sessions finish (--reload-drop-removed closes them).
//   list           -> libev's JSON array, the port as a string.
//   ping           -> stat: {"port":bytes,...}: the bytes from and to clients of each port served,
//                     from the per-worker counters (relay/metrics.h) the metrics read; they go on
//                     across remove and add of the same port.
//   reset[: {json}] (ours) -> "ok": ping counts from 0 again for that port (or every port).
//   anything else, and requests over 32767 bytes: no reply.

#include "server/manager/manager_control.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "relay/address.h"
#include "relay/log.h"
#include "relay/metrics.h"
#include "server/manager/manager_protocol.h"

namespace ss {
namespace {

// The port of an add/remove/reset request: its "server_port", an integer or a decimal string.
std::optional<uint16_t> request_port(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("server_port")) return std::nullopt;
  const nlohmann::json& v = j["server_port"];
  long long n = 0;
  if (v.is_number_integer()) {
    n = v.get<long long>();
  } else if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s.empty() || s.size() > 5) return std::nullopt;
    for (char c : s) {
      if (c < '0' || c > '9') return std::nullopt;
      n = n * 10 + (c - '0');
    }
  } else {
    return std::nullopt;
  }
  if (n < 1 || n > 65535) return std::nullopt;
  return static_cast<uint16_t>(n);
}

std::optional<nlohmann::json> parse_json(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

// Can `port` be bound on `host` (TCP, and UDP with `udp`)? As libev's check_port: a test bind.
bool port_free(const std::string& host, uint16_t port, bool udp) {
  sockaddr_storage ss{};
  if (!literal_to_sockaddr(host, port, ss)) return true;  // a host name: the workers will say
  const socklen_t len = ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  for (const int type : {SOCK_STREAM, SOCK_DGRAM}) {
    if (type == SOCK_DGRAM && !udp) continue;
    const int fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const int one = 1;
    if (type == SOCK_STREAM) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const bool ok = bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) == 0;
    close(fd);
    if (!ok) return false;
  }
  return true;
}

}  // namespace

ManagerControl::~ManagerControl() {
  if (fd_ >= 0 && !polling_) close(fd_);
}

bool ManagerControl::open(std::string* error) {
  const std::string& at = control_.config().manager_address;
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (at.find('/') != std::string::npos) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    if (at.size() >= sizeof un.sun_path) {
      *error = "manager_address: the socket path is too long";
      return false;
    }
    std::memcpy(un.sun_path, at.data(), at.size());
    std::memcpy(&ss, &un, sizeof un);
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + at.size() + 1);
    struct stat st {};
    if (lstat(at.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      unlink(at.c_str());  // a socket left by an earlier run; anything else stays (bind fails)
    }
    unix_path_ = at;
  } else {
    const std::optional<Address> a = parse_host_port(at);
    if (!a || !a->to_sockaddr(ss)) {
      *error = "manager_address: must be host:port (or [IPv6]:port) or a Unix socket path, got \"" +
               at + "\"";
      return false;
    }
    len = ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  }
  fd_ = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0 || bind(fd_, reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
    *error = "manager_address: cannot bind " + at + ": " + std::strerror(errno);
    unix_path_.clear();
    return false;
  }
  uv_poll_init(engine_.main_loop(), &poll_, fd_);
  poll_.data = this;
  polling_ = true;
  uv_poll_start(&poll_, UV_READABLE, on_readable);
  LOG_NOTICE("ss-manager: manager protocol on %s (%s)", at.c_str(),
             unix_path_.empty() ? "UDP" : "Unix datagram socket");
  if (!control_.config().manager_executable.empty()) {
    LOG_NOTICE("ss-manager: --executable %s is not used: every port is served in this process",
               control_.config().manager_executable.c_str());
  }
  return true;
}

void ManagerControl::reload() {
  LOG_WARN(
      "received SIGHUP: ss-manager's ports come from its manager protocol (add/remove), not "
      "from its config file; ignored");
}

void ManagerControl::stop() {
  if (!polling_ || uv_is_closing(reinterpret_cast<uv_handle_t*>(&poll_))) return;
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), [](uv_handle_t* h) {
    auto* self = static_cast<ManagerControl*>(h->data);
    close(self->fd_);
    self->fd_ = -1;
    self->polling_ = false;
  });
  if (!unix_path_.empty()) unlink(unix_path_.c_str());
}

void ManagerControl::on_readable(uv_poll_t* p, int status, int /*events*/) {
  auto* self = static_cast<ManagerControl*>(p->data);
  if (status < 0) return;
  // One byte more than the largest request: a longer one is seen as such and dropped.
  static thread_local char buf[kMaxManagerRequest + 2];
  for (int i = 0; i < 64; ++i) {  // a burst at a time; the rest at the next readiness
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    const ssize_t n = recvfrom(self->fd_, buf, sizeof buf, MSG_TRUNC,
                               reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) return;  // EAGAIN: drained
    if (static_cast<size_t>(n) > kMaxManagerRequest) {
      LOG_WARN("ss-manager: a request of %zd bytes dropped (over %zu)", n, kMaxManagerRequest);
      continue;
    }
    const std::string reply = self->handle(std::string_view(buf, static_cast<size_t>(n)));
    // A Unix client that did not bind its socket has no address to answer.
    if (reply.empty() || from_len <= sizeof(sa_family_t)) continue;
    if (sendto(self->fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from),
               from_len) < 0) {
      LOG_DEBUG("ss-manager: cannot send a reply: %s", std::strerror(errno));
    }
  }
}

std::string ManagerControl::handle(std::string_view datagram) {
  const ManagerRequest r = parse_manager_request(datagram);
  switch (r.command) {
    case ManagerCommand::Add:
      return add(r.json);
    case ManagerCommand::Remove:
      return remove(r.json);
    case ManagerCommand::List:
      return list();
    case ManagerCommand::Ping:
      return ping();
    case ManagerCommand::Reset:
      return reset(r.json);
    case ManagerCommand::Unknown:
      break;
  }
  return {};
}

std::string ManagerControl::add(std::string_view text) {
  const std::optional<nlohmann::json> j = parse_json(text);
  if (!j) {
    LOG_WARN("ss-manager: add: invalid JSON");
    return std::string(kReplyErr);
  }
  const Config& running = control_.config();
  ServerSpec spec;
  try {
    spec = manager_port_from_json(running, *j);
  } catch (const ConfigError& e) {
    LOG_WARN("ss-manager: add: %s", e.what());
    return std::string(kReplyErr);
  }
  const bool served = std::any_of(running.listeners.begin(), running.listeners.end(),
                                  [&](const ListenerSpec& l) { return l.port == spec.port; });
  const bool udp = spec.mode.value_or(running.mode) != Mode::TcpOnly;
  if (!served) {
    for (const std::string& host : running.server) {
      if (!port_free(host, spec.port, udp)) {
        LOG_WARN("ss-manager: add: port %u is not available on %s",
                 static_cast<unsigned>(spec.port), host.c_str());
        return std::string(kReplyPortNotAvailable);
      }
    }
  }
  const uint16_t port = spec.port;
  std::string error;
  if (!control_.put_port(std::move(spec), &error)) {
    LOG_WARN("ss-manager: add: port %u refused: %s", static_cast<unsigned>(port), error.c_str());
    return std::string(kReplyErr);
  }
  LOG_NOTICE("ss-manager: port %u %s", static_cast<unsigned>(port), served ? "replaced" : "added");
  return std::string(kReplyOk);
}

std::string ManagerControl::remove(std::string_view text) {
  const std::optional<nlohmann::json> j = parse_json(text);
  const std::optional<uint16_t> port = j ? request_port(*j) : std::nullopt;
  if (!port) {
    LOG_WARN("ss-manager: remove: %s", j ? "server_port: missing or invalid" : "invalid JSON");
    return std::string(kReplyErr);
  }
  std::string error;
  if (control_.remove_port(*port, &error)) {
    LOG_NOTICE("ss-manager: port %u removed", static_cast<unsigned>(*port));
  } else {
    LOG_INFO("ss-manager: remove: %s", error.c_str());  // not served: "ok" all the same (libev)
  }
  return std::string(kReplyOk);
}

std::string ManagerControl::list() const {
  const Config& running = control_.config();
  std::map<uint16_t, ManagerListEntry> by_port;  // by port number
  for (const ListenerSpec& l : running.listeners) {
    if (by_port.count(l.port) != 0 || l.inbound >= running.inbounds.size()) continue;
    const ServerSpec& in = running.inbounds[l.inbound];
    by_port[l.port] = {l.port, in.password, in.method};
  }
  std::vector<ManagerListEntry> out;
  for (auto& [port, e] : by_port) out.push_back(std::move(e));
  return manager_list_reply(out);
}

std::string ManagerControl::ping() const {
  const Config& running = control_.config();
  std::set<uint16_t> ports;  // by port number
  for (const ListenerSpec& l : running.listeners) ports.insert(l.port);
  std::vector<std::pair<uint16_t, int64_t>> out;
  for (const uint16_t port : ports) {
    auto base = reset_at_.find(port);
    out.emplace_back(port,
                     metrics::port_bytes(port) - (base == reset_at_.end() ? 0 : base->second));
  }
  return manager_stat_reply(out);
}

std::string ManagerControl::reset(std::string_view text) {
  if (text.empty()) {
    for (const ListenerSpec& l : control_.config().listeners) {
      reset_at_[l.port] = metrics::port_bytes(l.port);
    }
    return std::string(kReplyOk);
  }
  const std::optional<nlohmann::json> j = parse_json(text);
  const std::optional<uint16_t> port = j ? request_port(*j) : std::nullopt;
  if (!port) return std::string(kReplyErr);
  reset_at_[*port] = metrics::port_bytes(*port);
  return std::string(kReplyOk);
}

}  // namespace ss
