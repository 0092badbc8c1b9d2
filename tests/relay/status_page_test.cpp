// The management API's status page (server/api/status_page.h): the QR code's SVG has exactly
// libqrencode's dark modules, and the page escapes what it shows.

#include "server/api/status_page.h"

#include <catch2/catch.hpp>

#include <regex>
#include <string>

#include "relay/qr_text.h"

namespace ss {
namespace {

TEST_CASE("status_page: the QR code's SVG draws exactly the dark modules", "[relay]") {
  const std::string link = "ss://YWVzLTI1Ni1nY206cGFzcw@192.0.2.1:8388/#carol";
  const auto m = qr_matrix(link);
  REQUIRE(m);
  const std::string svg = qr_svg(link, 3);
  const int size = m->width + 8;
  CHECK(svg.find("viewBox=\"0 0 " + std::to_string(size) + " " + std::to_string(size) + "\"") !=
        std::string::npos);
  CHECK(svg.find("width=\"" + std::to_string(size * 3) + "\"") != std::string::npos);
  std::vector<uint8_t> drawn(m->dark.size(), 0);
  const std::regex run("M(\\d+) (\\d+)h(\\d+)v1h-(\\d+)z");
  bool overlap = false;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), run); it != std::sregex_iterator();
       ++it) {
    const int x = std::stoi((*it)[1]) - 4;
    const int y = std::stoi((*it)[2]) - 4;
    const int n = std::stoi((*it)[3]);
    REQUIRE(n == std::stoi((*it)[4]));
    REQUIRE((x >= 0 && y >= 0 && y < m->width && x + n <= m->width));
    for (int i = 0; i < n; ++i) {
      uint8_t& d = drawn[static_cast<size_t>(y * m->width + x + i)];
      overlap = overlap || d != 0;
      d = 1;
    }
  }
  CHECK_FALSE(overlap);
  CHECK(drawn == m->dark);
}

TEST_CASE("status_page: names and links are escaped", "[relay]") {
  StatusData d;
  d.server = "s";
  d.users.push_back({"<b>&\"x'", 8388, "aes-256-gcm", "ss://a@h:1/#<i>", 2, 10, 20});
  d.rejects[0] = 7;
  const std::string page = render_status_page(d);
  CHECK(page.find("<b>") == std::string::npos);
  CHECK(page.find("&lt;b&gt;&amp;&quot;x&#39;") != std::string::npos);
  CHECK(page.find("ss://a@h:1/#&lt;i&gt;") != std::string::npos);
  CHECK(page.find("<td>auth</td><td class=\"n\">7</td>") != std::string::npos);
  CHECK(page.find("<script") == std::string::npos);
  CHECK(page.find("http://") == page.find("http://www.w3.org/2000/svg"));  // no external URL
}

}  // namespace
}  // namespace ss
