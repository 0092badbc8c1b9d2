#pragma once
// DNS in tun mode (README "tun mode", DNS): UDP queries to port 53 of any address entering the TUN
// are either answered here from a fake-IP pool (fake mode: every name gets an address of its own
// from 198.18.0.0/15 or fc00::/18, and a flow to that address goes through the tunnel *by name*,
// so the server resolves it), or relayed to one configured resolver through the tunnel (relay
// mode: the reply still comes from the address the client queried). Shared by every worker's
// engine and inbounds of one device; the tables are behind a mutex.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "client/tun/packet.h"
#include "relay/address.h"

namespace ss {

// "198.18.0.0/15", "fc00::/18": an address and a prefix length.
struct IpNet {
  IpBytes base;  // the address with the host bits cleared
  int prefix = 0;
  bool contains(const IpBytes& ip) const;
};
// nullopt if malformed; IPv4 prefixes /1../30, IPv6 /1../126 (room for two hosts at least).
std::optional<IpNet> parse_ip_net(std::string_view text);

// One family's fake addresses: name <-> address, one address per name, the least recently used
// given away first once the pool (or kMaxEntries) is full. An entry unused for expire_ms (no
// query for its name, no new flow to its address) is forgotten. Thread-safe.
class FakeIpPool {
 public:
  static constexpr uint32_t kMaxEntries = 65536;
  FakeIpPool(const IpNet& net, uint64_t expire_ms);

  bool contains(const IpBytes& ip) const { return net_.contains(ip); }
  // The address of `name` (lower-cased; a final dot dropped), given one if it has none; the
  // entry's use time is refreshed.
  IpBytes assign(std::string_view name, uint64_t now_ms);
  // The name behind `ip` if it has a live entry (refreshed); false for an unknown or expired one.
  bool name_of(const IpBytes& ip, uint64_t now_ms, std::string& out);
  // Whether `ip` has a live entry (refreshed), without copying its name.
  bool live(const IpBytes& ip, uint64_t now_ms);
  size_t size() const;
  uint64_t evicted_live() const;  // entries given away while still live (the pool was full)

  // Persistence (fake_dns_database_path): the live entries, and putting them back at start.
  struct Record {
    IpBytes ip;
    std::string name;
    uint64_t last_ms = 0;
  };
  std::vector<Record> records(uint64_t now_ms) const;
  // Into an empty pool: entries whose address is not one this pool gives (outside it, or past
  // its capacity) or whose address or name is already taken are skipped; returns how many were.
  size_t restore(std::vector<Record> records);
  // Grows with every assignment and every use: a save is due when it moved.
  uint64_t changes() const;

 private:
  struct Entry {
    std::string name;
    uint64_t last_ms = 0;
    uint32_t prev = 0, next = 0;  // the LRU list, by slot (0: none)
  };
  IpBytes address_of(uint32_t slot) const;
  uint32_t slot_of(const IpBytes& ip) const;           // 0: not one of ours
  uint32_t touch(const IpBytes& ip, uint64_t now_ms);  // the live slot refreshed, or 0 (locked)
  void unlink(uint32_t slot);
  void push_back(uint32_t slot);
  bool expired(const Entry& e, uint64_t now_ms) const {
    return now_ms > e.last_ms && now_ms - e.last_ms >= expire_ms_;
  }

  IpNet net_;
  uint64_t expire_ms_;
  uint32_t capacity_;  // slots 1..capacity_ (host 0, the network address, is never given)
  mutable std::mutex mu_;
  std::vector<Entry> slots_;  // [0] unused; grows up to capacity_ + 1
  std::unordered_map<std::string, uint32_t> by_name_;
  uint32_t head_ = 0, tail_ = 0;  // least and most recently used
  uint64_t evicted_live_ = 0;
  uint64_t changes_ = 0;
};

struct TunDnsOptions {
  enum class Mode : uint8_t { Fake, Relay };
  Mode mode = Mode::Fake;
  IpNet pool4;
  std::optional<IpNet> pool6;  // null: AAAA queries get an empty answer (no IPv6 on the TUN)
  uint32_t expire_s = 600;
  std::optional<Address> resolver;  // relay mode; fake mode: where other query types go
  std::string database;             // fake mode: fake_dns_database_path, or empty
};

// The fake table's file (fake_dns_database_path; README "tun mode", DNS): a text file, a header
// line then one line per entry, `ADDRESS EXPIRY NAME` (expiry in Unix seconds).
struct FakeDnsRecord {
  IpBytes ip;
  uint64_t expires_s = 0;
  std::string name;
};
inline constexpr std::string_view kFakeDnsFileHeader = "shadowsocks-uv fake-dns 1";
std::string encode_fake_dns_file(const std::vector<FakeDnsRecord>& records);
// nullopt (the whole file refused) for a wrong header or any malformed line.
std::optional<std::vector<FakeDnsRecord>> parse_fake_dns_file(std::string_view text);

class TunDns {
 public:
  explicit TunDns(const TunDnsOptions& o);

  TunDnsOptions::Mode mode() const { return mode_; }
  // Where relayed queries go (relay mode; fake mode: query types other than A/AAAA), or null.
  const Address* resolver() const { return resolver_ ? &*resolver_ : nullptr; }

  // One DNS message (a query from a client): Reply with the answer in out[0, *out_len) (fake mode:
  // A/AAAA from the pools and, without a resolver, every other type empty), Relay (to resolver()),
  // or Drop (not a query we can read). Shared by UDP (on_query) and TCP (tun_dns_tcp.h).
  enum class Verdict : uint8_t { Reply, Relay, Drop };
  Verdict answer(const uint8_t* msg, size_t len, uint8_t* out, size_t cap, size_t* out_len,
                 uint64_t now_ms);

  // A UDP packet to port 53 read from the TUN (p, parsed as pkt). Reply: the answer packet is
  // in out[0, *out_len) (fake mode, A/AAAA and, without a resolver, every other type). Relay: hand
  // it to the UDP NAT (which sends it to resolver()). Drop: not a query we can read.
  Verdict on_query(const uint8_t* p, const IpPacket& pkt, uint8_t* scratch, size_t scratch_cap,
                   uint8_t* out, size_t cap, size_t* out_len, uint64_t now_ms);

  // A flow's destination: Unknown for an address of a fake pool with no live entry (refuse the
  // flow), Name with *name filled for a live one, NotFake for any other address.
  enum class Lookup : uint8_t { NotFake, Name, Unknown };
  Lookup target(const IpEndpoint& dst, uint64_t now_ms, std::string* name);
  bool is_fake(const IpBytes& ip) const;
  // A fake address with no live entry: a new flow to it is refused.
  bool refuses(const IpBytes& ip, uint64_t now_ms);

  uint32_t ttl() const { return ttl_; }
  FakeIpPool* pool(uint8_t version) { return version == 4 ? &pool4_ : pool6_.get(); }

  // A monotonic clock in ms shared by every worker (their loop clocks differ).
  static uint64_t now_ms();

  // The fake table's file. The pools' live entries as records expiring at wall time now_s on;
  // and putting records back (expired ones dropped): how many were loaded and skipped.
  std::vector<FakeDnsRecord> snapshot(uint64_t now_s, uint64_t now_ms) const;
  struct Restored {
    size_t loaded = 0, expired = 0, outside = 0;
  };
  Restored restore(const std::vector<FakeDnsRecord>& records, uint64_t now_s, uint64_t now_ms);
  const std::string& database() const { return database_; }
  // At start: reads database(), logging what came of it (a missing file is an empty table; a
  // corrupt one a warning and an empty table).
  void load_database();
  // Writes database() atomically if the table changed since the last load or save (or always,
  // with force); a failure is a warning.
  void save_database(bool force = false);

 private:
  std::string database_;
  uint64_t saved_changes_ = 0;
  uint32_t expire_s_;
  TunDnsOptions::Mode mode_;
  std::optional<Address> resolver_;
  uint32_t ttl_;
  FakeIpPool pool4_;
  std::unique_ptr<FakeIpPool> pool6_;
};

// A flow's target through a device with DNS `dns` (null: unchanged): a fake address becomes its
// name (same port); relay mode sends port 53 to the resolver. False: refuse the flow (a fake
// address with no live entry).
bool tun_dns_target(TunDns* dns, Address& target);

// The DNS of a tun listener from its validated spec (relay/config.h: tun_dns set).
struct ListenerSpec;
std::shared_ptr<TunDns> make_tun_dns(const ListenerSpec& spec);

}  // namespace ss
