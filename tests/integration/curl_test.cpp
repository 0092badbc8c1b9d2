// curl --socks5-hostname through ss-local and ss-server to a tiny local HTTP target.

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "tests/integration/harness.h"

namespace ss::test {
namespace {

using namespace std::chrono_literals;

void curl_through(Impl client, Impl server, const std::string& method) {
  INFO("ss-local: " << impl_name(client) << ", ss-server: " << impl_name(server)
                    << ", method: " << method);
  const std::string body = "hello through shadowsocks " + random_token(32) + "\n";
  TargetServer web(TargetBehavior::http(body), /*dual_stack=*/true);
  const NodeOptions opt{method, random_token(24), 60, {}};
  Node srv = start_server(server, opt);
  Node local = start_local(client, opt, srv.port);

  std::filesystem::path out = test_log_path("curl-body");
  out.replace_extension(".txt");
  const std::string url = "http://localhost:" + std::to_string(web.port()) + "/";
  auto curl = spawn(
      {"curl", "--silent", "--show-error", "--fail", "--max-time", "20", "--noproxy", "",
       "--socks5-hostname", "127.0.0.1:" + std::to_string(local.port), "-o", out.string(), url},
      "curl");
  const auto status = curl->wait_exit(30s);
  INFO("$ " << curl->command_line() << "\n" << curl->log_text());
  REQUIRE(status.has_value());
  CHECK(*status == 0);
  std::ifstream in(out, std::ios::binary);
  std::stringstream got;
  got << in.rdbuf();
  CHECK(got.str() == body);

  const auto reports = web.wait_reports(1, 10s);
  CHECK(reports.at(0).received_head.rfind("GET / HTTP/1.1\r\n", 0) == 0);
  CHECK(reports.at(0).received_head.find("Host: localhost:" + std::to_string(web.port())) !=
        std::string::npos);

  check_clean_shutdown(local);
  check_clean_shutdown(srv);
}

}  // namespace

TEST_CASE("interop control: curl through libev ss-local and libev ss-server",
          "[integration][interop][libev-only][curl]") {
  curl_through(Impl::Libev, Impl::Libev, "chacha20-ietf-poly1305");
}

TEST_CASE("curl through our ss-local and our ss-server for every cipher", "[integration][curl]") {
  const std::string method = GENERATE(from_range(kAeadCiphers.begin(), kAeadCiphers.end()));
  curl_through(Impl::Ours, Impl::Ours, method);
}

TEST_CASE("interop: curl through our ss-local and libev ss-server for every cipher",
          "[integration][interop][curl]") {
  const std::string method = GENERATE(from_range(kAeadCiphers.begin(), kAeadCiphers.end()));
  curl_through(Impl::Ours, Impl::Libev, method);
}

}  // namespace ss::test
