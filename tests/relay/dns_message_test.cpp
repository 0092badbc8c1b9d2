// relay/dns/dns_message.h: messages laid out byte by byte as RFC 1035 section 4.1 describes them
// (a response as resolvers send it: compressed names, a CNAME chain, an OPT record), broken ones,
// and round trips through the builders.

#include "relay/dns/dns_message.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace ss;
using namespace ss::dns;

namespace {

// www.example.com IN A, id 0x1234, RD; then a response: www.example.com CNAME web.example.com
// (compressed into the question's name), web.example.com A 93.184.216.34, an authority NS
// record, and an EDNS OPT pseudo-record.
const std::vector<uint8_t> kQuery = {
    0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // header
    3,    'w',  'w',  'w',  7,    'e',  'x',  'a',  'm',  'p',  'l',  'e',
    3,    'c',  'o',  'm',  0,    0x00, 0x01, 0x00, 0x01,  // www.example.com A IN
};

std::vector<uint8_t> response() {
  std::vector<uint8_t> m = {
      0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x01, 0x00, 0x01,  // header
      3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0x00, 0x01, 0x00,
      0x01,
      // answer 1 (offset 33): C00C CNAME IN ttl 300, rdata "web" + pointer to example.com (16)
      0xc0, 0x0c, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x06, 3, 'w', 'e', 'b',
      0xc0, 0x10,
      // answer 2 (offset 51): pointer to web.example.com (45), A IN ttl 60, 93.184.216.34
      0xc0, 0x2d, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x04, 93, 184, 216, 34,
      // authority: example.com NS ns.example.com, ttl 86400
      0xc0, 0x10, 0x00, 0x02, 0x00, 0x01, 0x00, 0x01, 0x51, 0x80, 0x00, 0x05, 2, 'n', 's', 0xc0,
      0x10,
      // additional: OPT, root name, UDP size 1232, no options
      0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  return m;
}

}  // namespace

TEST_CASE("a query's header and question are read", "[relay]") {
  Reader r;
  REQUIRE(r.start(kQuery.data(), kQuery.size()) == ParseStatus::Ok);
  CHECK(r.header().id == 0x1234);
  CHECK_FALSE(r.header().response());
  CHECK(r.header().recursion_desired());
  Question q;
  REQUIRE(r.next_question(q));
  CHECK(q.name.view() == "www.example.com");
  CHECK(q.type == kTypeA);
  CHECK(q.klass == kClassIn);
  CHECK_FALSE(r.next_question(q));
  Record rec;
  CHECK_FALSE(r.next_record(rec));
  CHECK_FALSE(r.error());
}

TEST_CASE("a response's compressed names, CNAME, A, NS and OPT are read", "[relay]") {
  const std::vector<uint8_t> m = response();
  Reader r;
  REQUIRE(r.start(m.data(), m.size()) == ParseStatus::Ok);
  CHECK(r.header().response());
  CHECK(r.header().rcode() == kRcodeNoError);
  Record rec;
  REQUIRE(r.next_record(rec));  // skips the question
  CHECK(rec.section == Section::Answer);
  CHECK(rec.name.view() == "www.example.com");
  CHECK(rec.type == kTypeCname);
  CHECK(rec.ttl == 300);
  CHECK(rec.target.view() == "web.example.com");
  REQUIRE(r.next_record(rec));
  CHECK(rec.name.view() == "web.example.com");
  CHECK(rec.type == kTypeA);
  REQUIRE(rec.rdata_size == 4);
  CHECK(m[rec.rdata_offset] == 93);
  CHECK(m[rec.rdata_offset + 3] == 34);
  REQUIRE(r.next_record(rec));
  CHECK(rec.section == Section::Authority);
  CHECK(rec.target.view() == "ns.example.com");
  REQUIRE(r.next_record(rec));
  CHECK(rec.section == Section::Additional);
  CHECK(rec.type == kTypeOpt);
  CHECK(rec.name.view().empty());
  CHECK_FALSE(r.next_record(rec));
  CHECK_FALSE(r.error());

  Summary s;
  REQUIRE(summarize(m.data(), m.size(), s) == ParseStatus::Ok);
  CHECK(s.question.name.view() == "www.example.com");
  CHECK(s.min_ttl == 60);
  CHECK(s.addresses == 1);
}

TEST_CASE("malformed messages are refused, never read past", "[relay]") {
  Summary s;
  const std::vector<uint8_t> m = response();
  // Every truncation of the response is an error (the header's counts promise more).
  for (size_t n = 0; n < m.size() - 1; ++n) {
    std::vector<uint8_t> cut(m.begin(), m.begin() + static_cast<long>(n));
    CHECK(summarize(cut.data(), cut.size(), s) == ParseStatus::Error);
  }
  SECTION("a pointer to itself") {
    std::vector<uint8_t> b = kQuery;
    b[12] = 0xc0;
    b[13] = 12;
    CHECK(summarize(b.data(), b.size(), s) == ParseStatus::Error);
  }
  SECTION("two pointers pointing at each other") {
    std::vector<uint8_t> b = {0, 1, 0,   0,    0,  1,    0,  0, 0, 0, 0,
                              0, 1, 'a', 0xc0, 16, 0xc0, 12, 0, 1, 0, 1};
    // 12: label "a" then a pointer to 16; 16: a pointer back to 12 (forward, then backward).
    CHECK(summarize(b.data(), b.size(), s) == ParseStatus::Error);
    Reader r;
    REQUIRE(r.start(b.data(), b.size()) == ParseStatus::Ok);
    Question q;
    CHECK_FALSE(r.next_question(q));
    CHECK(r.error());
  }
  SECTION("a reserved label type") {
    std::vector<uint8_t> b = kQuery;
    b[12] = 0x43;
    CHECK(summarize(b.data(), b.size(), s) == ParseStatus::Error);
  }
  SECTION("an A record with 5 bytes of data") {
    std::vector<uint8_t> b = response();
    b[61] = 5;  // the A record's RDLENGTH
    CHECK(summarize(b.data(), b.size(), s) == ParseStatus::Error);
  }
  SECTION("a CNAME whose name overruns its data") {
    std::vector<uint8_t> b = response();
    b[44] = 5;  // the CNAME's RDLENGTH, one byte short
    CHECK(summarize(b.data(), b.size(), s) == ParseStatus::Error);
  }
  SECTION("a name longer than 255 bytes") {
    std::vector<uint8_t> b = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 5; ++i) {
      b.push_back(60);
      b.insert(b.end(), 60, 'x');
    }
    b.insert(b.end(), {0, 0, 1, 0, 1});
    CHECK(summarize(b.data(), b.size(), s) == ParseStatus::Error);
  }
}

TEST_CASE("queries and answers are built and read back", "[relay]") {
  uint8_t q[512];
  const size_t qn = build_query(q, sizeof q, 0xbeef, "Proxied.Example.", kTypeAaaa);
  REQUIRE(qn == 12 + 17 + 4);
  Summary s;
  REQUIRE(summarize(q, qn, s) == ParseStatus::Ok);
  CHECK(s.header.id == 0xbeef);
  CHECK(s.question.name.view() == "Proxied.Example");
  CHECK(equal_names(s.question.name.view(), "proxied.example."));
  CHECK_FALSE(equal_names(s.question.name.view(), "proxied.example.com"));
  CHECK(s.question.type == kTypeAaaa);

  uint8_t other[512];
  CHECK(build_query(other, sizeof other, 1, "a..b", kTypeA) == 0);
  CHECK(build_query(other, sizeof other, 1, std::string(64, 'x'), kTypeA) == 0);
  CHECK(build_query(other, 20, 1, "long.example.com", kTypeA) == 0);
  CHECK(build_query(other, sizeof other, 1, "", kTypeNs) == 17);  // the root

  const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const uint8_t v4[4] = {198, 18, 0, 7};
  const AddressAnswer answers[] = {{v6, 16}, {v4, 4}};
  uint8_t a[512];
  const size_t an = build_answer(a, sizeof a, q, qn, kRcodeNoError, answers, 42);
  REQUIRE(an == qn + 12 + 16 + 12 + 4);
  REQUIRE(summarize(a, an, s) == ParseStatus::Ok);
  CHECK(s.header.response());
  CHECK(s.header.recursion_desired());
  CHECK(s.header.id == 0xbeef);
  CHECK(s.addresses == 2);
  CHECK(s.min_ttl == 42);
  CHECK(build_answer(a, an - 1, q, qn, kRcodeNoError, answers, 42) == 0);

  const size_t nx = build_answer(a, sizeof a, q, qn, kRcodeNxDomain, {}, 0);
  REQUIRE(summarize(a, nx, s) == ParseStatus::Ok);
  CHECK(s.header.rcode() == kRcodeNxDomain);
  CHECK(s.min_ttl == UINT32_MAX);

  set_message_id(a, 7);
  CHECK(message_id(a) == 7);
}

TEST_CASE("DNS over TCP frames wait for the whole message", "[relay]") {
  const uint8_t f[] = {0, 3, 'a', 'b', 'c', 'x'};
  size_t n = 0;
  CHECK(tcp_frame(f, 1, n) == ParseStatus::NeedMore);
  CHECK(tcp_frame(f, 4, n) == ParseStatus::NeedMore);
  CHECK(tcp_frame(f, 5, n) == ParseStatus::Ok);
  CHECK(n == 3);
  const uint8_t zero[] = {0, 0};
  CHECK(tcp_frame(zero, 2, n) == ParseStatus::Error);
}
