// SIP002 ss:// URIs (see sip002.h). The grammar, after shadowsocks-org sip002.md:
//   SS-URI   = "ss://" userinfo "@" hostname ":" port [ "/" ] [ "?" plugin ] [ "#" tag ]
//   userinfo = base64url(method ":" password)  |  pct(method) ":" pct(password)
// and the legacy ss://base64(method:password@hostname:port)#tag. A userinfo with a ':' is the
// plain form, one without is base64 (padding optional, '%3D' accepted), as shadowsocks-rust
// decides. Unknown query parameters are ignored, as the SIP says.

#include "relay/sip002.h"

#include <charconv>
#include <span>
#include <vector>

#include "crypto/kdf.h"

namespace ss {
namespace {

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> decode_base64_text(std::string_view text) {
  std::string t(text);
  while (!t.empty() && t.back() == '=') t.pop_back();
  std::optional<std::vector<uint8_t>> bytes = base64_decode(t);
  if (!bytes) return std::nullopt;
  return std::string(bytes->begin(), bytes->end());
}

std::string base64url_nopad(std::string_view text) {
  std::string b = base64_encode(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  while (!b.empty() && b.back() == '=') b.pop_back();
  for (char& c : b) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return b;
}

bool is_2022(std::string_view method) {
  return method.substr(0, 5) == "2022-";
}

// "host:port", "[v6]:port", "host" (port 8388). False on a bad port or bracket.
bool split_host_port(std::string_view hp, std::string& host, uint16_t& port, std::string* error) {
  std::string_view port_text;
  if (!hp.empty() && hp.front() == '[') {
    const size_t close = hp.find(']');
    if (close == std::string_view::npos) {
      if (error) *error = "unclosed '[' in the host";
      return false;
    }
    host = std::string(hp.substr(1, close - 1));
    std::string_view rest = hp.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        if (error) *error = "junk after the IPv6 address";
        return false;
      }
      port_text = rest.substr(1);
    }
  } else {
    const size_t colon = hp.rfind(':');
    if (colon != std::string_view::npos) {
      if (hp.find(':') != colon) {
        if (error) *error = "an IPv6 address must be in brackets";
        return false;
      }
      host = std::string(hp.substr(0, colon));
      port_text = hp.substr(colon + 1);
    } else {
      host = std::string(hp);
    }
  }
  if (host.empty()) {
    if (error) *error = "no host";
    return false;
  }
  port = 8388;
  if (port_text.data() != nullptr && !port_text.empty()) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || v == 0 || v > 65535) {
      if (error) *error = "invalid port";
      return false;
    }
    port = static_cast<uint16_t>(v);
  } else if (port_text.data() != nullptr) {
    if (error) *error = "invalid port";
    return false;
  }
  return true;
}

bool split_method_password(std::string_view text, Sip002& out, std::string* error) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    if (error) *error = "the userinfo is not method:password";
    return false;
  }
  out.method = std::string(text.substr(0, colon));
  out.password = std::string(text.substr(colon + 1));
  return true;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    const int hi = i + 1 < text.size() ? hex_digit(text[i + 1]) : -1;
    const int lo = i + 2 < text.size() ? hex_digit(text[i + 2]) : -1;
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : text) {
    if (unreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::optional<Sip002> parse_sip002(std::string_view uri, std::string* error) {
  auto bad = [&](const std::string& why) -> std::optional<Sip002> {
    if (error) *error = why;
    return std::nullopt;
  };
  constexpr std::string_view kScheme = "ss://";
  if (uri.size() < kScheme.size() || uri.substr(0, kScheme.size()) != kScheme) {
    return bad("not an ss:// URI");
  }
  std::string_view rest = uri.substr(kScheme.size());
  Sip002 out;
  if (const size_t hash = rest.find('#'); hash != std::string_view::npos) {
    std::optional<std::string> tag = percent_decode(rest.substr(hash + 1));
    if (!tag) return bad("bad percent escape in the tag");
    out.tag = std::move(*tag);
    rest = rest.substr(0, hash);
  }
  std::string_view query;
  if (const size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  const size_t at = rest.rfind('@');
  if (at == std::string_view::npos) {
    // Legacy: base64 of "method:password@host:port", password not percent-encoded.
    std::optional<std::string> plain = decode_base64_text(rest);
    if (!plain) return bad("neither user@host nor base64");
    const size_t pat = plain->rfind('@');
    if (pat == std::string::npos) return bad("the legacy form has no '@'");
    if (!split_method_password(std::string_view(*plain).substr(0, pat), out, error)) {
      return std::nullopt;
    }
    if (!split_host_port(std::string_view(*plain).substr(pat + 1), out.host, out.port, error)) {
      return std::nullopt;
    }
  } else {
    const std::string_view userinfo = rest.substr(0, at);
    if (userinfo.find(':') != std::string_view::npos) {
      const size_t colon = userinfo.find(':');
      std::optional<std::string> m = percent_decode(userinfo.substr(0, colon));
      std::optional<std::string> p = percent_decode(userinfo.substr(colon + 1));
      if (!m || !p) return bad("bad percent escape in the userinfo");
      if (m->empty()) return bad("no method in the userinfo");
      out.method = std::move(*m);
      out.password = std::move(*p);
    } else {
      std::optional<std::string> unescaped = percent_decode(userinfo);
      std::optional<std::string> plain =
          unescaped ? decode_base64_text(*unescaped) : std::optional<std::string>();
      if (!plain) return bad("the userinfo is neither method:password nor base64");
      if (!split_method_password(*plain, out, error)) return std::nullopt;
    }
    std::optional<std::string> hp = percent_decode(rest.substr(at + 1));
    if (!hp) return bad("bad percent escape in the host");
    if (!split_host_port(*hp, out.host, out.port, error)) return std::nullopt;
  }
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = param.find('=');
    if (param.substr(0, eq) != "plugin" || eq == std::string_view::npos) continue;
    std::optional<std::string> value = percent_decode(param.substr(eq + 1));
    if (!value) return bad("bad percent escape in the plugin parameter");
    const size_t semi = value->find(';');
    out.plugin = value->substr(0, semi);
    out.plugin_opts = semi == std::string::npos ? "" : value->substr(semi + 1);
  }
  return out;
}

std::string format_sip002(const Sip002& s) {
  std::string uri = "ss://";
  if (is_2022(s.method)) {
    uri += percent_encode(s.method) + ":" + percent_encode(s.password);
  } else {
    uri += base64url_nopad(s.method + ":" + s.password);
  }
  uri += '@';
  if (s.host.find(':') != std::string::npos) {
    uri += "[" + s.host + "]";
  } else {
    uri += s.host;
  }
  uri += ":" + std::to_string(s.port);
  if (!s.plugin.empty() || !s.tag.empty()) uri += '/';
  if (!s.plugin.empty()) {
    std::string value = s.plugin;
    if (!s.plugin_opts.empty()) value += ";" + s.plugin_opts;
    uri += "?plugin=" + percent_encode(value);
  }
  if (!s.tag.empty()) uri += "#" + percent_encode(s.tag);
  return uri;
}

}  // namespace ss
