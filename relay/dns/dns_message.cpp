// DNS message reader and builders (RFC 1035 section 4.1: header, question, resource records;
// 4.1.4: compression pointers; 4.2.2: TCP framing; RFC 3596: AAAA; RFC 2308 section 5: a
// negative answer's TTL from its SOA). A pointer must point before the position it was read at
// and before every earlier pointer's target, so decoding always ends; names are bounded to 255
// bytes on the wire.

#include "relay/dns/dns_message.h"

#include <cstring>

namespace ss::dns {

namespace {

uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

uint32_t get32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Writes `name` in wire form at out[0..cap): its size, or 0 if it is not a valid name or does
// not fit.
size_t encode_name(uint8_t* out, size_t cap, std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  size_t n = 0;
  while (!name.empty()) {
    size_t dot = name.find('.');
    std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63) return 0;
    if (n + 1 + label.size() > cap) return 0;
    out[n++] = static_cast<uint8_t>(label.size());
    std::memcpy(out + n, label.data(), label.size());
    n += label.size();
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
    if (name.empty()) return 0;  // "a..": an empty label
  }
  if (n + 1 > cap || n + 1 > 255) return 0;
  out[n++] = 0;
  return n;
}

}  // namespace

bool read_name(const uint8_t* msg, size_t size, size_t& pos, Name& out) {
  out.size = 0;
  size_t p = pos;
  size_t bound = SIZE_MAX;  // every pointer must point below this, and lowers it
  size_t wire = 0;
  bool jumped = false;
  for (;;) {
    if (p >= size) return false;
    const uint8_t c = msg[p];
    if (c == 0) {
      if (!jumped) pos = p + 1;
      return wire + 1 <= 255;
    }
    if ((c & 0xc0) == 0xc0) {
      if (p + 1 >= size) return false;
      const size_t target = (static_cast<size_t>(c & 0x3f) << 8) | msg[p + 1];
      if (target >= p || target >= bound) return false;
      bound = target;
      if (!jumped) pos = p + 2;
      jumped = true;
      p = target;
      continue;
    }
    if ((c & 0xc0) != 0) return false;  // 0x40 and 0x80: extended and reserved label types
    const size_t len = c;
    if (p + 1 + len > size) return false;
    wire += 1 + len;
    if (wire + 1 > 255) return false;
    size_t at = out.size;
    if (at != 0) out.text[at++] = '.';
    std::memcpy(out.text.data() + at, msg + p + 1, len);
    out.size = static_cast<uint8_t>(at + len);
    p += 1 + len;
  }
}

bool equal_names(std::string_view a, std::string_view b) {
  if (!a.empty() && a.back() == '.') a.remove_suffix(1);
  if (!b.empty() && b.back() == '.') b.remove_suffix(1);
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

ParseStatus Reader::start(const uint8_t* msg, size_t size) {
  error_ = true;
  if (size < kHeaderSize || size > kMaxMessageSize) return ParseStatus::Error;
  msg_ = msg;
  size_ = size;
  header_.id = get16(msg);
  header_.flags = get16(msg + 2);
  header_.qdcount = get16(msg + 4);
  header_.ancount = get16(msg + 6);
  header_.nscount = get16(msg + 8);
  header_.arcount = get16(msg + 10);
  pos_ = kHeaderSize;
  questions_left_ = header_.qdcount;
  records_read_ = 0;
  error_ = false;
  return ParseStatus::Ok;
}

bool Reader::next_question(Question& q) {
  if (error_ || questions_left_ == 0) return false;
  if (!read_name(msg_, size_, pos_, q.name) || pos_ + 4 > size_) {
    error_ = true;
    return false;
  }
  q.type = get16(msg_ + pos_);
  q.klass = get16(msg_ + pos_ + 2);
  pos_ += 4;
  --questions_left_;
  return true;
}

bool Reader::next_record(Record& r) {
  if (error_) return false;
  while (questions_left_ != 0) {
    Question skipped;
    if (!next_question(skipped)) return false;
  }
  const uint32_t answers = header_.ancount;
  const uint32_t authority = answers + header_.nscount;
  const uint32_t total = authority + header_.arcount;
  if (records_read_ >= total) return false;
  r.section = records_read_ < answers     ? Section::Answer
              : records_read_ < authority ? Section::Authority
                                          : Section::Additional;
  if (!read_name(msg_, size_, pos_, r.name) || pos_ + 10 > size_) {
    error_ = true;
    return false;
  }
  r.type = get16(msg_ + pos_);
  r.klass = get16(msg_ + pos_ + 2);
  r.ttl = get32(msg_ + pos_ + 4);
  const size_t rdlength = get16(msg_ + pos_ + 8);
  pos_ += 10;
  if (pos_ + rdlength > size_) {
    error_ = true;
    return false;
  }
  r.rdata_offset = static_cast<uint16_t>(pos_);
  r.rdata_size = static_cast<uint16_t>(rdlength);
  r.target.size = 0;
  bool ok = true;
  if (r.type == kTypeA && r.klass == kClassIn) {
    ok = rdlength == 4;
  } else if (r.type == kTypeAaaa && r.klass == kClassIn) {
    ok = rdlength == 16;
  } else if (r.type == kTypeCname || r.type == kTypeNs || r.type == kTypePtr) {
    size_t at = pos_;
    // The name must fill the data exactly (it may point back into the message).
    ok = read_name(msg_, pos_ + rdlength, at, r.target) && at == pos_ + rdlength;
  }
  if (!ok) {
    error_ = true;
    return false;
  }
  pos_ += rdlength;
  ++records_read_;
  return true;
}

ParseStatus summarize(const uint8_t* msg, size_t size, Summary& out) {
  out = Summary{};
  Reader reader;
  if (reader.start(msg, size) != ParseStatus::Ok) return ParseStatus::Error;
  out.header = reader.header();
  Question q;
  bool first = true;
  while (reader.next_question(q)) {
    if (first) out.question = q;
    first = false;
  }
  if (reader.error()) return ParseStatus::Error;
  Record r;
  while (reader.next_record(r)) {
    if (r.section == Section::Additional) continue;
    uint32_t ttl = r.ttl;
    if (r.type == kTypeSoa) {
      // MNAME, RNAME, then SERIAL REFRESH RETRY EXPIRE MINIMUM.
      size_t at = r.rdata_offset;
      const size_t end = at + r.rdata_size;
      Name skip;
      if (!read_name(msg, end, at, skip) || !read_name(msg, end, at, skip) || at + 20 != end) {
        return ParseStatus::Error;
      }
      const uint32_t minimum = get32(msg + at + 16);
      if (minimum < ttl) ttl = minimum;
    }
    if (ttl < out.min_ttl) out.min_ttl = ttl;
    if (r.section == Section::Answer && (r.type == kTypeA || r.type == kTypeAaaa) &&
        r.klass == kClassIn) {
      ++out.addresses;
    }
  }
  return reader.error() ? ParseStatus::Error : ParseStatus::Ok;
}

ParseStatus tcp_frame(const uint8_t* data, size_t size, size_t& message_size) {
  if (size < 2) return ParseStatus::NeedMore;
  message_size = get16(data);
  if (message_size == 0) return ParseStatus::Error;
  return size - 2 >= message_size ? ParseStatus::Ok : ParseStatus::NeedMore;
}

size_t build_query(uint8_t* out, size_t cap, uint16_t id, std::string_view name, uint16_t type) {
  if (cap < kHeaderSize + 5) return 0;
  std::memset(out, 0, kHeaderSize);
  put16(out, id);
  put16(out + 2, 0x0100);  // RD
  put16(out + 4, 1);
  const size_t n = encode_name(out + kHeaderSize, cap - kHeaderSize - 4, name);
  if (n == 0) return 0;
  uint8_t* q = out + kHeaderSize + n;
  put16(q, type);
  put16(q + 2, kClassIn);
  return kHeaderSize + n + 4;
}

size_t build_answer(uint8_t* out, size_t cap, const uint8_t* query, size_t query_size,
                    uint8_t rcode, std::span<const AddressAnswer> addresses, uint32_t ttl) {
  Reader reader;
  Question q;
  if (reader.start(query, query_size) != ParseStatus::Ok || !reader.next_question(q)) return 0;
  if (cap < kHeaderSize + 5) return 0;
  const Header& h = reader.header();
  const uint16_t flags =
      static_cast<uint16_t>(0x8000 | (h.flags & 0x7900) | 0x0080 | (rcode & 0xf));
  std::memset(out, 0, kHeaderSize);
  put16(out, h.id);
  put16(out + 2, flags);
  put16(out + 4, 1);
  const size_t n = encode_name(out + kHeaderSize, cap - kHeaderSize - 4, q.name.view());
  if (n == 0) return 0;
  size_t at = kHeaderSize + n;
  put16(out + at, q.type);
  put16(out + at + 2, q.klass);
  at += 4;
  uint16_t count = 0;
  for (const AddressAnswer& a : addresses) {
    if (a.size != 4 && a.size != 16) return 0;
    if (at + 12 + a.size > cap) return 0;
    put16(out + at, 0xc000 | kHeaderSize);  // the question's name
    put16(out + at + 2, a.size == 4 ? kTypeA : kTypeAaaa);
    put16(out + at + 4, kClassIn);
    put32(out + at + 6, ttl);
    put16(out + at + 10, a.size);
    std::memcpy(out + at + 12, a.bytes, a.size);
    at += 12 + a.size;
    ++count;
  }
  put16(out + 6, count);
  return at;
}

uint16_t message_id(const uint8_t* msg) {
  return get16(msg);
}

void set_message_id(uint8_t* msg, uint16_t id) {
  put16(msg, id);
}

}  // namespace ss::dns
