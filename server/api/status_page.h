#pragma once
// The management API's status page (GET /status): one self-contained HTML document, no script
// and no external resource. Pure: data in, text out.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ss {

struct StatusUser {
  std::string name;
  uint16_t port = 0;
  std::string method;
  std::string link;  // its ss:// URI
  int64_t tcp_sessions = 0;
  int64_t uplink_bytes = 0;
  int64_t downlink_bytes = 0;
};

struct StatusData {
  std::string server;  // "shadowsocks-uv 0.x"
  std::vector<StatusUser> users;
  // Probe rejects by reason, in this order: auth, replay, timestamp, header.
  int64_t rejects[4] = {};
};

// `text` as a QR code in inline SVG: one path of dark modules on a white rectangle with the
// 4-module quiet zone, `scale` pixels per module; "" if it cannot be encoded.
std::string qr_svg(std::string_view text, int scale = 4);

// The page.
std::string render_status_page(const StatusData& data);

// `text` with & < > " ' escaped for HTML text and attribute values.
std::string html_escape(std::string_view text);

}  // namespace ss
