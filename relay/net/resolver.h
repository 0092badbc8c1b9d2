#pragma once
// Target lookups on a worker's loop, by one of two backends: libc's getaddrinfo in libuv's thread
// pool (uv_getaddrinfo), or c-ares driven on the loop itself (its sockets watched with uv_poll_t,
// its timeouts with one uv_timer_t), which libev's `nameserver` / `-d` selects. Either way the
// caller gets one address, of the preferred family when there is one (ipv6_first).

#include <uv.h>

#include <cstdint>
#include <string>

namespace ss {

struct ResolveRequest {
  // Runs once on the loop: status 0 with the address (a sockaddr_storage, its port set), or a
  // libuv error (UV_ECANCELED after cancel_resolve returned true) with a null address.
  using Done = void (*)(ResolveRequest* req, int status, const sockaddr* address);

  void* data = nullptr;  // the caller's

  // The lookup's own state.
  uv_getaddrinfo_t uv_req{};
  Done done = nullptr;
  uint16_t port = 0;
  bool ipv6_first = false;
  bool by_ares = false;
  int status = 0;  // c-ares: the answer, kept until it is delivered
  sockaddr_storage address{};
};

// Starts looking up `host` (a name; literals need no lookup) for `port`. 0, or a libuv error and
// `done` will not run. `req` must stay put until `done` runs.
int resolve(uv_loop_t* loop, ResolveRequest& req, const std::string& host, uint16_t port,
            bool ipv6_first, ResolveRequest::Done done);

// True if `done` will run soon with UV_ECANCELED; false if it runs when the lookup ends (a
// getaddrinfo already running in the pool, or any c-ares lookup: c-ares ends it within its own
// timeout, at most kAresTimeoutMs * kAresTries * 2).
bool cancel_resolve(ResolveRequest& req);

// c-ares's timeout per try and tries per server: a black-holed name server fails a lookup within
// 2 s + 4 s (c-ares doubles the timeout each round), inside the connect deadline (10 s).
constexpr int kAresTimeoutMs = 2000;
constexpr int kAresTries = 2;

// Process-wide, before any worker starts: the name servers lookups go to, as c-ares's CSV form
// ("1.1.1.1,8.8.8.8:53,[::1]:5353"), which libev's `nameserver` shares; empty: the system's
// (resolv.conf) through the default backend. "" on success, else why `csv` is not a list of
// addresses.
std::string set_nameservers(const std::string& csv);

// Checks a name server list without installing it ("" if valid).
std::string check_nameservers(const std::string& csv);

// Which backend lookups use with no name server configured (see README, "DNS").
enum class ResolverBackend { Getaddrinfo, Ares };
void set_default_backend(ResolverBackend backend);

}  // namespace ss
