// The fake-IP table's file (fake_dns_database_path; README "tun mode", DNS): tun mode's fake
// pools written to disk, so that after a restart a client still holding an old answer reaches the
// same name. Our own text format (shadowsocks-rust keeps a sled database; no file is shared):
//
//   shadowsocks-uv fake-dns 1
//   ADDRESS EXPIRY NAME          one line per live entry, least recently used first
//
// ADDRESS is an IPv4 or IPv6 literal, EXPIRY the Unix time (seconds) at which the entry expires
// unless used again, NAME the lower-case host name. The parser is pure: a wrong header or any
// malformed line refuses the whole file. Restoring drops expired entries and, entry by entry,
// addresses that are not the configured pools'. Written with write_file_atomically (a temporary
// file, fsync, rename) when the table changed: every kSaveIntervalMs from the engine of queue 0,
// and at a graceful exit.

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "client/tun/tun_dns.h"
#include "relay/log.h"
#include "relay/read_file.h"
#include "relay/replay_state.h"

namespace ss {

namespace {

constexpr size_t kMaxFileSize = 16u << 20;  // 2 x 65,536 entries of at most ~300 bytes

std::string ip_text(const IpBytes& ip) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(ip.len == 4 ? AF_INET : AF_INET6, ip.b, buf, sizeof buf);
  return buf;
}

bool parse_line(std::string_view line, FakeDnsRecord& out) {
  const size_t a = line.find(' ');
  if (a == std::string_view::npos) return false;
  const size_t b = line.find(' ', a + 1);
  if (b == std::string_view::npos) return false;
  const std::string_view ip = line.substr(0, a);
  const std::string_view expiry = line.substr(a + 1, b - a - 1);
  const std::string_view name = line.substr(b + 1);
  const std::optional<Address> addr = make_address(ip, 0);
  if (!addr || addr->type == Address::Type::Domain || ip.front() == '[') return false;
  out.ip.len = addr->type == Address::Type::IPv4 ? 4 : 16;
  std::memcpy(out.ip.b, addr->ip.data(), out.ip.len);
  if (expiry.empty() || expiry.size() > 19) return false;  // fits in 63 bits
  out.expires_s = 0;
  for (const char c : expiry) {
    if (c < '0' || c > '9') return false;
    out.expires_s = out.expires_s * 10 + static_cast<uint64_t>(c - '0');
  }
  // A host name: not an IP literal, no space, no byte a host name never has, at most 253 bytes.
  const std::optional<Address> host = make_address(name, 0);
  if (!host || host->type != Address::Type::Domain || name.size() > 253 ||
      name.find(' ') != std::string_view::npos) {
    return false;
  }
  out.name.assign(name);
  return true;
}

uint64_t wall_s() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

std::string encode_fake_dns_file(const std::vector<FakeDnsRecord>& records) {
  std::string out(kFakeDnsFileHeader);
  out += '\n';
  for (const FakeDnsRecord& r : records) {
    out += ip_text(r.ip);
    out += ' ';
    out += std::to_string(r.expires_s);
    out += ' ';
    out += r.name;
    out += '\n';
  }
  return out;
}

std::optional<std::vector<FakeDnsRecord>> parse_fake_dns_file(std::string_view text) {
  std::vector<FakeDnsRecord> out;
  size_t at = text.find('\n');
  if (at == std::string_view::npos || text.substr(0, at) != kFakeDnsFileHeader) return std::nullopt;
  ++at;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) return std::nullopt;  // cut short: not a file we wrote
    FakeDnsRecord r;
    if (!parse_line(text.substr(at, end - at), r)) return std::nullopt;
    out.push_back(std::move(r));
    at = end + 1;
  }
  return out;
}

std::vector<FakeDnsRecord> TunDns::snapshot(uint64_t now_s, uint64_t now_ms) const {
  std::vector<FakeDnsRecord> out;
  const uint64_t expire_ms = static_cast<uint64_t>(expire_s_) * 1000;
  const FakeIpPool* pools[] = {&pool4_, pool6_.get()};
  for (const FakeIpPool* pool : pools) {
    if (pool == nullptr) continue;
    for (FakeIpPool::Record& r : pool->records(now_ms)) {
      const uint64_t age = now_ms > r.last_ms ? now_ms - r.last_ms : 0;
      const uint64_t left_ms = expire_ms > age ? expire_ms - age : 0;
      out.push_back({r.ip, now_s + (left_ms + 999) / 1000, std::move(r.name)});
    }
  }
  return out;
}

TunDns::Restored TunDns::restore(const std::vector<FakeDnsRecord>& records, uint64_t now_s,
                                 uint64_t now_ms) {
  Restored got;
  const uint64_t expire_ms = static_cast<uint64_t>(expire_s_) * 1000;
  std::vector<FakeIpPool::Record> v4, v6;
  for (const FakeDnsRecord& r : records) {
    if (r.expires_s <= now_s) {
      ++got.expired;
      continue;
    }
    FakeIpPool* pool = r.ip.len == 4 ? &pool4_ : pool6_.get();
    if (pool == nullptr || !pool->contains(r.ip)) {
      ++got.outside;
      continue;
    }
    // The entry's last use, on this boot's monotonic clock, as if it had never stopped.
    const uint64_t left_ms = std::min(expire_ms, (r.expires_s - now_s) * 1000);
    const uint64_t age = expire_ms - left_ms;
    (r.ip.len == 4 ? v4 : v6).push_back({r.ip, r.name, now_ms > age ? now_ms - age : 0});
  }
  const size_t candidates = v4.size() + v6.size();
  size_t skipped = pool4_.restore(std::move(v4));
  if (pool6_) skipped += pool6_->restore(std::move(v6));
  got.outside += skipped;
  got.loaded = candidates - skipped;
  return got;
}

void TunDns::load_database() {
  std::string text;
  const std::string err = read_regular_file(database_, kMaxFileSize, text);
  if (!err.empty()) {
    if (err == std::strerror(ENOENT)) {
      LOG_INFO("fake DNS: no table in %s yet: starting empty", database_.c_str());
    } else {
      LOG_WARN("fake DNS: cannot read %s (%s): starting with an empty table", database_.c_str(),
               err.c_str());
    }
    return;
  }
  const std::optional<std::vector<FakeDnsRecord>> records = parse_fake_dns_file(text);
  if (!records) {
    LOG_WARN("fake DNS: %s is not a fake-dns table of ours (corrupt): starting with an empty table",
             database_.c_str());
    return;
  }
  const Restored got = restore(*records, wall_s(), now_ms());
  if (got.outside > 0) {
    LOG_WARN(
        "fake DNS: %zu entr%s of %s ignored: address outside the configured pools "
        "(fake_dns_ipv4_network / fake_dns_ipv6_network changed?) or taken twice",
        got.outside, got.outside == 1 ? "y" : "ies", database_.c_str());
  }
  LOG_NOTICE("fake DNS: %zu entr%s loaded from %s (%zu expired)", got.loaded,
             got.loaded == 1 ? "y" : "ies", database_.c_str(), got.expired);
  saved_changes_ = pool4_.changes() + (pool6_ ? pool6_->changes() : 0);
}

void TunDns::save_database(bool force) {
  if (database_.empty()) return;
  const uint64_t changes = pool4_.changes() + (pool6_ ? pool6_->changes() : 0);
  if (!force && changes == saved_changes_) return;
  const std::string text = encode_fake_dns_file(snapshot(wall_s(), now_ms()));
  const std::string err = write_file_atomically(
      database_, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  if (!err.empty()) {
    LOG_WARN("fake DNS: cannot write %s: %s", database_.c_str(), err.c_str());
    return;
  }
  saved_changes_ = changes;
}

}  // namespace ss
