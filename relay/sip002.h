#pragma once
// SIP002 ss:// URIs (shadowsocks-org sip002.md, Shadowsocks-NET's 2022-3 "shadowsocks-url"): a
// server's method, password, address, plugin and tag in one link. Pure: text in, fields out.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ss {

struct Sip002 {
  std::string method;
  std::string password;
  std::string host;  // an IPv6 literal without brackets
  uint16_t port = 0;
  std::string plugin;       // "" if none
  std::string plugin_opts;  // what follows the plugin name's ';'
  std::string tag;          // the decoded fragment
};

// Parses the SIP002 form (base64url "method:password" userinfo, or the percent-encoded
// "method:password" form that the 2022 methods require) and the legacy form
// (ss://BASE64(method:password@host:port)#tag). A missing port is 8388, as in shadowsocks-rust.
// nullopt with a one-line reason in *error (never quoting the password).
std::optional<Sip002> parse_sip002(std::string_view uri, std::string* error);

// The SIP002 URI of `s`: base64url userinfo without padding for the classic methods,
// percent-encoded "method:password" for the 2022 ones; lower-case escapes, a '/' before '?' or
// '#'. parse_sip002(format_sip002(s)) == s.
std::string format_sip002(const Sip002& s);

// RFC 3986 percent-decoding (no '+' for space); nullopt on a bad escape.
std::optional<std::string> percent_decode(std::string_view text);
// Escapes every byte but the unreserved ones (A-Z a-z 0-9 - . _ ~), lower-case hex.
std::string percent_encode(std::string_view text);

}  // namespace ss
