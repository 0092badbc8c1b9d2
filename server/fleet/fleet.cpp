// A fleet of ss-servers sharing users and quota counters through Redis (issue 14 item 7), driven
// from the main libuv loop with hiredis's async API (two connections: commands, and one
// subscribed to the change channel).
//
// Schema (db of the URL):
//   HASH   ss:users               field: user name, value: JSON {"password": ..., "quota_bytes"?,
//                                 "quota_period"?, "rate_limit_bytes_per_second"?} (the config's
//                                 user entry without "name")
//   PUBLISH ss:users:changed <anything>   after a change: every server reads ss:users again
//   HASH   ss:used:<user>:<period start>  field: one server process ("host:pid:start time"),
//                                 value: the bytes that process counted for the user in the
//                                 period (period start: UTC seconds, 0 for a lifetime quota)
//
// Users: read whole at connect, at (re)subscribe and at every message on the channel, and applied
// through ServerControl::apply as a reload is (added users work at once, removed ones are refused
// for new connections). Counters: every second each server writes its own count for each user
// with a quota (HSET, absolute) and reads the period's fields back (HVALS); their sum becomes the
// user's count here, so the quota is enforced on the fleet's sum. A user can go over its quota by
// at most what every server relays for it in one second plus one Redis round trip.
//
// Outage: the last user table stays, bytes are counted locally, each connection reconnects with a
// backoff (100 ms doubling to 2 s); one warning when it starts and one line when it ends. The
// first write after it carries this process's whole count (absolute), so nothing is counted twice
// and nothing is lost, even if Redis restarted empty.

#include "server/fleet/fleet.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>

#include "crypto/aead2022.h"
#include "crypto/kdf.h"
#include "relay/log.h"
#include "relay/user_limits.h"

namespace ss {

// ---- pure parts -------------------------------------------------------------------------------

std::vector<UserSpec> fleet_users_from_hash(
    const std::vector<std::pair<std::string, std::string>>& fields,
    std::vector<std::string>* skipped) {
  std::vector<UserSpec> out;
  for (const auto& [name, value] : fields) {
    nlohmann::json entry = nlohmann::json::parse(value, nullptr, false);
    if (entry.is_discarded() || !entry.is_object()) {
      if (skipped) skipped->push_back(name + ": not a JSON object");
      continue;
    }
    entry["name"] = name;
    try {
      std::vector<UserSpec> one =
          parse_users_json(nlohmann::json::array({entry}).dump(), kFleetUsersKey);
      out.push_back(std::move(one.front()));
    } catch (const ConfigError& e) {
      if (skipped) skipped->push_back(name + ": " + e.what());
    }
  }
  std::sort(out.begin(), out.end(),
            [](const UserSpec& a, const UserSpec& b) { return a.name < b.name; });
  return out;
}

Config with_fleet_users(Config base, const std::vector<UserSpec>& users,
                        std::vector<std::string>* skipped) {
  const bool several = base.inbounds.size() > 1;
  for (ServerSpec& in : base.inbounds) {
    if (!in.users_only) continue;
    in.users.clear();
    // "alice: port 8389: ..." when the config has several ports.
    auto skip = [&](const UserSpec& u, const std::string& why) {
      if (skipped == nullptr) return;
      skipped->push_back(u.name + ": " + (several ? "port " + std::to_string(in.port) + ": " : "") +
                         why);
    };
    for (const UserSpec& u : users) {
      UserSpec d = u;
      if (in.method_kind == MethodKind::Aead2022 && in.method2022 != nullptr) {
        // SIP023: the user's password is its base64 uPSK.
        Psk2022 k = parse_2022_password(*in.method2022, u.password);
        if (!k.error.empty() || k.keys.size() != 1) {
          skip(u, "password: " + (k.error.empty() ? std::string("must be one key") : k.error));
          continue;
        }
        d.key = std::move(k.keys.front());
      } else if (in.method_kind == MethodKind::Classic && in.cipher != nullptr) {
        d.key = derive_master_key(u.password, in.cipher->key_len);
      } else {
        continue;
      }
      const bool twin = std::any_of(in.users.begin(), in.users.end(),
                                    [&](const UserSpec& o) { return o.key == d.key; });
      if (twin) {
        skip(u, "the same password as another user");
        continue;
      }
      in.users.push_back(std::move(d));
    }
  }
  if (!base.inbounds.empty()) base.users = base.inbounds.front().users;
  return base;
}

std::string fleet_user_json(const UserSpec& user) {
  nlohmann::json v = {{"password", user.password}};
  if (user.quota_bytes != 0) v["quota_bytes"] = user.quota_bytes;
  if (user.quota_period == QuotaPeriod::Day) v["quota_period"] = "day";
  if (user.quota_period == QuotaPeriod::Month) v["quota_period"] = "month";
  if (user.rate_limit != 0) v["rate_limit_bytes_per_second"] = user.rate_limit;
  return v.dump();
}

uint64_t FleetCounter::prepare(int64_t period_start, uint64_t used_now) {
  if (period_start != period) {
    period = period_start;
    last_set = 0;
    own = 0;
  }
  if (used_now > last_set) own += used_now - last_set;
  last_set = used_now;
  return own;
}

uint64_t FleetCounter::merge(uint64_t total, uint64_t used_at_write) {
  const uint64_t delta = total - used_at_write;  // modulo 2^64
  last_set += delta;
  return delta;
}

// ---- the client -------------------------------------------------------------------------------

namespace {

std::string users_signature(const std::vector<UserSpec>& users) {
  std::string s;
  for (const UserSpec& u : users) {
    s += u.name + '\0' + u.password + '\0' + std::to_string(u.quota_bytes) + '\0' +
         std::to_string(static_cast<int>(u.quota_period)) + '\0' + std::to_string(u.rate_limit) +
         '\n';
  }
  return s;
}

const char* error_of(const redisAsyncContext* ac) {
  return ac != nullptr && ac->errstr[0] != '\0' ? ac->errstr : "connection lost";
}

}  // namespace

struct Fleet::SyncRequest {
  Fleet* fleet;
  std::shared_ptr<UserState> state;
  int64_t period;
  uint64_t used_at_write;
};

Fleet::Fleet(Engine& engine, ServerControl& control, RedisUrl url)
    : engine_(engine), control_(control), url_(std::move(url)), loop_(engine.main_loop()) {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  field_ = std::string(host) + ":" + std::to_string(getpid()) + ":" +
           std::to_string(static_cast<long long>(time(nullptr)));
}

void Fleet::start() {
  if (started_) return;
  started_ = true;
  for (Link* l : {&cmd_, &sub_}) {
    uv_timer_init(loop_, &l->retry);
    l->retry.data = this;
  }
  uv_timer_init(loop_, &sync_);
  sync_.data = this;
  uv_timer_start(&sync_, on_sync, kSyncMs, kSyncMs);
  control_.set_amend([this](Config& c) {
    if (have_users_) c = with_fleet_users(std::move(c), users_, nullptr);
  });
  connect(cmd_);
  connect(sub_);
}

void Fleet::stop() {
  if (!started_ || stopping_) return;
  stopping_ = true;
  for (Link* l : {&cmd_, &sub_}) {
    if (l->ac != nullptr) {
      redisAsyncContext* ac = l->ac;
      l->ac = nullptr;
      l->ready = false;
      redisAsyncFree(ac);  // pending callbacks get a null reply
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&l->retry), nullptr);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&sync_), nullptr);
}

Fleet::Link* Fleet::link_of(const redisAsyncContext* ac) {
  if (ac == cmd_.ac) return &cmd_;
  if (ac == sub_.ac) return &sub_;
  return nullptr;
}

void Fleet::connect(Link& link) {
  if (stopping_) return;
  redisAsyncContext* ac = redisAsyncConnect(url_.host.c_str(), url_.port);
  if (ac == nullptr || ac->err != 0) {
    const std::string why = ac != nullptr ? ac->errstr : "out of memory";
    if (ac != nullptr) redisAsyncFree(ac);
    outage(why.c_str());
    uv_timer_start(&link.retry, on_retry, link.backoff_ms, 0);
    link.backoff_ms = std::min(link.backoff_ms * 2, kMaxBackoffMs);
    return;
  }
  ac->data = this;
  link.ac = ac;
  link.ready = false;
  redisLibuvAttach(ac, loop_);
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  if (!url_.password.empty()) {
    if (url_.user.empty()) {
      redisAsyncCommand(ac, on_auth, nullptr, "AUTH %b", url_.password.data(),
                        url_.password.size());
    } else {
      redisAsyncCommand(ac, on_auth, nullptr, "AUTH %b %b", url_.user.data(), url_.user.size(),
                        url_.password.data(), url_.password.size());
    }
  }
  uv_timer_start(&link.retry, on_deadline, kConnectTimeoutMs, 0);
  if (&link == &cmd_) {
    redisAsyncCommand(ac, on_ready, nullptr, "SELECT %d", url_.db);
  } else {
    redisAsyncCommand(ac, on_message, nullptr, "SUBSCRIBE %s", kFleetUsersChannel);
  }
}

void Fleet::lost(Link& link, const char* why) {
  link.ac = nullptr;  // hiredis frees the context after this callback
  link.ready = false;
  if (stopping_) return;
  if (&link == &cmd_) {
    outage(why);
    for (auto& [name, c] : counters_) c.in_flight = false;
  } else {
    LOG_DEBUG("fleet: redis subscription lost (%s)", why);
  }
  uv_timer_start(&link.retry, on_retry, link.backoff_ms, 0);
  link.backoff_ms = std::min(link.backoff_ms * 2, kMaxBackoffMs);
}

void Fleet::outage(const char* why) {
  if (in_outage_) return;
  in_outage_ = true;
  outage_since_ms_ = uv_now(loop_);
  LOG_WARN(
      "fleet: redis at %s:%u unreachable (%s): keeping the last %zu users and counting locally; "
      "reconnecting",
      url_.host.c_str(), static_cast<unsigned>(url_.port), why, users_.size());
}

void Fleet::on_connect(const redisAsyncContext* ac, int status) {
  auto* f = static_cast<Fleet*>(ac->data);
  Link* link = f->link_of(ac);
  if (link == nullptr || status == REDIS_OK) return;
  f->lost(*link, error_of(ac));
}

void Fleet::on_disconnect(const redisAsyncContext* ac, int) {
  auto* f = static_cast<Fleet*>(ac->data);
  Link* link = f->link_of(ac);
  if (link == nullptr) return;
  f->lost(*link, error_of(ac));
}

void Fleet::on_auth(redisAsyncContext* ac, void* r, void*) {
  auto* reply = static_cast<redisReply*>(r);
  if (reply == nullptr || reply->type != REDIS_REPLY_ERROR) return;
  auto* f = static_cast<Fleet*>(ac->data);
  LOG_ERROR("fleet: redis refused the password of users_url: %s", reply->str);
  (void)f;
  redisAsyncDisconnect(ac);
}

void Fleet::on_ready(redisAsyncContext* ac, void* r, void*) {
  auto* reply = static_cast<redisReply*>(r);
  auto* f = static_cast<Fleet*>(ac->data);
  if (reply == nullptr || f->stopping_ || ac != f->cmd_.ac) return;
  if (reply->type == REDIS_REPLY_ERROR) {
    LOG_ERROR("fleet: redis: SELECT %d: %s", f->url_.db, reply->str);
    redisAsyncDisconnect(ac);
    return;
  }
  f->ready_cmd();
}

void Fleet::ready_cmd() {
  cmd_.ready = true;
  uv_timer_stop(&cmd_.retry);
  cmd_.backoff_ms = kMinBackoffMs;
  if (in_outage_) {
    LOG_NOTICE("fleet: redis at %s:%u reachable again after %.1f s: merging the local counts",
               url_.host.c_str(), static_cast<unsigned>(url_.port),
               static_cast<double>(uv_now(loop_) - outage_since_ms_) / 1000.0);
    in_outage_ = false;
  } else {
    LOG_NOTICE("fleet: users from redis at %s:%u db %d", url_.host.c_str(),
               static_cast<unsigned>(url_.port), url_.db);
  }
  refresh_users();
  sync_counters();
}

void Fleet::on_message(redisAsyncContext* ac, void* r, void*) {
  auto* reply = static_cast<redisReply*>(r);
  auto* f = static_cast<Fleet*>(ac->data);
  if (reply == nullptr || f->stopping_ || ac != f->sub_.ac) return;
  if (reply->type == REDIS_REPLY_ERROR) {
    LOG_ERROR("fleet: redis: SUBSCRIBE %s: %s", kFleetUsersChannel, reply->str);
    redisAsyncDisconnect(ac);
    return;
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
      reply->element[0]->type != REDIS_REPLY_STRING) {
    return;
  }
  const std::string kind(reply->element[0]->str, reply->element[0]->len);
  if (kind == "subscribe") {
    f->sub_.ready = true;
    uv_timer_stop(&f->sub_.retry);
    f->sub_.backoff_ms = kMinBackoffMs;
    f->refresh_users();  // changes made while the subscription was down
  } else if (kind == "message") {
    f->refresh_users();
  }
}

void Fleet::refresh_users() {
  if (!cmd_.ready || cmd_.ac == nullptr) return;
  redisAsyncCommand(cmd_.ac, on_users, nullptr, "HGETALL %s", kFleetUsersKey);
}

void Fleet::on_users(redisAsyncContext* ac, void* r, void*) {
  auto* f = static_cast<Fleet*>(ac->data);
  if (r == nullptr || f->stopping_) return;
  f->users_reply(static_cast<redisReply*>(r));
}

void Fleet::users_reply(const redisReply* reply) {
  if (reply->type != REDIS_REPLY_ARRAY) {
    LOG_ERROR("fleet: redis: HGETALL %s: %s", kFleetUsersKey,
              reply->type == REDIS_REPLY_ERROR ? reply->str : "not a hash");
    return;
  }
  std::vector<std::pair<std::string, std::string>> fields;
  for (size_t i = 0; i + 1 < reply->elements; i += 2) {
    const redisReply* k = reply->element[i];
    const redisReply* v = reply->element[i + 1];
    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
    fields.emplace_back(std::string(k->str, k->len), std::string(v->str, v->len));
  }
  std::vector<std::string> skipped;
  std::vector<UserSpec> users = fleet_users_from_hash(fields, &skipped);
  std::string text;
  for (const std::string& s : skipped) text += (text.empty() ? "" : "; ") + s;
  if (!text.empty() && text != last_skipped_) {
    LOG_WARN("fleet: users left out: %s", text.c_str());
  }
  last_skipped_ = text;
  apply_users(std::move(users));
}

// ---- the management API's user changes (SharedUsers) ---------------------------------------

namespace {

// KEYS[1]: the users hash; ARGV: the name, the value, the channel. 1: done, 0: the name is
// there already (add) or not there (remove, set).
constexpr const char* kAddScript =
    "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then "
    "redis.call('PUBLISH', ARGV[3], ARGV[1]) return 1 end return 0";
constexpr const char* kRemoveScript =
    "if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then "
    "redis.call('PUBLISH', ARGV[3], ARGV[1]) return 1 end return 0";
constexpr const char* kSetScript =
    "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then "
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) redis.call('PUBLISH', ARGV[3], ARGV[1]) "
    "return 1 end return 0";

// Why no port of `cfg` can take `user` beside `others` (the table now: a key not valid for the
// method, or another user's), or empty if one can. The other servers would refuse it too.
std::string unusable_key(const Config& cfg, const std::vector<UserSpec>& others,
                         const UserSpec& user) {
  std::vector<UserSpec> all;
  for (const UserSpec& o : others) {
    if (o.name != user.name) all.push_back(o);
  }
  all.push_back(user);
  std::vector<std::string> skipped;
  const Config c = with_fleet_users(cfg, all, &skipped);
  for (const ServerSpec& in : c.inbounds) {
    for (const UserSpec& u : in.users) {
      if (u.name == user.name) return "";
    }
  }
  std::string why;
  for (const std::string& s : skipped) {
    if (s.rfind(user.name + ": ", 0) == 0) why += (why.empty() ? "" : "; ") + s;
  }
  return "uPSK: not usable on any port: " + why;
}

}  // namespace

// One API change: the script's reply, then the table read back (HGETALL, sent right after it on
// the same connection, so it sees the change); the answer goes out with the second reply, once
// this server has applied the table. Each of the two callbacks holds one reference.
struct Fleet::UserWrite {
  Fleet* fleet;
  Done done;
  int missing_status;
  std::string missing_error;
  int refs = 2;
  int result = -1;  // 1 done, 0 missing/present, -1 no answer
  std::string error = "redis connection lost before it answered";

  void release() {
    if (--refs > 0) return;
    if (result == 1) {
      done(0, "");
    } else if (result == 0) {
      done(missing_status, missing_error);
    } else {
      done(503, error);
    }
    delete this;
  }
};

void Fleet::add_user(const UserSpec& user, Done done) {
  if (std::string why = unusable_key(control_.config(), users_, user); !why.empty()) {
    done(400, why);
    return;
  }
  write_user(kAddScript, user.name, fleet_user_json(user), 400,
             "a user named \"" + user.name + "\" already exists in redis", std::move(done));
}

void Fleet::remove_user(const std::string& name, Done done) {
  write_user(kRemoveScript, name, "", 404, "user not found (in redis)", std::move(done));
}

void Fleet::set_user(const UserSpec& user, Done done) {
  if (std::string why = unusable_key(control_.config(), users_, user); !why.empty()) {
    done(400, why);
    return;
  }
  write_user(kSetScript, user.name, fleet_user_json(user), 404, "user not found (in redis)",
             std::move(done));
}

void Fleet::write_user(const char* script, const std::string& name, const std::string& value,
                       int missing_status, std::string missing_error, Done done) {
  if (stopping_ || !cmd_.ready || cmd_.ac == nullptr) {
    done(503, "redis at " + url_.host + ":" + std::to_string(url_.port) +
                  " is unreachable: the fleet's users cannot change now");
    return;
  }
  auto* w = new UserWrite{this, std::move(done), missing_status, std::move(missing_error)};
  if (redisAsyncCommand(cmd_.ac, on_user_written, w, "EVAL %s 1 %s %b %b %s", script,
                        kFleetUsersKey, name.data(), name.size(), value.data(), value.size(),
                        kFleetUsersChannel) != REDIS_OK) {
    w->refs = 1;
    w->release();
    return;
  }
  if (redisAsyncCommand(cmd_.ac, on_users_written, w, "HGETALL %s", kFleetUsersKey) != REDIS_OK) {
    w->release();  // the script's callback answers
  }
}

void Fleet::on_user_written(redisAsyncContext*, void* r, void* priv) {
  auto* w = static_cast<UserWrite*>(priv);
  const auto* reply = static_cast<const redisReply*>(r);
  if (reply != nullptr) {
    if (reply->type == REDIS_REPLY_INTEGER) {
      w->result = reply->integer == 1 ? 1 : 0;
    } else {
      w->error = std::string("redis: ") +
                 (reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply to EVAL");
      LOG_ERROR("fleet: a user change from the API failed: %s", w->error.c_str());
    }
  }
  w->release();
}

void Fleet::on_users_written(redisAsyncContext*, void* r, void* priv) {
  auto* w = static_cast<UserWrite*>(priv);
  Fleet* f = w->fleet;
  if (r != nullptr && !f->stopping_) f->users_reply(static_cast<redisReply*>(r));
  w->release();
}

void Fleet::apply_users(std::vector<UserSpec> users) {
  std::string sig = users_signature(users);
  if (have_users_ && sig == users_signature_) return;
  std::vector<std::string> skipped;
  Config next = with_fleet_users(control_.config(), users, &skipped);
  // Each once while it lasts (every change applies the whole table again).
  std::set<std::string> left_out(skipped.begin(), skipped.end());
  for (const std::string& s : left_out) {
    if (left_out_.count(s) == 0) LOG_WARN("fleet: user left out: %s", s.c_str());
  }
  std::string error;
  if (!control_.apply(std::move(next), &error)) {
    LOG_ERROR("fleet: the users from redis were refused: %s; keeping the running ones",
              error.c_str());
    return;
  }
  users_ = std::move(users);
  users_signature_ = std::move(sig);
  left_out_ = std::move(left_out);
  have_users_ = true;
}

void Fleet::on_sync(uv_timer_t* t) {
  static_cast<Fleet*>(t->data)->sync_counters();
}

void Fleet::on_retry(uv_timer_t* t) {
  auto* f = static_cast<Fleet*>(t->data);
  f->connect(t == &f->cmd_.retry ? f->cmd_ : f->sub_);
}

void Fleet::on_deadline(uv_timer_t* t) {
  auto* f = static_cast<Fleet*>(t->data);
  Link& link = t == &f->cmd_.retry ? f->cmd_ : f->sub_;
  if (link.ac == nullptr || link.ready) return;
  redisAsyncContext* ac = link.ac;
  link.ac = nullptr;   // its callbacks, called with a null reply now, find no link
  redisAsyncFree(ac);  // closes its poll handle
  f->lost(link, "no answer within 1 s");
}

void Fleet::sync_counters() {
  if (!cmd_.ready || cmd_.ac == nullptr || stopping_) return;
  const std::shared_ptr<UserLimits>& limits = engine_.runtime()->user_limits;
  if (!limits) return;
  const int64_t now = limits->now_s();
  for (const std::shared_ptr<UserState>& s : limits->states()) {
    if (s->quota() == 0) continue;
    FleetCounter& c = counters_[s->name()];
    if (c.in_flight) continue;
    const int64_t period = s->period_start(now);
    const uint64_t used = s->used(now);
    const uint64_t own = c.prepare(period, used);
    const std::string key = kFleetUsedPrefix + s->name() + ":" + std::to_string(period);
    redisAsyncCommand(cmd_.ac, nullptr, nullptr, "HSET %b %b %llu", key.data(), key.size(),
                      field_.data(), field_.size(), static_cast<unsigned long long>(own));
    if (s->period() != QuotaPeriod::None) {
      // Kept a week past the period's end, then Redis drops it.
      const int64_t expire = quota_period_end(s->period(), period) + 7 * 86400;
      redisAsyncCommand(cmd_.ac, nullptr, nullptr, "EXPIREAT %b %lld", key.data(), key.size(),
                        static_cast<long long>(expire));
    }
    auto* req = new SyncRequest{this, s, period, used};
    if (redisAsyncCommand(cmd_.ac, on_total, req, "HVALS %b", key.data(), key.size()) != REDIS_OK) {
      delete req;
      continue;
    }
    c.in_flight = true;
  }
}

void Fleet::on_total(redisAsyncContext*, void* r, void* priv) {
  std::unique_ptr<SyncRequest> req(static_cast<SyncRequest*>(priv));
  auto* reply = static_cast<redisReply*>(r);
  Fleet* f = req->fleet;
  FleetCounter& c = f->counters_[req->state->name()];
  c.in_flight = false;
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || c.period != req->period) return;
  uint64_t total = 0;
  for (size_t i = 0; i < reply->elements; ++i) {
    const redisReply* v = reply->element[i];
    if (v->type == REDIS_REPLY_STRING) total += std::strtoull(v->str, nullptr, 10);
  }
  const std::shared_ptr<UserLimits>& limits = f->engine_.runtime()->user_limits;
  const int64_t now = limits ? limits->now_s() : time(nullptr);
  if (req->state->period_start(now) != req->period) return;  // a new period began meanwhile
  req->state->add(c.merge(total, req->used_at_write), now);
}

FleetControl::FleetControl(Engine& engine, const Config& running, RedisUrl url, int argc,
                           char** argv)
    : control_(engine, running, argc, argv), fleet_(engine, control_, std::move(url)) {
  control_.set_shared_users(&fleet_);
  fleet_.start();
}

}  // namespace ss
