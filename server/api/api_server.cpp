// ss-server's management API: the Shadowsocks Server Management API v1 (Shadowsocks-NET
// shadowsocks-specs 2023-1-shadowsocks-server-management-api-v1.md) over relay/http_server, on
// the main loop, with a bearer token (RFC 6750) on every request. Routes:
//   GET /                       {"server", "apiVersion": "v1"}
//   GET /users                  {"users": [{"username", "uPSK", "port", "method"}]}
//   POST /users                 {"username", "uPSK", "port"?} -> 201; 400 if the name exists or
//                               the body is malformed
//   GET /users/:username        the user and its stats; 404 if unknown
//   PATCH /users/:username      {"uPSK"} -> 204; 400 if the same key or malformed; 404
//   DELETE /users/:username     204; 404
//   GET /stats[?clear=true]     totals and each user's; clear=true also clears them (after
//                               answering with the values cleared)
//   POST /status/ticket         (ours) a one-time ticket for the status page
//   GET /status[?ticket=...]    (ours) the status page (server/api/status_page.h)
// Errors are {"error": "..."}. "uPSK" is a 2022 user's base64 key (SIP023) or a classic user's
// password (key trial). A user change goes through ServerControl (server/server_control.h): the
// running process serves it at once; the config file is not rewritten.

#include "server/api/api_server.h"

#include <openssl/crypto.h>
#include <sodium.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "relay/log.h"
#include "relay/metrics.h"
#include "relay/sip002.h"
#include "relay/version.h"
#include "server/api/status_page.h"
#include "server/server_control.h"

namespace ss {
namespace {

using json = nlohmann::json;

// A user of a port configured with users: the ones the API manages.
struct Managed {
  const ServerSpec* in = nullptr;
  const UserSpec* user = nullptr;
  uint16_t port = 0;
  std::string host;  // the listener's address
};

std::vector<Managed> managed_users(const Config& cfg) {
  std::vector<Managed> out;
  for (size_t k = 0; k < cfg.inbounds.size(); ++k) {
    const ServerSpec& in = cfg.inbounds[k];
    if (in.users.empty()) continue;
    const ListenerSpec* at = nullptr;
    for (const ListenerSpec& l : cfg.listeners) {
      if (l.inbound == k && l.protocol == ListenerSpec::Protocol::Shadowsocks) {
        at = &l;
        break;
      }
    }
    if (at == nullptr) continue;
    for (const UserSpec& u : in.users) out.push_back({&in, &u, at->port, at->address});
  }
  return out;
}

std::optional<Managed> find_user(const Config& cfg, std::string_view name) {
  for (const Managed& m : managed_users(cfg)) {
    if (m.user->name == name) return m;
  }
  return std::nullopt;
}

std::string link_of(const Managed& m) {
  Sip002 s;
  s.method = m.in->method;
  s.password = m.in->method_kind == MethodKind::Aead2022 ? m.in->password + ":" + m.user->password
                                                         : m.user->password;
  s.host = m.host;
  if (s.host.empty() || s.host == "0.0.0.0" || s.host == "::") {
    char name[256] = {};
    s.host = gethostname(name, sizeof name - 1) == 0 ? name : "localhost";
  }
  s.port = m.port;
  s.tag = m.user->name;
  return format_sip002(s);
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void json_answer(HttpResponse& out, int status, const json& body) {
  out.status = status;
  out.reason = http_reason(status);
  out.content_type = "application/json";
  out.body = dump(body) + "\n";
}

void error_answer(HttpResponse& out, int status, const std::string& message) {
  json_answer(out, status, json{{"error", message}});
}

void no_content(HttpResponse& out) {
  out.status = 204;
  out.reason = http_reason(204);
  out.content_type = "application/json";
  out.body.clear();
}

void method_not_allowed(HttpResponse& out, const char* allow) {
  error_answer(out, 405, "method not allowed");
  out.extra_headers = std::string("Allow: ") + allow + "\r\n";
}

// A name that is safe in a path, a log line and a label: [A-Za-z0-9._@-], 1 to 64 bytes.
bool valid_username(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-' || c == '@';
    if (!ok) return false;
  }
  return true;
}

// The value of `key` in an application/x-www-form-urlencoded query, if given.
std::optional<std::string_view> query_value(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    const size_t eq = part.find('=');
    if (part.substr(0, eq) == key) {
      return eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

// A JSON object body, or null (with the 400 answered).
std::optional<json> object_body(const HttpRequest& req, HttpResponse& out) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    error_answer(out, 400, "malformed request: the body must be a JSON object");
    return std::nullopt;
  }
  return body;
}

// A string member: its value, "" if absent; nullopt (and a 400) if not a string.
std::optional<std::string> string_member(const json& body, const char* key, HttpResponse& out) {
  const auto it = body.find(key);
  if (it == body.end()) return std::string();
  if (!it->is_string()) {
    error_answer(out, 400, std::string("malformed request: \"") + key + "\" must be a string");
    return std::nullopt;
  }
  return it->get<std::string>();
}

}  // namespace

ApiServer::Totals& ApiServer::Totals::operator+=(const Totals& o) {
  up += o.up;
  down += o.down;
  up_wire += o.up_wire;
  down_wire += o.down_wire;
  tcp += o.tcp;
  up_packets += o.up_packets;
  down_packets += o.down_packets;
  udp += o.udp;
  return *this;
}

ApiServer::Totals& ApiServer::Totals::operator-=(const Totals& o) {
  up -= o.up;
  down -= o.down;
  up_wire -= o.up_wire;
  down_wire -= o.down_wire;
  tcp -= o.tcp;
  up_packets -= o.up_packets;
  down_packets -= o.down_packets;
  udp -= o.udp;
  return *this;
}

namespace {

json stats_json(const ApiServer::Totals& t) {
  return json{{"uplinkBytes", t.up},           {"downlinkBytes", t.down},
              {"uplinkPackets", t.up_packets}, {"downlinkPackets", t.down_packets},
              {"uplinkWireBytes", t.up_wire},  {"downlinkWireBytes", t.down_wire},
              {"tcpSessions", t.tcp},          {"udpSessions", t.udp}};
}

}  // namespace

ApiServer::ApiServer(uv_loop_t* loop, ServerControl& control, std::string token)
    : loop_(loop),
      control_(control),
      token_(std::move(token)),
      http_(
          loop, [this](const HttpRequest& req, HttpResponse& out) { handle(req, out); }, kMaxBody) {
}

bool ApiServer::authorized(const HttpRequest& req) {
  constexpr std::string_view kBearer = "Bearer ";
  std::string_view a = req.authorization;
  if (a.size() > kBearer.size() && a.substr(0, kBearer.size()) == kBearer) {
    a.remove_prefix(kBearer.size());
    if (a.size() == token_.size() && CRYPTO_memcmp(a.data(), token_.data(), a.size()) == 0) {
      return true;
    }
  }
  // A page load with a ticket: good once, before its expiry.
  if (req.method == "GET" && req.path == "/status") {
    const std::optional<std::string_view> t = query_value(req.query, "ticket");
    if (t) {
      const auto it = tickets_.find(std::string(*t));
      if (it != tickets_.end()) {
        const bool fresh = uv_now(loop_) <= it->second;
        tickets_.erase(it);
        if (fresh) return true;
      }
    }
  }
  ++refused_since_warn_;
  const uint64_t now = uv_now(loop_);
  if (last_warn_ms_ == 0 || now - last_warn_ms_ >= kWarnIntervalMs) {
    LOG_WARN("api: refused a request from %s: %s (%llu refused since the last such line)",
             req.peer.to_string().c_str(),
             req.authorization.empty() ? "no bearer token" : "wrong bearer token",
             static_cast<unsigned long long>(refused_since_warn_));
    last_warn_ms_ = now;
    refused_since_warn_ = 0;
  }
  return false;
}

ApiServer::Totals ApiServer::counted(uint16_t port, const std::string& user) const {
  Totals t;
  const metrics::PortSlots* slots = metrics::add_port(port, {});
  const metrics::SlotId id = slots->find(user);
  if (id == metrics::kNoSlot || id == slots->find("")) return t;
  t.up =
      metrics::bytes(id, metrics::kProxyToTarget) + metrics::udp_bytes(id, metrics::kProxyToTarget);
  t.down =
      metrics::bytes(id, metrics::kTargetToProxy) + metrics::udp_bytes(id, metrics::kTargetToProxy);
  t.up_wire =
      metrics::bytes(id, metrics::kClientToProxy) + metrics::udp_bytes(id, metrics::kClientToProxy);
  t.down_wire =
      metrics::bytes(id, metrics::kProxyToClient) + metrics::udp_bytes(id, metrics::kProxyToClient);
  t.tcp = metrics::opened(id);
  t.up_packets = metrics::udp_packets(id, false);
  t.down_packets = metrics::udp_packets(id, true);
  t.udp = metrics::udp_sessions(id);
  return t;
}

ApiServer::Totals ApiServer::user_stats(uint16_t port, const std::string& user) const {
  Totals t = counted(port, user);
  const auto it = cleared_.find(std::to_string(port) + "/" + user);
  if (it != cleared_.end()) t -= it->second;
  return t;
}

void ApiServer::clear_stats() {
  for (const Managed& m : managed_users(control_.config())) {
    cleared_[std::to_string(m.port) + "/" + m.user->name] = counted(m.port, m.user->name);
  }
}

void ApiServer::handle(const HttpRequest& req, HttpResponse& out) {
  if (!authorized(req)) {
    error_answer(out, 401, "unauthorized");
    out.extra_headers = "WWW-Authenticate: Bearer\r\n";
    return;
  }
  const std::string_view path = req.path;
  if (path == "/") {
    if (req.method != "GET") return method_not_allowed(out, "GET");
    json_answer(out, 200,
                json{{"server", "shadowsocks-uv"}, {"apiVersion", "v1"}, {"version", SS_VERSION}});
    return;
  }
  if (path == "/users" || path.rfind("/users/", 0) == 0) {
    route_users(req, path.substr(6), out);
    return;
  }
  if (path == "/stats") {
    if (req.method != "GET") return method_not_allowed(out, "GET");
    const std::optional<std::string_view> clear = query_value(req.query, "clear");
    json users = json::array();
    Totals all;
    for (const Managed& m : managed_users(control_.config())) {
      const Totals t = user_stats(m.port, m.user->name);
      json u = stats_json(t);
      u["username"] = m.user->name;
      users.push_back(std::move(u));
      all += t;
    }
    json body = stats_json(all);
    body["users"] = std::move(users);
    json_answer(out, 200, body);
    if (clear && *clear == "true") {
      clear_stats();
      LOG_NOTICE("api: stats cleared");
    }
    return;
  }
  if (path == "/status/ticket") {
    if (req.method != "POST") return method_not_allowed(out, "POST");
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    char hex[2 * sizeof raw + 1];
    sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
    const uint64_t now = uv_now(loop_);
    std::erase_if(tickets_, [now](const auto& t) { return t.second < now; });
    if (tickets_.size() >= 64) tickets_.erase(tickets_.begin());
    tickets_[hex] = now + kTicketLifeMs;
    json_answer(out, 201,
                json{{"ticket", hex},
                     {"url", std::string("/status?ticket=") + hex},
                     {"expiresInSeconds", kTicketLifeMs / 1000}});
    return;
  }
  if (path == "/status") {
    if (req.method != "GET") return method_not_allowed(out, "GET");
    status_page(out);
    return;
  }
  error_answer(out, 404, "not found");
}

void ApiServer::route_users(const HttpRequest& req, std::string_view rest, HttpResponse& out) {
  const Config& cfg = control_.config();
  const std::vector<Managed> all = managed_users(cfg);
  SharedUsers* shared = control_.shared_users();  // a fleet's: changes go to Redis
  // A fleet server with no users yet still takes POST /users.
  const bool fleet_post = shared != nullptr && rest.empty() && req.method == "POST";
  if (all.empty() && !fleet_post) {
    error_answer(out, 404, "no port of this server has users (configure \"users\" on a port)");
    return;
  }
  if (rest.empty()) {  // /users
    if (req.method == "GET") {
      json users = json::array();
      for (const Managed& m : all) {
        users.push_back(json{{"username", m.user->name},
                             {"uPSK", m.user->password},
                             {"port", m.port},
                             {"method", m.in->method}});
      }
      json_answer(out, 200, json{{"users", std::move(users)}});
      return;
    }
    if (req.method != "POST") return method_not_allowed(out, "GET, POST");
    const std::optional<json> body = object_body(req, out);
    if (!body) return;
    const std::optional<std::string> name = string_member(*body, "username", out);
    if (!name) return;
    std::optional<std::string> psk = string_member(*body, "uPSK", out);
    if (!psk) return;
    if (!valid_username(*name)) {
      error_answer(out, 400,
                   "malformed request: \"username\" must be 1 to 64 of A-Z a-z 0-9 . _ @ -");
      return;
    }
    if (psk->empty()) {
      error_answer(out, 400, "malformed request: \"uPSK\" is missing");
      return;
    }
    if (find_user(cfg, *name)) {
      error_answer(out, 400, "a user named \"" + *name + "\" already exists");
      return;
    }
    if (shared != nullptr) {
      fleet_add(req, *body, *name, std::move(*psk), out);
      return;
    }
    uint16_t port = all.front().port;
    const auto p = body->find("port");
    if (p != body->end()) {
      if (!p->is_number_unsigned() || p->get<uint64_t>() == 0 || p->get<uint64_t>() > 65535) {
        error_answer(out, 400, "malformed request: \"port\" must be a port number");
        return;
      }
      port = static_cast<uint16_t>(p->get<uint64_t>());
    } else {
      for (const Managed& m : all) {
        if (m.port != port) {
          error_answer(out, 400,
                       "malformed request: \"port\" is required (several ports have users)");
          return;
        }
      }
    }
    UserSpec u;
    u.name = *name;
    u.password = std::move(*psk);
    std::string error;
    if (!control_.add_user(port, std::move(u), &error)) {
      error_answer(out, 400, error);
      return;
    }
    LOG_NOTICE("api: user %s added on port %u", name->c_str(), static_cast<unsigned>(port));
    json_answer(out, 201, json{{"username", *name}, {"port", port}});
    return;
  }
  // /users/:username
  if (rest.front() != '/') {
    error_answer(out, 404, "not found");
    return;
  }
  const std::optional<std::string> name = percent_decode(rest.substr(1));
  const std::optional<Managed> m = name ? find_user(cfg, *name) : std::nullopt;
  if (!m) {
    error_answer(out, 404, "user not found");
    return;
  }
  const uint16_t port = m->port;
  if (req.method == "GET") {
    const Totals t = user_stats(port, m->user->name);
    json u = stats_json(t);
    u["username"] = m->user->name;
    u["uPSK"] = m->user->password;
    u["port"] = port;
    u["method"] = m->in->method;
    json_answer(out, 200, u);
    return;
  }
  std::string error;
  if (req.method == "PATCH") {
    const std::optional<json> body = object_body(req, out);
    if (!body) return;
    std::optional<std::string> psk = string_member(*body, "uPSK", out);
    if (!psk) return;
    if (psk->empty()) {
      error_answer(out, 400, "malformed request: \"uPSK\" is missing");
      return;
    }
    if (shared != nullptr) {
      UserSpec u = *m->user;
      u.password = std::move(*psk);
      shared->set_user(u, fleet_reply(req, 204, *name, "has a new key"));
      return;
    }
    if (!control_.set_user_password(port, *name, std::move(*psk), &error)) {
      error_answer(out, 400, error);
      return;
    }
    LOG_NOTICE("api: user %s has a new key", name->c_str());
    no_content(out);
    return;
  }
  if (req.method == "DELETE") {
    if (shared != nullptr) {
      cleared_.erase(std::to_string(port) + "/" + *name);
      shared->remove_user(*name, fleet_reply(req, 204, *name, "removed"));
      return;
    }
    if (!control_.remove_user(port, *name, &error)) {
      error_answer(out, 400, error);
      return;
    }
    cleared_.erase(std::to_string(port) + "/" + *name);
    LOG_NOTICE("api: user %s removed from port %u", name->c_str(), static_cast<unsigned>(port));
    no_content(out);
    return;
  }
  method_not_allowed(out, "GET, PATCH, DELETE");
}

// A fleet server (users_url): the change goes to Redis, and the answer waits for it (or says why
// not: 503 during an outage).
SharedUsers::Done ApiServer::fleet_reply(const HttpRequest& req, int status,
                                         const std::string& name, const char* what) {
  return [reply = req.defer(), status, name, what](int error_status, const std::string& error) {
    HttpResponse out;
    if (error_status != 0) {
      error_answer(out, error_status, error);
      reply(out);
      return;
    }
    LOG_NOTICE("api: user %s %s (in redis: every server of the fleet)", name.c_str(), what);
    if (status == 201) {
      json_answer(out, 201, json{{"username", name}});
    } else {
      no_content(out);
    }
    reply(out);
  };
}

void ApiServer::fleet_add(const HttpRequest& req, const json& body, const std::string& name,
                          std::string psk, HttpResponse& out) {
  // Every port of a fleet server takes every user: a "port" must be one of them.
  const auto p = body.find("port");
  if (p != body.end()) {
    bool served = false;
    for (const ListenerSpec& l : control_.config().listeners) {
      served = served || (p->is_number_unsigned() && p->get<uint64_t>() == l.port);
    }
    if (!served) {
      error_answer(out, 400,
                   "malformed request: \"port\": not a port of this server (with users_url "
                   "every port takes every user)");
      return;
    }
  }
  UserSpec u;
  u.name = name;
  u.password = std::move(psk);
  control_.shared_users()->add_user(u, fleet_reply(req, 201, name, "added"));
}

void ApiServer::status_page(HttpResponse& out) {
  StatusData d;
  d.server = std::string("shadowsocks-uv ") + SS_VERSION;
  for (const Managed& m : managed_users(control_.config())) {
    const Totals t = user_stats(m.port, m.user->name);
    d.users.push_back({m.user->name, m.port, m.in->method, link_of(m), t.tcp, t.up, t.down});
  }
  d.rejects[0] = metrics::rejects(metrics::Reject::Auth);
  d.rejects[1] = metrics::rejects(metrics::Reject::Replay);
  d.rejects[2] = metrics::rejects(metrics::Reject::Timestamp);
  d.rejects[3] = metrics::rejects(metrics::Reject::Header);
  out.status = 200;
  out.content_type = "text/html; charset=utf-8";
  out.extra_headers =
      "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src data:\r\n"
      "Referrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\n";
  out.body = render_status_page(d);
}

}  // namespace ss
