// The status page of the management API: users with their traffic, the probe rejects by reason,
// and each user's ss:// link (SIP002) with its QR code drawn as inline SVG from libqrencode's
// modules (relay/qr_text.h), so the page needs no script and no external URL.

#include "server/api/status_page.h"

#include <optional>

#include "relay/qr_text.h"

namespace ss {

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string qr_svg(std::string_view text, int scale) {
  const std::optional<QrMatrix> code = qr_matrix(text);
  if (!code) return "";
  constexpr int kQuiet = 4;
  const int size = code->width + 2 * kQuiet;
  const std::string px = std::to_string(size * scale);
  std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"qr\" width=\"" + px +
                    "\" height=\"" + px + "\" viewBox=\"0 0 " + std::to_string(size) + " " +
                    std::to_string(size) +
                    "\" shape-rendering=\"crispEdges\"><rect width=\"100%\" height=\"100%\" "
                    "fill=\"#fff\"/><path fill=\"#000\" d=\"";
  // One horizontal run of dark modules per subpath.
  for (int y = 0; y < code->width; ++y) {
    for (int x = 0; x < code->width;) {
      if (!code->at(x, y)) {
        ++x;
        continue;
      }
      int run = 1;
      while (x + run < code->width && code->at(x + run, y)) ++run;
      out += "M" + std::to_string(x + kQuiet) + " " + std::to_string(y + kQuiet) + "h" +
             std::to_string(run) + "v1h-" + std::to_string(run) + "z";
      x += run;
    }
  }
  out += "\"/></svg>";
  return out;
}

std::string render_status_page(const StatusData& d) {
  static constexpr const char* kReasons[4] = {"auth", "replay", "timestamp", "header"};
  std::string o =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"referrer\" content=\"no-referrer\">"
      "<title>shadowsocks-uv status</title><style>"
      "body{font-family:sans-serif;margin:1.5em;background:#f6f7f9;color:#111}"
      "table{border-collapse:collapse;margin-bottom:1.5em;background:#fff}"
      "td,th{border:1px solid #ccc;padding:.3em .7em;text-align:left}"
      "td.n{text-align:right;font-variant-numeric:tabular-nums}"
      ".user{display:inline-block;vertical-align:top;margin:0 1.5em 1.5em 0;padding:1em;"
      "background:#fff;border:1px solid #ccc}"
      ".link{font-family:monospace;font-size:small;word-break:break-all;max-width:22em}"
      "</style></head><body>\n<h1>Status</h1>\n<p id=\"server\">" +
      html_escape(d.server) +
      "</p>\n<h2>Users</h2>\n<table id=\"users\"><tr><th>User</th>"
      "<th>Port</th><th>Method</th><th>TCP sessions</th>"
      "<th>Uplink bytes</th><th>Downlink bytes</th></tr>\n";
  for (const StatusUser& u : d.users) {
    o += "<tr class=\"user-row\"><td class=\"name\">" + html_escape(u.name) +
         "</td><td class=\"n\">" + std::to_string(u.port) + "</td><td>" + html_escape(u.method) +
         "</td><td class=\"n\">" + std::to_string(u.tcp_sessions) + "</td><td class=\"n up\">" +
         std::to_string(u.uplink_bytes) + "</td><td class=\"n down\">" +
         std::to_string(u.downlink_bytes) + "</td></tr>\n";
  }
  o += "</table>\n<h2>Rejected probes</h2>\n<table id=\"rejects\"><tr><th>Reason</th>"
       "<th>Count</th></tr>\n";
  for (int i = 0; i < 4; ++i) {
    o += "<tr><td>" + std::string(kReasons[i]) + "</td><td class=\"n\">" +
         std::to_string(d.rejects[i]) + "</td></tr>\n";
  }
  o += "</table>\n<h2>Links</h2>\n";
  for (const StatusUser& u : d.users) {
    o += "<div class=\"user\"><h3>" + html_escape(u.name) + "</h3>" + qr_svg(u.link) +
         "<p class=\"link\">" + html_escape(u.link) + "</p></div>\n";
  }
  o += "</body></html>\n";
  return o;
}

}  // namespace ss
