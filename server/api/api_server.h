#pragma once
// ss-server's management API (Shadowsocks Server Management API v1, Shadowsocks-NET
// shadowsocks-specs 2023-1) and its status page, on one HTTP listener of the main loop
// (relay/http_server.h). See api_server.cpp for the routes and README, "Management API".

#include <uv.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "relay/http_server.h"
#include "server/server_control.h"

namespace ss {

class ApiServer {
 public:
  // A status page ticket's life (POST /status/ticket): one page load within this time.
  static constexpr uint64_t kTicketLifeMs = 60'000;
  // At most one log line per this time for refused tokens (with how many were refused).
  static constexpr uint64_t kWarnIntervalMs = 10'000;
  // The largest request body read (a user's JSON is far smaller).
  static constexpr size_t kMaxBody = 16 * 1024;

  ApiServer(uv_loop_t* loop, ServerControl& control, std::string token);
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  int listen(const Address& at) { return http_.listen(at); }
  uint16_t port() const { return http_.port(); }
  void close() { http_.close(); }

  // One request's answer (the HTTP server's handler).
  void handle(const HttpRequest& req, HttpResponse& out);

  // Bytes are TCP's and UDP's; packets are UDP datagrams from (up) and to (down) the client.
  struct Totals {
    int64_t up = 0, down = 0, up_wire = 0, down_wire = 0, tcp = 0;
    int64_t up_packets = 0, down_packets = 0, udp = 0;
    Totals& operator+=(const Totals& o);
    Totals& operator-=(const Totals& o);
  };

 private:
  bool authorized(const HttpRequest& req);
  Totals counted(uint16_t port, const std::string& user) const;
  Totals user_stats(uint16_t port, const std::string& user) const;
  void clear_stats();
  void status_page(HttpResponse& out);
  void route_users(const HttpRequest& req, std::string_view rest, HttpResponse& out);
  SharedUsers::Done fleet_reply(const HttpRequest& req, int status, const std::string& name,
                                const char* what);
  void fleet_add(const HttpRequest& req, const nlohmann::json& body, const std::string& name,
                 std::string psk, HttpResponse& out);

  uv_loop_t* loop_;
  ServerControl& control_;
  std::string token_;
  HttpServer http_;
  // The counters' values at the last stats clear, by "port/user": what the API shows is the
  // difference (the Prometheus counters themselves never go back).
  std::map<std::string, Totals> cleared_;
  std::map<std::string, uint64_t> tickets_;  // status page ticket -> expiry (uv_now)
  uint64_t last_warn_ms_ = 0;
  uint64_t refused_since_warn_ = 0;
};

}  // namespace ss
