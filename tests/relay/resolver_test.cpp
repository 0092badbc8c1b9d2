// relay/net/resolver.h on a real loop: c-ares and getaddrinfo answer from /etc/hosts (c-ares
// answers those inside ares_getaddrinfo: delivered later, never from inside resolve()); c-ares
// against a name server on loopback that this test runs with relay/dns's builder (A, AAAA and
// ipv6_first; NXDOMAIN); no handle is left once the lookups end (uv_loop_close succeeds).

#include "relay/net/resolver.h"

#include <arpa/inet.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "relay/dns/dns_message.h"

namespace ss {
namespace {

struct Result {
  int calls = 0;
  int status = 1;
  std::string ip;
  uint16_t port = 0;
  bool inside_resolve = false;
};

bool g_in_resolve = false;

void on_done(ResolveRequest* req, int status, const sockaddr* sa) {
  auto* r = static_cast<Result*>(req->data);
  ++r->calls;
  r->status = status;
  r->inside_resolve = g_in_resolve;
  if (sa == nullptr) return;
  char text[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    r->port = ntohs(in->sin_port);
  } else {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    r->port = ntohs(in6->sin6_port);
  }
  r->ip = text;
}

Result lookup(uv_loop_t* loop, const std::string& host, bool ipv6_first) {
  Result r;
  ResolveRequest req;
  req.data = &r;
  g_in_resolve = true;
  const int rc = resolve(loop, req, host, 8443, ipv6_first, on_done);
  g_in_resolve = false;
  REQUIRE(rc == 0);
  // Until the answer (a name server handle of the test may keep the loop alive).
  for (int i = 0; i < 10000 && r.calls == 0; ++i) uv_run(loop, UV_RUN_ONCE);
  return r;
}

// A name server on the loop: answers A with 192.0.2.7 and AAAA with 2001:db8::7 for any name but
// missing.*, which gets NXDOMAIN.
struct TestNameServer {
  uv_udp_t udp;
  uint8_t buf[512];
  int queries = 0;

  explicit TestNameServer(uv_loop_t* loop) {
    uv_udp_init(loop, &udp);
    udp.data = this;
    sockaddr_in a{};
    uv_ip4_addr("127.0.0.1", 0, &a);
    REQUIRE(uv_udp_bind(&udp, reinterpret_cast<const sockaddr*>(&a), 0) == 0);
    uv_udp_recv_start(
        &udp,
        [](uv_handle_t* h, size_t, uv_buf_t* b) {
          auto* self = static_cast<TestNameServer*>(h->data);
          *b = uv_buf_init(reinterpret_cast<char*>(self->buf), sizeof self->buf);
        },
        on_query);
  }

  uint16_t port() {
    sockaddr_storage ss{};
    int len = sizeof ss;
    uv_udp_getsockname(&udp, reinterpret_cast<sockaddr*>(&ss), &len);
    return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }

  static void on_query(uv_udp_t* h, ssize_t n, const uv_buf_t* b, const sockaddr* from, unsigned) {
    if (n <= 0 || from == nullptr) return;
    auto* self = static_cast<TestNameServer*>(h->data);
    dns::Summary s;
    if (dns::summarize(self->buf, static_cast<size_t>(n), s) != ParseStatus::Ok) return;
    ++self->queries;
    static const uint8_t v4[4] = {192, 0, 2, 7};
    static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
    const dns::AddressAnswer a4[] = {{v4, 4}};
    const dns::AddressAnswer a6[] = {{v6, 16}};
    static uint8_t out[512];
    const bool missing = s.question.name.view().starts_with("missing.");
    const size_t len = dns::build_answer(out, sizeof out, self->buf, static_cast<size_t>(n),
                                         missing ? dns::kRcodeNxDomain : dns::kRcodeNoError,
                                         missing ? std::span<const dns::AddressAnswer>()
                                         : s.question.type == dns::kTypeAaaa
                                             ? std::span<const dns::AddressAnswer>(a6)
                                             : std::span<const dns::AddressAnswer>(a4),
                                         30);
    uv_buf_t reply = uv_buf_init(reinterpret_cast<char*>(out), static_cast<unsigned>(len));
    uv_udp_try_send(h, &reply, 1, from);
    (void)b;
  }
};

TEST_CASE("resolver: /etc/hosts through c-ares and getaddrinfo, answered after resolve returns",
          "[relay]") {
  for (ResolverBackend backend : {ResolverBackend::Ares, ResolverBackend::Getaddrinfo}) {
    INFO((backend == ResolverBackend::Ares ? "c-ares" : "getaddrinfo"));
    set_default_backend(backend);
    uv_loop_t loop;
    uv_loop_init(&loop);
    const Result r = lookup(&loop, "localhost", false);
    CHECK(r.calls == 1);
    CHECK(r.status == 0);
    CHECK_FALSE(r.inside_resolve);
    CHECK(r.ip == "127.0.0.1");
    CHECK(r.port == 8443);
    uv_run(&loop, UV_RUN_DEFAULT);  // the handles' close callbacks
    CHECK(uv_loop_close(&loop) == 0);
  }
  set_default_backend(ResolverBackend::Ares);
}

TEST_CASE("resolver: c-ares asks the configured name server for A and AAAA", "[relay]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto* ns = new TestNameServer(&loop);
  REQUIRE(set_nameservers("127.0.0.1:" + std::to_string(ns->port())).empty());
  const Result v4 = lookup(&loop, "anything.test", false);
  CHECK(v4.status == 0);
  CHECK(v4.ip == "192.0.2.7");
  CHECK(v4.port == 8443);
  const Result v6 = lookup(&loop, "anything.test", true);
  CHECK(v6.ip == "2001:db8::7");
  const Result missing = lookup(&loop, "missing.test", false);
  CHECK(missing.calls == 1);
  CHECK(missing.status == UV_EAI_NONAME);
  CHECK(missing.ip.empty());
  CHECK(ns->queries >= 4);  // A and AAAA each time
  CHECK(set_nameservers("").empty());
  uv_close(reinterpret_cast<uv_handle_t*>(&ns->udp), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  delete ns;
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace ss
