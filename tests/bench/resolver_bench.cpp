// CPU per target lookup, getaddrinfo in libuv's pool against c-ares on the loop (relay/net/
// resolver.h), with the system's resolver configuration (resolv.conf) unless NAMESERVERS is
// given. Usage: resolver_bench getaddrinfo|ares LOOKUPS CONCURRENT SUFFIX [NAMESERVERS]
// Looks up "n<i>.SUFFIX" for i in [0, LOOKUPS), CONCURRENT at a time, on one loop; prints the
// process's CPU time (user + system, every thread) per lookup, the failures, and the wall time.
// Needs a resolver that answers those names (scripts/bench_resolver.sh starts one).

#include <sys/resource.h>
#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "relay/net/resolver.h"

namespace {

struct Bench {
  uv_loop_t* loop;
  std::string suffix;
  int total = 0;
  int started = 0;
  int done = 0;
  int failed = 0;
  std::vector<ss::ResolveRequest> reqs;
};

void start_next(Bench& b, ss::ResolveRequest& r);

void on_done(ss::ResolveRequest* r, int status, const sockaddr*) {
  auto* b = static_cast<Bench*>(r->data);
  ++b->done;
  if (status != 0) ++b->failed;
  if (b->started < b->total) start_next(*b, *r);
}

void start_next(Bench& b, ss::ResolveRequest& r) {
  const std::string name = "n" + std::to_string(b.started++) + "." + b.suffix;
  r.data = &b;
  if (ss::resolve(b.loop, r, name, 80, false, on_done) != 0) {
    ++b.done;
    ++b.failed;
  }
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s getaddrinfo|ares LOOKUPS CONCURRENT SUFFIX [NAMESERVERS]\n",
                 argv[0]);
    return 2;
  }
  const bool ares = std::strcmp(argv[1], "ares") == 0;
  ss::set_default_backend(ares ? ss::ResolverBackend::Ares : ss::ResolverBackend::Getaddrinfo);
  if (argc > 5) {
    const std::string why = ss::set_nameservers(argv[5]);
    if (!why.empty()) {
      std::fprintf(stderr, "%s\n", why.c_str());
      return 2;
    }
  }
  Bench b;
  b.loop = uv_default_loop();
  b.suffix = argv[4];
  b.total = std::atoi(argv[2]);
  const int concurrent = std::atoi(argv[3]);
  b.reqs.resize(concurrent);
  const double cpu0 = cpu_seconds();
  const uint64_t t0 = uv_hrtime();
  for (int i = 0; i < concurrent && b.started < b.total; ++i) start_next(b, b.reqs[i]);
  uv_run(b.loop, UV_RUN_DEFAULT);
  const double cpu = cpu_seconds() - cpu0;
  const double wall = (uv_hrtime() - t0) / 1e9;
  std::printf("%s: %d lookups, %d concurrent: %.1f us CPU per lookup, %d failed, %.2f s wall\n",
              ares ? "c-ares" : "getaddrinfo", b.done, concurrent, cpu * 1e6 / b.done, b.failed,
              wall);
  return 0;
}
