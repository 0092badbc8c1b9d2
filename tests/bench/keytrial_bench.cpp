// Key-trial cost per new connection (crypto/key_trial.h, make_classic_users_suite): the CPU time
// a server opener takes to find the user of a classic first flight and open it, with N users on
// the port. Each measured operation makes a server opener as ss-server's inbound does (the
// worker's trial state, the client's IP) and feeds it one whole first flight (salt, address
// header chunk, a 64-byte payload chunk), through the real suite code. Cases:
//   cached     the client's IP used this key before: one trial;
//   middle     a new IP, the key half way down the worker's most-recently-used order: N/2 trials;
//   last       a new IP, the key last in that order: N trials (the worst case for a user);
//   stranger   no user's key: N trials, then the refusal;
// and, for comparison, the same flight opened by a one-key server (no users, no trial).
// "middle" and "last" use a fresh worker state per operation (made outside the timed loop), so the
// order never learns the key. No replay filter (its cost is one lookup, the same as with one key).
// CPU time (CLOCK_PROCESS_CPUTIME_ID) over the tight loop, divided by the operations.
//
// Usage: keytrial_bench [--method NAME] [--ops N] [--markdown]

#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "crypto/cipher_spec.h"
#include "crypto/kdf.h"
#include "crypto/key_trial.h"
#include "crypto/tcp_cipher.h"

namespace {

using Bytes = std::vector<uint8_t>;

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

ss::KeyTrialOrder::Ip ip_of(uint32_t n) {
  const uint8_t v4[4] = {10, static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 8),
                         static_cast<uint8_t>(n)};
  return ss::trial_ip_v4(v4);
}

// A client's first flight under `key`.
Bytes flight(const ss::CipherSpec& spec, const Bytes& key) {
  auto client = ss::make_classic_suite(spec, key);
  auto sealer = client->client_sealer();
  const Bytes addr = {0x01, 192, 0, 2, 1, 0x01, 0xbb};
  const Bytes payload(64, 0x42);
  Bytes out(sealer->max_sealed_size(payload.size()));
  out.resize(
      sealer->seal_request(addr.data(), addr.size(), payload.data(), payload.size(), out.data()));
  return out;
}

// Opens one first flight; returns the plaintext bytes (0: refused).
size_t open_once(const ss::TcpCipherSuite& suite, const std::shared_ptr<ss::TcpServerState>& st,
                 const ss::KeyTrialOrder::Ip& ip, const Bytes& in, Bytes& out) {
  auto opener = suite.server_opener_for(st, ip);
  const auto r = opener->feed(in.data(), in.size(), out.data());
  return r.status == ss::DecryptStatus::Error ? 0 : r.produced;
}

struct Row {
  size_t users;
  double cached_us, middle_us, last_us, stranger_us;
};

Row measure(const ss::CipherSpec& spec, size_t nusers, size_t ops) {
  std::vector<ss::TrialUser> users;
  for (size_t i = 0; i < nusers; ++i) {
    users.push_back({"user" + std::to_string(i),
                     ss::derive_master_key("password-" + std::to_string(i), spec.key_len)});
  }
  const Bytes last_key = users.back().key;
  const Bytes middle_key = users[nusers / 2].key;
  auto suite = ss::make_classic_users_suite(spec, std::move(users), nullptr);
  const Bytes last = flight(spec, last_key);
  const Bytes middle = flight(spec, middle_key);
  const Bytes stranger = flight(spec, ss::derive_master_key("not a user", spec.key_len));
  Bytes out(4096);
  size_t sink = 0;
  Row row{nusers, 0, 0, 0, 0};

  // cached: IP 1 used the last key once; every later connection from it tries that key first.
  {
    auto st = suite->server_state();
    if (open_once(*suite, st, ip_of(1), last, out) == 0) std::abort();
    const double t0 = cpu_seconds();
    for (size_t i = 0; i < ops; ++i) sink += open_once(*suite, st, ip_of(1), last, out);
    row.cached_us = (cpu_seconds() - t0) / static_cast<double>(ops) * 1e6;
  }
  // middle and last: a fresh worker state each time (made before the clock starts).
  auto uncached = [&](const Bytes& f) {
    const size_t n = std::max<size_t>(1, ops / std::max<size_t>(1, nusers / 50));
    std::vector<std::shared_ptr<ss::TcpServerState>> states;
    for (size_t i = 0; i < n; ++i) states.push_back(suite->server_state());
    const double t0 = cpu_seconds();
    for (size_t i = 0; i < n; ++i)
      sink += open_once(*suite, states[i], ip_of(static_cast<uint32_t>(i + 2)), f, out);
    return (cpu_seconds() - t0) / static_cast<double>(n) * 1e6;
  };
  row.middle_us = uncached(middle);
  row.last_us = uncached(last);
  {
    auto st = suite->server_state();
    const size_t n = std::max<size_t>(1, ops / std::max<size_t>(1, nusers / 50));
    const double t0 = cpu_seconds();
    for (size_t i = 0; i < n; ++i) sink += open_once(*suite, st, ip_of(7), stranger, out);
    row.stranger_us = (cpu_seconds() - t0) / static_cast<double>(n) * 1e6;
  }
  if (sink == 0) std::abort();  // the flights opened
  return row;
}

// The same first flight opened by a one-key server (make_classic_suite, no users): the cost of a
// new connection without any trial, for comparison.
double baseline_us(const ss::CipherSpec& spec, size_t ops) {
  const Bytes key = ss::derive_master_key("password", spec.key_len);
  auto suite = ss::make_classic_suite(spec, key);
  const Bytes f = flight(spec, key);
  Bytes out(4096);
  size_t sink = 0;
  const double t0 = cpu_seconds();
  for (size_t i = 0; i < ops; ++i) {
    auto opener = suite->server_opener();
    sink += opener->feed(f.data(), f.size(), out.data()).produced;
  }
  const double us = (cpu_seconds() - t0) / static_cast<double>(ops) * 1e6;
  if (sink == 0) std::abort();
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  std::string method = "chacha20-ietf-poly1305";
  size_t ops = 20000;
  bool markdown = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--method" && i + 1 < argc) {
      method = argv[++i];
    } else if (a == "--ops" && i + 1 < argc) {
      ops = std::strtoul(argv[++i], nullptr, 10);
    } else if (a == "--markdown") {
      markdown = true;
    } else {
      std::fprintf(stderr, "usage: keytrial_bench [--method NAME] [--ops N] [--markdown]\n");
      return 2;
    }
  }
  const ss::CipherSpec* spec = ss::find_cipher(method);
  if (spec == nullptr || ops == 0) {
    std::fprintf(stderr, "keytrial_bench: unknown method %s (or --ops 0)\n", method.c_str());
    return 2;
  }
  if (markdown) {
    std::printf(
        "| %s: users | cached IP, µs | new IP, key in the middle, µs | new IP, key last, "
        "µs | no user's key, µs |\n|---:|---:|---:|---:|---:|\n",
        method.c_str());
  }
  for (size_t n : {size_t{1}, size_t{100}, size_t{1000}}) {
    const Row r = measure(*spec, n, ops);
    if (markdown) {
      std::printf("| %zu | %.2f | %.1f | %.1f | %.1f |\n", r.users, r.cached_us, r.middle_us,
                  r.last_us, r.stranger_us);
    } else {
      std::printf("%s users=%zu cached=%.2fus middle=%.1fus last=%.1fus stranger=%.1fus\n",
                  method.c_str(), r.users, r.cached_us, r.middle_us, r.last_us, r.stranger_us);
    }
  }
  const double base = baseline_us(*spec, ops);
  if (markdown) {
    std::printf("\none key, no users (no trial): %.2f µs\n", base);
  } else {
    std::printf("%s one key, no users: %.2fus\n", method.c_str(), base);
  }
  return 0;
}
