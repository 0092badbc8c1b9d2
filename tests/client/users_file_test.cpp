// shadowsocks-rust's SOCKS5/HTTP user file and the UserTable (client/inbound/users_file.h).

#include "client/inbound/users_file.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace ss {
namespace {

constexpr std::string_view kSource = "socks5_auth_config_path";

std::optional<UserTable> parse(std::string_view text, std::string& error) {
  error.clear();
  return parse_users_file(text, kSource, error);
}

// The error for `text`, which must fail.
std::string error_for(std::string_view text) {
  std::string error;
  const std::optional<UserTable> t = parse(text, error);
  CHECK_FALSE(t);
  return error;
}

// A file in the temporary directory, removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(std::string_view content) {
    char name[] = "/tmp/ss_users_test_XXXXXX";
    const int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    path_ = name;
    REQUIRE(write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
    close(fd);
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

constexpr std::string_view kExample = R"({
  "password": {
    "users": [
      { "user_name": "alice", "password": "wonderland" },
      { "user_name": "bob", "password": "builder" }
    ]
  }
})";

}  // namespace

TEST_CASE("users file: shadowsocks-rust's documented layout", "[client]") {
  std::string error;
  const std::optional<UserTable> t = parse(kExample, error);
  REQUIRE(t);
  CHECK(error.empty());
  CHECK(t->size() == 2);
  CHECK(t->check("alice", "wonderland"));
  CHECK(t->check("bob", "builder"));
  CHECK_FALSE(t->check("alice", "builder"));
  CHECK_FALSE(t->check("bob", "wonderland"));
  CHECK_FALSE(t->check("carol", "wonderland"));
  CHECK_FALSE(t->check("alice", ""));
  CHECK_FALSE(t->check("", ""));
  CHECK_FALSE(t->check("alicewonderland", ""));
  CHECK_FALSE(t->check("alicew", "onderland"));
}

TEST_CASE("users file: comments and unknown keys are accepted", "[client]") {
  std::string error;
  const auto t = parse(R"(// users for the mixed port
    { "password": { "users": [ { "user_name": "u", "password": "p", "note": 1 } ], "x": [] },
      /* shadowsocks-rust ignores unknown keys too */ "other": true })",
                       error);
  REQUIRE(t);
  CHECK(t->check("u", "p"));
}

TEST_CASE("users file: UTF-8 names and passwords", "[client]") {
  std::string error;
  const auto t =
      parse(R"({"password":{"users":[{"user_name":"\u00fc","password":"\u5bc6\u7801"}]}})", error);
  REQUIRE(t);
  CHECK(t->check("\xc3\xbc", "\xe5\xaf\x86\xe7\xa0\x81"));
}

TEST_CASE("users file: errors name the key path", "[client]") {
  CHECK(error_for("[]") ==
        std::string(kSource) + R"(: must be a JSON object: {"password": {"users": [...]}})");
  CHECK(error_for("{}") ==
        std::string(kSource) + R"(: password: must be an object {"users": [...]})");
  CHECK(error_for(R"({"password": "x"})") ==
        std::string(kSource) + R"(: password: must be an object {"users": [...]})");
  const std::string users_msg =
      std::string(kSource) +
      R"(: password.users: must be a non-empty array of {"user_name": ..., "password": ...})";
  CHECK(error_for(R"({"password": {}})") == users_msg);
  CHECK(error_for(R"({"password": {"users": []}})") == users_msg);
  CHECK(error_for(R"({"password": {"users": {}}})") == users_msg);
  CHECK(error_for(R"({"password": {"users": [1]}})") ==
        std::string(kSource) +
            R"(: password.users[0]: must be an object {"user_name": ..., "password": ...})");
  CHECK(error_for(R"({"password": {"users": [
          {"user_name": "a", "password": "x"},
          {"user_name": "b", "password": "x"},
          {"user_name": 7, "password": "x"}]}})") ==
        "socks5_auth_config_path: password.users[2].user_name: must be a string");
  CHECK(error_for(R"({"password": {"users": [{"password": "x"}]}})") ==
        "socks5_auth_config_path: password.users[0].user_name: missing");
  CHECK(error_for(R"({"password": {"users": [{"user_name": "a"}]}})") ==
        "socks5_auth_config_path: password.users[0].password: missing");
  CHECK(error_for(R"({"password": {"users": [{"user_name": "a", "password": null}]}})") ==
        "socks5_auth_config_path: password.users[0].password: must be a string");
  CHECK(error_for(R"({"password": {"users": [{"user_name": "", "password": "x"}]}})") ==
        "socks5_auth_config_path: password.users[0].user_name: must be 1 to 255 bytes long");
  CHECK(error_for(R"({"password": {"users": [{"user_name": "a", "password": ""}]}})") ==
        "socks5_auth_config_path: password.users[0].password: must be 1 to 255 bytes long");
  CHECK(error_for(R"({"password": {"users": [{"user_name": "a\nb", "password": "x"}]}})") ==
        "socks5_auth_config_path: password.users[0].user_name: must not contain control "
        "characters");
  CHECK(error_for(R"({"password": {"users": [{"user_name": "a", "password": "x"},
                                             {"user_name": "a", "password": "y"}]}})") ==
        R"(socks5_auth_config_path: password.users[1].user_name: "a" appears twice)");
}

TEST_CASE("users file: the 255-byte bound (RFC 1929 ULEN and PLEN)", "[client]") {
  const std::string max(255, 'x');
  std::string error;
  const auto t = parse(
      R"({"password":{"users":[{"user_name":")" + max + R"(","password":")" + max + R"("}]}})",
      error);
  REQUIRE(t);
  CHECK(t->check(max, max));
  CHECK(error_for(R"({"password":{"users":[{"user_name":"u","password":")" + max + R"(x"}]}})") ==
        "socks5_auth_config_path: password.users[0].password: must be 1 to 255 bytes long");
}

TEST_CASE("users file: no error message quotes a password", "[client]") {
  const std::string secret = "hunter2-SECRET";
  for (const std::string& text : {
           R"({"password":{"users":[{"user_name":"u","password":")" + secret + R"(" 1}]}})",
           R"({"password":{"users":[{"user_name":"u","password":")" + secret + "\x01\"}]}})",
           R"({"password":{"users":[{"user_name":"u","password":")" + secret + "\"]}}",
           R"({"password":{"users":[{"user_name":"u","password":")" + secret,
           R"({"password":{"users":[{"user_name":"u","password":")" + secret + R"(" , }]}})",
           R"({"password":{"users":[{"user_name":"u","password":[")" + secret + R"("]}]}})",
           R"({"password":{"users":[{"user_name":"u","password":")" + secret + R"("},
                                    {"user_name":"u","password":")" +
               secret + R"("}]}})",
       }) {
    const std::string error = error_for(text);
    INFO(error);
    CHECK(error.rfind(std::string(kSource) + ": ", 0) == 0);
    CHECK(error.find("hunter2") == std::string::npos);
    CHECK(error.find('\n') == std::string::npos);
  }
}

TEST_CASE("users file: syntax errors give the line", "[client]") {
  const std::string e = error_for("{\n  \"password\": {\n    \"users\": [,]\n  }\n}");
  CHECK(e.rfind("socks5_auth_config_path: invalid JSON at line 3: ", 0) == 0);
  CHECK(e.find("last read") == std::string::npos);
  CHECK(error_for("").rfind("socks5_auth_config_path: invalid JSON at line 1", 0) == 0);
  CHECK(error_for("{\"password\": 1e400}") ==
        "socks5_auth_config_path: invalid JSON at line 1: a number is too large");
}

TEST_CASE("users file: deeply nested values", "[client]") {
  const size_t depth = 500'000;
  const std::string deep = std::string(depth, '[') + std::string(depth, ']');
  CHECK(error_for(R"({"password": )" + deep + "}") ==
        std::string(kSource) + R"(: password: must be an object {"users": [...]})");
  std::string error;
  const auto t = parse(
      R"({"other": )" + deep + R"(, "password": {"users": [{"user_name": "u", "password": "p"}]}})",
      error);
  REQUIRE(t);
  // Unbalanced: a syntax error at the end, found without recursion.
  CHECK(error_for(std::string(depth, '[')).rfind("socks5_auth_config_path: invalid JSON", 0) == 0);
}

TEST_CASE("users file: read from a file", "[client]") {
  const TempFile f(kExample);
  std::string error;
  const auto t = read_users_file(f.path(), kSource, error);
  REQUIRE(t);
  CHECK(t->check("bob", "builder"));

  const auto missing = read_users_file("/nonexistent/ss-users.json", kSource, error);
  CHECK_FALSE(missing);
  CHECK(error ==
        R"(socks5_auth_config_path: "/nonexistent/ss-users.json": No such file or directory)");

  const TempFile big(std::string(kMaxUsersFileSize + 1, ' '));
  CHECK_FALSE(read_users_file(big.path(), kSource, error));
  CHECK(error.find("larger than 1048576 bytes") != std::string::npos);
}

TEST_CASE("UserTable: add refuses a duplicate, check sees every entry", "[client]") {
  UserTable t;
  CHECK(t.empty());
  CHECK_FALSE(t.check("a", "b"));
  for (int i = 0; i < 200; ++i) {
    REQUIRE(t.add("user" + std::to_string(i), "pass" + std::to_string(i)));
  }
  CHECK_FALSE(t.add("user7", "other"));
  CHECK(t.size() == 200);
  CHECK(t.check("user0", "pass0"));
  CHECK(t.check("user199", "pass199"));
  CHECK_FALSE(t.check("user7", "other"));
  CHECK_FALSE(t.check("user7", "pass8"));
  // The length prefix keeps the split between name and password.
  UserTable split;
  REQUIRE(split.add("ab", "c"));
  CHECK_FALSE(split.check("a", "bc"));
  CHECK(split.check("ab", "c"));
  // Moved tables keep working.
  UserTable moved = std::move(split);
  CHECK(moved.check("ab", "c"));
}

}  // namespace ss
