#pragma once
// The user table for SOCKS5 (RFC 1929) and HTTP proxy (Basic) authentication on ss-local, read
// from shadowsocks-rust's user file, the one ss-local's `socks5_auth_config_path` key names:
//
//   { "password": { "users": [ { "user_name": "alice", "password": "secret" }, ... ] } }
//
// (shadowsocks-rust: crates/shadowsocks-service/src/local/socks/config.rs). No exceptions: the
// parsers return nullopt and set a one-line error that starts with the source name and the key
// path, and never quotes a password.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ss {

class UserTable {
 public:
  // Longest user name and password: RFC 1929 carries at most 255 bytes of each.
  static constexpr size_t kMaxFieldLen = 255;

  UserTable();
  ~UserTable();
  UserTable(UserTable&&) noexcept;
  UserTable& operator=(UserTable&&) noexcept;
  UserTable(const UserTable&) = delete;
  UserTable& operator=(const UserTable&) = delete;

  // Adds a user. False if the name is already present (the table is unchanged).
  bool add(std::string_view user, std::string_view password);

  // True if `user` is present with exactly `password`. Constant time with respect to the table:
  // the pair is hashed once with a per-table random key, and the digest is compared with every
  // entry's in full, so the time does not depend on which entry (if any) matches or on where a
  // mismatch is. It grows only with the table size and the length of the caller's own input.
  bool check(std::string_view user, std::string_view password) const;

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

 private:
  using Digest = std::array<uint8_t, 32>;
  Digest digest(std::string_view user, std::string_view password) const;
  Digest name_digest(std::string_view user) const;

  std::array<uint8_t, 32> key_{};  // random, per table; the passwords are not kept
  struct Entry {
    Digest name;  // keyed hash of the name alone (duplicate detection)
    Digest pair;  // keyed hash of the name and the password
  };
  std::vector<Entry> entries_;
};

// Largest user file read_users_file() accepts.
inline constexpr size_t kMaxUsersFileSize = 1 << 20;

// Parses the JSON text of a user file (comments allowed, as nlohmann::json allows them).
// `source` starts every error message, e.g. "socks5_auth_config_path". Rules: the document is an
// object; "password" is an object whose "users" is a non-empty array of objects, each with a
// "user_name" and a "password" string of 1..255 bytes; names have no control characters and are
// unique. Unknown keys are ignored (shadowsocks-rust ignores them too). Errors look like
//   socks5_auth_config_path: password.users[2].user_name: must be a string
std::optional<UserTable> parse_users_file(std::string_view text, std::string_view source,
                                          std::string& error);

// Reads `path` (at most kMaxUsersFileSize bytes) and parses it; errors as parse_users_file's,
// with the path quoted in read errors.
std::optional<UserTable> read_users_file(const std::string& path, std::string_view source,
                                         std::string& error);

}  // namespace ss
