// shadowsocks-rust's SOCKS5/HTTP user file (the file of ss-local's `socks5_auth_config_path`,
// format of crates/shadowsocks-service/src/local/socks/config.rs):
//   { "password": { "users": [ { "user_name": "...", "password": "..." }, ... ] } }
// and the table the SOCKS5 (RFC 1929) and HTTP Basic (RFC 7617) front ends check against.
// shadowsocks-rust reads the file as JSON5; we read JSON with comments. Where it is lenient we
// are strict, so that a file meant to require authentication can never silently require none:
// a missing "password" or an empty "users" list is an error, not "no authentication", and a
// user name given twice is an error, not "the last one wins".
//
// The table keeps no password: each entry is a BLAKE2b digest keyed with a per-table random key,
// and check() compares one digest against every entry with sodium_memcmp.

#include "client/inbound/users_file.h"

#include <sodium.h>

#include <cstring>
#include <memory>

#include <nlohmann/json.hpp>

#include "crypto/kdf.h"
#include "relay/read_file.h"

namespace ss {
namespace {

using nlohmann::json;

// Collects nothing; remembers the first syntax error of a document json::parse rejected.
struct SyntaxErrorProbe {
  size_t position = 0;
  int id = 0;
  std::string message;

  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const json::string_t&) { return true; }
  bool string(json::string_t&) { return true; }
  bool binary(json::binary_t&) { return true; }
  bool start_object(size_t) { return true; }
  bool key(json::string_t&) { return true; }
  bool end_object() { return true; }
  bool start_array(size_t) { return true; }
  bool end_array() { return true; }
  bool parse_error(size_t pos, const std::string&, const json::exception& ex) {
    position = pos;
    id = ex.id;
    message = ex.what();
    return false;
  }
};

// "invalid JSON at line N: <what nlohmann says>", without the "last read: '...'" part, which
// can quote the file's text (a password), and without a number's text.
std::string describe_syntax_error(std::string_view text) {
  SyntaxErrorProbe probe;
  json::sax_parse(text.begin(), text.end(), &probe, json::input_format_t::json,
                  /*strict=*/true, /*ignore_comments=*/true);
  size_t line = 1;
  const size_t upto = probe.position < text.size() ? probe.position : text.size();
  for (size_t i = 0; i < upto; ++i) line += text[i] == '\n' ? 1 : 0;
  std::string out = "invalid JSON at line " + std::to_string(line);
  constexpr int kOutOfRangeNumber = 406;  // nlohmann: "number overflow parsing '...'"
  if (probe.id == kOutOfRangeNumber) return out + ": a number is too large";
  std::string_view detail = probe.message;
  const size_t column = detail.find(", column ");
  const size_t colon = column == std::string_view::npos ? column : detail.find(": ", column);
  if (colon == std::string_view::npos) return out;
  detail.remove_prefix(colon + 2);
  detail = detail.substr(0, detail.find("; last read"));
  return out + ": " + std::string(detail);
}

// The string at `v` (1..255 bytes), or an error naming `path`. Never shows the value.
const std::string* field_string(const json& obj, const char* name, const std::string& path,
                                std::string& problem) {
  const auto it = obj.find(name);
  if (it == obj.end()) {
    problem = path + ": missing";
    return nullptr;
  }
  if (!it->is_string()) {
    problem = path + ": must be a string";
    return nullptr;
  }
  const auto& s = it->get_ref<const std::string&>();
  if (s.empty() || s.size() > UserTable::kMaxFieldLen) {
    problem = path + ": must be 1 to " + std::to_string(UserTable::kMaxFieldLen) + " bytes long";
    return nullptr;
  }
  return &s;
}

bool has_control_byte(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F) return true;
  }
  return false;
}

// Fills `table` from the parsed document; false with `problem` (a key path and what is wrong).
bool load_users(const json& doc, UserTable& table, std::string& problem) {
  if (!doc.is_object()) {
    problem = R"(must be a JSON object: {"password": {"users": [...]}})";
    return false;
  }
  const auto pw = doc.find("password");
  if (pw == doc.end() || !pw->is_object()) {
    problem = R"(password: must be an object {"users": [...]})";
    return false;
  }
  const auto users = pw->find("users");
  if (users == pw->end() || !users->is_array() || users->empty()) {
    problem = R"(password.users: must be a non-empty array of {"user_name": ..., "password": ...})";
    return false;
  }
  for (size_t i = 0; i < users->size(); ++i) {
    const json& u = (*users)[i];
    const std::string at = "password.users[" + std::to_string(i) + "]";
    if (!u.is_object()) {
      problem = at + R"(: must be an object {"user_name": ..., "password": ...})";
      return false;
    }
    const std::string* name = field_string(u, "user_name", at + ".user_name", problem);
    if (name == nullptr) return false;
    // Names go into log lines: a control character could forge or split them.
    if (has_control_byte(*name)) {
      problem = at + ".user_name: must not contain control characters";
      return false;
    }
    const std::string* password = field_string(u, "password", at + ".password", problem);
    if (password == nullptr) return false;
    if (!table.add(*name, *password)) {
      problem = at + ".user_name: \"" + *name + "\" appears twice";
      return false;
    }
  }
  return true;
}

}  // namespace

UserTable::UserTable() {
  random_bytes(key_);
}

UserTable::~UserTable() {
  secure_zero(key_);
}

UserTable::UserTable(UserTable&&) noexcept = default;
UserTable& UserTable::operator=(UserTable&&) noexcept = default;

UserTable::Digest UserTable::digest(std::string_view user, std::string_view password) const {
  // BLAKE2b-256(key; len(user) as 8 bytes little-endian || user || password): the length prefix
  // keeps ("ab", "c") and ("a", "bc") apart.
  uint8_t len[8];
  uint64_t n = user.size();
  for (uint8_t& b : len) {
    b = static_cast<uint8_t>(n & 0xFF);
    n >>= 8;
  }
  crypto_generichash_state st;
  crypto_generichash_init(&st, key_.data(), key_.size(), sizeof(Digest));
  crypto_generichash_update(&st, len, sizeof len);
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(user.data()), user.size());
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(password.data()),
                            password.size());
  Digest d;
  crypto_generichash_final(&st, d.data(), d.size());
  return d;
}

UserTable::Digest UserTable::name_digest(std::string_view user) const {
  Digest d;
  crypto_generichash(d.data(), d.size(), reinterpret_cast<const uint8_t*>(user.data()), user.size(),
                     key_.data(), key_.size());
  return d;
}

bool UserTable::add(std::string_view user, std::string_view password) {
  const Digest name = name_digest(user);
  for (const Entry& e : entries_) {
    if (e.name == name) return false;  // configuration time: no need for constant time here
  }
  entries_.push_back(Entry{name, digest(user, password)});
  return true;
}

bool UserTable::check(std::string_view user, std::string_view password) const {
  const Digest d = digest(user, password);
  // No early exit: every entry is compared in full and the results are OR-ed.
  int matched = 0;
  for (const Entry& e : entries_) {
    matched |= sodium_memcmp(d.data(), e.pair.data(), d.size()) == 0;
  }
  return matched != 0;
}

std::optional<UserTable> parse_users_file(std::string_view text, std::string_view source,
                                          std::string& error) {
  const json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false,
                               /*ignore_comments=*/true);
  if (doc.is_discarded()) {
    error = std::string(source) + ": " + describe_syntax_error(text);
    return std::nullopt;
  }
  UserTable table;
  std::string problem;
  if (!load_users(doc, table, problem)) {
    error = std::string(source) + ": " + problem;
    return std::nullopt;
  }
  return table;
}

std::optional<UserTable> read_users_file(const std::string& path, std::string_view source,
                                         std::string& error) {
  const std::string where = std::string(source) + ": \"" + path + "\"";
  std::string text;
  const std::string problem = read_regular_file(path, kMaxUsersFileSize, text);
  if (!problem.empty()) {
    sodium_memzero(text.data(), text.size());
    error = where + ": " + problem;
    return std::nullopt;
  }
  std::optional<UserTable> table = parse_users_file(text, source, error);
  sodium_memzero(text.data(), text.size());  // the file holds passwords in clear
  return table;
}

}  // namespace ss
