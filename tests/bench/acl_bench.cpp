// ACL lookup benchmark (relay/acl.*): an ACL of 100,000 rules (domains in libev's `(^|\.)name$`
// form and rust's `||name`, IPv4 and IPv6 CIDRs, and 100 real regexes) is parsed, then looked up
// with host names and addresses that hit and miss. Prints the load time, the RSS the ACL takes,
// and the median and 99th percentile of single lookups, each timed on its own; then the 100
// regexes alone matched by RE2::Set (what relay/acl.cpp uses) and by one PCRE2 JIT alternation.
//
// Usage: acl_bench [--rules N] [--lookups N] [--markdown]

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <re2/re2.h>
#include <re2/set.h>

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "relay/acl.h"

namespace {

using Clock = std::chrono::steady_clock;

long rss_kib() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long pages = 0, resident = 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

std::string label(std::mt19937_64& rng, size_t min, size_t max) {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::uniform_int_distribution<size_t> len(min, max), ch(0, 35);
  std::string s(len(rng), 'a');
  for (char& c : s) c = kChars[ch(rng)];
  s[0] = static_cast<char>('a' + ch(rng) % 26);
  return s;
}

struct Stats {
  double median_ns = 0, p99_ns = 0;
};

template <typename F>
Stats time_each(size_t n, F&& f) {
  std::vector<double> ns(n);
  for (size_t i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    f(i);
    auto t1 = Clock::now();
    ns[i] = std::chrono::duration<double, std::nano>(t1 - t0).count();
  }
  std::sort(ns.begin(), ns.end());
  return {ns[n / 2], ns[std::min(n - 1, n * 99 / 100)]};
}

// The clock's own cost, subtracted from nothing but reported beside the figures.
Stats clock_overhead(size_t n) {
  return time_each(n, [](size_t) {});
}

volatile int g_sink = 0;

}  // namespace

int main(int argc, char** argv) {
  size_t n_rules = 100000, n_lookups = 200000;
  bool markdown = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rules") && i + 1 < argc) {
      n_rules = std::strtoul(argv[++i], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--lookups") && i + 1 < argc) {
      n_lookups = std::strtoul(argv[++i], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--markdown")) {
      markdown = true;
    } else {
      std::fprintf(stderr, "usage: acl_bench [--rules N] [--lookups N] [--markdown]\n");
      return 2;
    }
  }
  std::mt19937_64 rng(42);
  const size_t n_regex = 100;
  const size_t n_domains = (n_rules - n_regex) * 6 / 10;
  const size_t n_cidrs = n_rules - n_regex - n_domains;
  static const char* kTlds[] = {"com", "net", "org", "cn", "io", "de", "jp", "ru"};

  // The file: proxy_all, everything in the bypass list, as a geo/ad list would be.
  std::vector<std::string> domains;
  std::vector<std::array<uint8_t, 4>> nets;
  std::string text = "[proxy_all]\n[bypass_list]\n";
  text.reserve(n_rules * 32);
  for (size_t i = 0; i < n_domains; ++i) {
    std::string d = label(rng, 4, 12) + "." + kTlds[rng() % 8];
    domains.push_back(d);
    if (i % 2 == 0) {
      std::string re = "(^|\\.)";
      for (char c : d) re += c == '.' ? std::string("\\.") : std::string(1, c);
      text += re + "$\n";
    } else {
      text += "||" + d + "\n";
    }
  }
  char line[96];
  for (size_t i = 0; i < n_cidrs; ++i) {
    if (i % 10 == 9) {
      std::snprintf(line, sizeof line, "2001:%x:%x::/48\n", unsigned(rng() & 0xffff),
                    unsigned(rng() & 0xffff));
    } else {
      std::array<uint8_t, 4> a{uint8_t(1 + rng() % 223), uint8_t(rng()), uint8_t(rng()), 0};
      nets.push_back(a);
      std::snprintf(line, sizeof line, "%u.%u.%u.0/24\n", a[0], a[1], a[2]);
    }
    text += line;
  }
  std::vector<std::string> regexes;
  for (size_t i = 0; i < n_regex; ++i) {
    // Real regexes: character classes, alternations, anchors in the middle of nothing plain.
    std::string r;
    switch (i % 4) {
      case 0:
        r = "^ad[s0-9]*\\." + label(rng, 4, 8) + "\\.";
        break;
      case 1:
        r = "(^|\\.)" + label(rng, 3, 6) + "(cdn|img|static)[0-9]*\\." + kTlds[i % 8] + "$";
        break;
      case 2:
        r = "track(er|ing)?-" + label(rng, 3, 6);
        break;
      default:
        r = "^[a-z]+-" + label(rng, 4, 8) + "\\.(com|net)$";
        break;
    }
    regexes.push_back(r);
    text += r + "\n";
  }

  // Load.
  const long rss0 = rss_kib();
  auto t0 = Clock::now();
  std::string err;
  std::unique_ptr<const ss::Acl> acl = ss::Acl::parse(text, &err);
  auto t1 = Clock::now();
  if (!acl) {
    std::fprintf(stderr, "acl_bench: %s\n", err.c_str());
    return 1;
  }
  const long rss_peak = rss_kib();
  malloc_trim(0);  // the parser's temporary tables are freed: give their pages back first
  const long rss1 = rss_kib();
  const double load_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();

  // Queries: domain hits (a subdomain of a rule), domain misses (every miss runs the regexes),
  // IPv4 hits and misses.
  std::vector<ss::Address> dq, iq;
  for (size_t i = 0; i < n_lookups; ++i) {
    ss::Address a;
    a.type = ss::Address::Type::Domain;
    a.port = 443;
    a.host = i % 2 == 0 ? "www." + domains[rng() % domains.size()]
                        : label(rng, 3, 8) + "." + label(rng, 4, 12) + "." + kTlds[rng() % 8];
    dq.push_back(std::move(a));
    ss::Address b;
    b.type = ss::Address::Type::IPv4;
    b.port = 443;
    if (i % 2 == 0) {
      auto n = nets[rng() % nets.size()];
      b.ip = {n[0], n[1], n[2], uint8_t(rng())};
    } else {
      b.ip = {uint8_t(rng()), uint8_t(rng()), uint8_t(rng()), uint8_t(rng())};
    }
    iq.push_back(b);
  }
  size_t dhits = 0, ihits = 0;
  for (const auto& q : dq) dhits += acl->bypass(q);
  for (const auto& q : iq) ihits += acl->bypass(q);
  const Stats clk = clock_overhead(n_lookups);
  const Stats ds = time_each(n_lookups, [&](size_t i) { g_sink = g_sink + acl->bypass(dq[i]); });
  const Stats dmiss =
      time_each(n_lookups / 2, [&](size_t i) { g_sink = g_sink + acl->bypass(dq[2 * i + 1]); });
  const Stats is = time_each(n_lookups, [&](size_t i) { g_sink = g_sink + acl->bypass(iq[i]); });

  // The 100 regexes alone: RE2::Set against one PCRE2 alternation, on the domain queries.
  RE2::Options o;
  o.set_case_sensitive(false);
  RE2::Set set(o, RE2::UNANCHORED);
  for (const auto& r : regexes) set.Add(r, nullptr);
  set.Compile();
  std::string alt;
  for (const auto& r : regexes) alt += (alt.empty() ? "(?:" : "|(?:") + r + ")";
  int errcode;
  PCRE2_SIZE erroff;
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(alt.c_str()), alt.size(),
                                 PCRE2_CASELESS, &errcode, &erroff, nullptr);
  if (re == nullptr) {
    std::fprintf(stderr, "acl_bench: pcre2_compile failed at %zu\n", size_t(erroff));
    return 1;
  }
  const bool jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(re, nullptr);
  size_t agree = 0;
  for (const auto& q : dq) {
    bool a = set.Match(q.host, nullptr);
    bool b = pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(q.host.data()), q.host.size(), 0, 0, md,
                         nullptr) >= 0;
    agree += a == b;
  }
  const Stats re2s =
      time_each(n_lookups, [&](size_t i) { g_sink = g_sink + set.Match(dq[i].host, nullptr); });
  const Stats pcs = time_each(n_lookups, [&](size_t i) {
    g_sink = g_sink + (pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(dq[i].host.data()),
                                   dq[i].host.size(), 0, 0, md, nullptr) >= 0);
  });
  pcre2_match_data_free(md);
  pcre2_code_free(re);

  const auto& b = acl->bypass_list();
  if (markdown) {
    std::printf("| measure | value |\n|---|---|\n");
    std::printf(
        "| rules: domains (plain + recognised regex) / IPv4+IPv6 CIDR lines / regexes | "
        "%zu / %zu / %zu |\n",
        b.domain_rules(), n_cidrs, b.regex_rules());
    std::printf("| load (parse + build), ms | %.1f |\n", load_ms);
    std::printf(
        "| memory: RSS delta after load; before the parser's freed heap is trimmed, MiB | %.1f; "
        "%.1f |\n",
        (rss1 - rss0) / 1024.0, (rss_peak - rss0) / 1024.0);
    std::printf("| domain lookup, half hits, median / p99 ns | %.0f / %.0f |\n", ds.median_ns,
                ds.p99_ns);
    std::printf("| domain lookup, misses (run the regexes too), median / p99 ns | %.0f / %.0f |\n",
                dmiss.median_ns, dmiss.p99_ns);
    std::printf("| IPv4 lookup, half hits, median / p99 ns | %.0f / %.0f |\n", is.median_ns,
                is.p99_ns);
    std::printf("| the 100 regexes alone: RE2::Set, median / p99 ns | %.0f / %.0f |\n",
                re2s.median_ns, re2s.p99_ns);
    std::printf("| the 100 regexes alone: PCRE2 alternation%s, median / p99 ns | %.0f / %.0f |\n",
                jit ? " (JIT)" : " (no JIT)", pcs.median_ns, pcs.p99_ns);
    std::printf("| timer overhead included in each figure, median ns | %.0f |\n", clk.median_ns);
  } else {
    std::printf("rules: %zu domain rules, %zu+%zu merged v4+v6 ranges, %zu regexes\n",
                b.domain_rules(), b.ipv4_ranges(), b.ipv6_ranges(), b.regex_rules());
    std::printf(
        "load: %.1f ms, RSS +%.1f MiB (+%.1f MiB before the parser's freed heap is trimmed)\n",
        load_ms, (rss1 - rss0) / 1024.0, (rss_peak - rss0) / 1024.0);
    std::printf("domain lookups: median %.0f ns, p99 %.0f ns (%zu/%zu hits)\n", ds.median_ns,
                ds.p99_ns, dhits, dq.size());
    std::printf("domain misses: median %.0f ns, p99 %.0f ns\n", dmiss.median_ns, dmiss.p99_ns);
    std::printf("IPv4 lookups: median %.0f ns, p99 %.0f ns (%zu/%zu hits)\n", is.median_ns,
                is.p99_ns, ihits, iq.size());
    std::printf(
        "regexes: RE2::Set median %.0f ns p99 %.0f; PCRE2%s median %.0f ns p99 %.0f "
        "(agree on %zu/%zu)\n",
        re2s.median_ns, re2s.p99_ns, jit ? " JIT" : "", pcs.median_ns, pcs.p99_ns, agree,
        dq.size());
    std::printf("timer overhead: median %.0f ns\n", clk.median_ns);
  }
  return agree == dq.size() ? 0 : 1;
}
