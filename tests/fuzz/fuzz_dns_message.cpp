// Fuzzes the DNS message reader (relay/dns/dns_message.h): it never reads past the message; a
// record's data lies inside it; every decoded name fits 253 characters; summarize agrees with a
// full walk of the reader; a message it accepts with a question can be answered, and the answer
// reads back with the same id and question name.

#include <vector>

#include "relay/dns/dns_message.h"
#include "tests/fuzz/fuzz_util.h"

using namespace ss;
using namespace ss::dns;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Copied, so a read past the message is a heap overflow ASan sees.
  std::vector<uint8_t> m(data, data + size);
  Reader r;
  const ParseStatus st = r.start(m.data(), m.size());
  FUZZ_CHECK(st != ParseStatus::NeedMore);
  if (st != ParseStatus::Ok) return 0;
  Question q;
  uint32_t questions = 0;
  while (r.next_question(q)) {
    FUZZ_CHECK(q.name.size <= 253);
    ++questions;
  }
  Record rec;
  while (r.next_record(rec)) {
    FUZZ_CHECK(rec.name.size <= 253 && rec.target.size <= 253);
    FUZZ_CHECK(static_cast<size_t>(rec.rdata_offset) + rec.rdata_size <= m.size());
  }
  Summary s;
  const ParseStatus sum = summarize(m.data(), m.size(), s);
  FUZZ_CHECK(sum != ParseStatus::NeedMore);
  if (r.error()) FUZZ_CHECK(sum == ParseStatus::Error);
  if (sum != ParseStatus::Ok || questions == 0) return 0;

  const uint8_t v4[4] = {192, 0, 2, 1};
  const AddressAnswer one[] = {{v4, 4}};
  std::vector<uint8_t> out(kMaxUdpSize);
  const size_t n = build_answer(out.data(), out.size(), m.data(), m.size(), kRcodeNoError, one, 5);
  if (n == 0) return 0;  // a name with a dot inside a label, or too long to answer in 512 bytes
  FUZZ_CHECK(n <= out.size());
  out.resize(n);
  Summary back;
  FUZZ_CHECK(summarize(out.data(), out.size(), back) == ParseStatus::Ok);
  FUZZ_CHECK(back.header.id == s.header.id && back.addresses == 1);
  FUZZ_CHECK(equal_names(back.question.name.view(), s.question.name.view()));
  return 0;
}
