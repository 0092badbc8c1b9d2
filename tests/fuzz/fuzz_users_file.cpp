// Fuzzes the user file parser (client/inbound/users_file.h) on arbitrary text. It must return a
// table or a one-line error starting with the source name, never throw or crash. When it
// returns a table, the same text read independently with nlohmann::json must list exactly those
// users: each one's password is accepted, a changed password and an unknown name are not.

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "client/inbound/users_file.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ss;
using nlohmann::json;

constexpr std::string_view kSource = "fuzz";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  const std::optional<UserTable> table = parse_users_file(text, kSource, error);
  if (!table) {
    FUZZ_CHECK(error.size() > kSource.size() + 2);
    FUZZ_CHECK(error.compare(0, kSource.size() + 2, "fuzz: ") == 0);
    FUZZ_CHECK(error.find('\n') == std::string::npos);
    FUZZ_CHECK(error.find("last read") == std::string::npos);
    return 0;
  }
  FUZZ_CHECK(!table->empty());
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false,
                               /*ignore_comments=*/true);
  FUZZ_CHECK(!doc.is_discarded() && doc.is_object());
  const json& users = doc.at("password").at("users");
  FUZZ_CHECK(users.is_array() && users.size() == table->size());
  for (const json& u : users) {
    const auto& name = u.at("user_name").get_ref<const std::string&>();
    const auto& password = u.at("password").get_ref<const std::string&>();
    FUZZ_CHECK(!name.empty() && name.size() <= UserTable::kMaxFieldLen);
    FUZZ_CHECK(!password.empty() && password.size() <= UserTable::kMaxFieldLen);
    FUZZ_CHECK(table->check(name, password));
    FUZZ_CHECK(!table->check(name, password + "\x01"));
    FUZZ_CHECK(!table->check(name + "\x01", password));  // names have no control characters
  }
  return 0;
}
