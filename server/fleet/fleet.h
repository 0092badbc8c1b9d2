#pragma once
// A fleet of ss-servers sharing its users, quotas and traffic counters through Redis (issue 14
// item 7): "users_url": "redis://host:port/db". The schema, the timing and what an outage does are
// in fleet.cpp's opening comment and the README ("A fleet with Redis").

#include <hiredis/async.h>
#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "relay/app.h"
#include "relay/config.h"
#include "relay/redis_url.h"
#include "server/server_control.h"

namespace ss {

// Redis keys (db of the URL): the users hash, the channel announcing its changes, and the prefix
// of the per-user, per-period counter hashes ("ss:used:<user>:<period start>").
inline constexpr const char* kFleetUsersKey = "ss:users";
inline constexpr const char* kFleetUsersChannel = "ss:users:changed";
inline constexpr const char* kFleetUsedPrefix = "ss:used:";

// ---- pure parts -------------------------------------------------------------------------------

// The users of the `ss:users` hash (field: name, value: JSON {"password", "quota_bytes"?,
// "quota_period"?, "rate_limit_bytes_per_second"?}), sorted by name. An entry that is not valid is
// left out, with "<name>: <why>" in *skipped.
std::vector<UserSpec> fleet_users_from_hash(
    const std::vector<std::pair<std::string, std::string>>& fields,
    std::vector<std::string>* skipped);

// `base` (a finalized users_url config) with `users` on each of its classic inbounds, their keys
// derived. A user whose key is another's (the same password) is left out, named in *skipped.
Config with_fleet_users(Config base, const std::vector<UserSpec>& users,
                        std::vector<std::string>* skipped);

// One user's share of a period's count. Every server writes its own count (HSET, absolute, so a
// write repeated after a lost reply or a Redis restart counts nothing twice) and reads the sum.
struct FleetCounter {
  int64_t period = INT64_MIN;  // the period the fields below are of
  uint64_t last_set = 0;       // the local count as of the last write, the total merged in
  uint64_t own = 0;            // this server's bytes in the period
  bool in_flight = false;      // a write awaits its reply

  // Before a write, with the local count now: the bytes since the last write are this server's.
  // Returns the value to write (`own`).
  uint64_t prepare(int64_t period_start, uint64_t used_now);
  // The fleet's total came back for the write made at local count `used_at_write`: returns what
  // to add to the local count (modulo 2^64: it may lower it) so that it reads that total plus the
  // bytes counted since the write.
  uint64_t merge(uint64_t total, uint64_t used_at_write);
};

// A user as its `ss:users` value: {"password", "quota_bytes"?, "quota_period"?,
// "rate_limit_bytes_per_second"?} (what fleet_users_from_hash reads back).
std::string fleet_user_json(const UserSpec& user);

// ---- the client -------------------------------------------------------------------------------

// Also the management API's user store on a fleet server (SharedUsers): its changes are written
// to Redis (atomically with the announcement, by a Lua script), so they reach every server.
class Fleet final : public SharedUsers {
 public:
  Fleet(Engine& engine, ServerControl& control, RedisUrl url);
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // On the main loop: connects and keeps connecting.
  void start();
  // Closes the connections and timers (the loop then ends). Idempotent.
  void stop();
  // The last user table Redis gave (kept through an outage).
  const std::vector<UserSpec>& users() const { return users_; }

  // SharedUsers: HSETNX / HDEL / HSET-if-present + PUBLISH in one script; `done` once Redis has
  // answered and this server has read the table back (503 with the reason in an outage).
  void add_user(const UserSpec& user, Done done) override;
  void remove_user(const std::string& name, Done done) override;
  void set_user(const UserSpec& user, Done done) override;

 private:
  struct Link {
    redisAsyncContext* ac = nullptr;
    bool ready = false;  // authenticated (cmd: db selected; sub: subscribed)
    uv_timer_t retry;    // the wait before a reconnect, or the connect's deadline
    uint64_t backoff_ms = kMinBackoffMs;
  };
  struct SyncRequest;
  struct UserWrite;
  void write_user(const char* script, const std::string& name, const std::string& value,
                  int missing_status, std::string missing_error, Done done);
  void users_reply(const redisReply* reply);
  static void on_user_written(redisAsyncContext* ac, void* reply, void* priv);
  static void on_users_written(redisAsyncContext* ac, void* reply, void* priv);
  static constexpr uint64_t kMinBackoffMs = 100;
  static constexpr uint64_t kMaxBackoffMs = 2000;
  static constexpr uint64_t kSyncMs = 1000;
  // A connection not ready by then is dropped and tried again (hiredis 0.14's libuv adapter never
  // reports a connect that fails after EINPROGRESS: libuv's poll error is ignored).
  static constexpr uint64_t kConnectTimeoutMs = 1000;

  void connect(Link& link);
  void lost(Link& link, const char* why);
  void ready_cmd();
  void refresh_users();
  void apply_users(std::vector<UserSpec> users);
  void sync_counters();
  void outage(const char* why);

  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  static void on_auth(redisAsyncContext* ac, void* reply, void* priv);
  static void on_ready(redisAsyncContext* ac, void* reply, void* priv);
  static void on_message(redisAsyncContext* ac, void* reply, void* priv);
  static void on_users(redisAsyncContext* ac, void* reply, void* priv);
  static void on_total(redisAsyncContext* ac, void* reply, void* priv);
  static void on_retry(uv_timer_t* t);
  static void on_deadline(uv_timer_t* t);
  static void on_sync(uv_timer_t* t);
  Link* link_of(const redisAsyncContext* ac);

  Engine& engine_;
  ServerControl& control_;
  RedisUrl url_;
  uv_loop_t* loop_;
  Link cmd_;  // commands: the user table and the counters
  Link sub_;  // SUBSCRIBE ss:users:changed
  uv_timer_t sync_;
  std::string field_;  // this process's field in the counter hashes
  std::vector<UserSpec> users_;
  std::string users_signature_;
  bool have_users_ = false;
  std::map<std::string, FleetCounter> counters_;
  bool stopping_ = false;
  bool started_ = false;
  bool in_outage_ = false;
  uint64_t outage_since_ms_ = 0;
  std::string last_skipped_;
  std::set<std::string> left_out_;  // users left out of a port, as last warned
};

// ss-server's controller with a fleet: SIGHUP reloads the file and keeps Redis's users.
class FleetControl final : public Controller {
 public:
  FleetControl(Engine& engine, const Config& running, RedisUrl url, int argc, char** argv);
  void reload() override { control_.reload(); }
  bool start(uv_loop_t* main_loop, std::string* error) override {
    return control_.start(main_loop, error);
  }
  void stop() override {
    fleet_.stop();
    control_.stop();
  }

 private:
  ServerControl control_;
  Fleet fleet_;
};

}  // namespace ss
