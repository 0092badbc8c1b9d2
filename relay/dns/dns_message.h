#pragma once
// DNS messages (RFC 1035 section 4, RFC 3596 for AAAA): a bounds-checked reader of the header,
// questions and resource records (names with compression pointers; loops refused), and builders
// for queries and for answers to a query. Pure: no libuv, no allocation (names decode into fixed
// buffers), so a message from the network can be read without trusting it.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "relay/parse_status.h"

namespace ss::dns {

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeNs = 2;
constexpr uint16_t kTypeCname = 5;
constexpr uint16_t kTypeSoa = 6;
constexpr uint16_t kTypePtr = 12;
constexpr uint16_t kTypeAaaa = 28;
constexpr uint16_t kTypeOpt = 41;
constexpr uint16_t kClassIn = 1;

constexpr uint8_t kRcodeNoError = 0;
constexpr uint8_t kRcodeFormErr = 1;
constexpr uint8_t kRcodeServFail = 2;
constexpr uint8_t kRcodeNxDomain = 3;
constexpr uint8_t kRcodeRefused = 5;

constexpr size_t kHeaderSize = 12;
// The largest message over UDP without EDNS (RFC 1035 4.2.1), and over TCP (a 2-byte length).
constexpr size_t kMaxUdpSize = 512;
constexpr size_t kMaxMessageSize = 65535;

struct Header {
  uint16_t id = 0;
  uint16_t flags = 0;
  uint16_t qdcount = 0;
  uint16_t ancount = 0;
  uint16_t nscount = 0;
  uint16_t arcount = 0;

  bool response() const { return (flags & 0x8000) != 0; }
  uint8_t opcode() const { return static_cast<uint8_t>((flags >> 11) & 0xf); }
  bool truncated() const { return (flags & 0x0200) != 0; }
  bool recursion_desired() const { return (flags & 0x0100) != 0; }
  uint8_t rcode() const { return static_cast<uint8_t>(flags & 0xf); }
};

// A domain name as dotted text without the final dot ("" is the root). Labels are copied as they
// are; a label holding a dot or a byte outside printable ASCII is kept as is, so compare names
// with equal_names, not as hostnames.
struct Name {
  std::array<char, 256> text{};
  uint8_t size = 0;

  std::string_view view() const { return {text.data(), size}; }
};

struct Question {
  Name name;
  uint16_t type = 0;
  uint16_t klass = 0;
};

enum class Section : uint8_t { Answer, Authority, Additional };

struct Record {
  Section section = Section::Answer;
  Name name;
  uint16_t type = 0;
  uint16_t klass = 0;
  uint32_t ttl = 0;
  // The record's data: message[rdata_offset, rdata_offset + rdata_size).
  uint16_t rdata_offset = 0;
  uint16_t rdata_size = 0;
  // CNAME, NS and PTR: the name the data holds (decompressed). Other types: empty.
  Name target;
};

// Reads one message: the header first (start), then the questions, then the records of the
// three sections in order. Every read is bounds-checked; a malformed message makes the reader
// stop with error() true.
class Reader {
 public:
  // Error when the message is shorter than a header or longer than kMaxMessageSize.
  ParseStatus start(const uint8_t* msg, size_t size);
  const Header& header() const { return header_; }

  // The next question; false after the last one or on a malformed one (then error()).
  bool next_question(Question& q);
  // The next record (skipping any questions not read); false after the last one or on a
  // malformed one (then error()).
  bool next_record(Record& r);
  bool error() const { return error_; }

 private:
  const uint8_t* msg_ = nullptr;
  size_t size_ = 0;
  size_t pos_ = 0;
  Header header_;
  uint32_t questions_left_ = 0;
  uint32_t records_read_ = 0;
  bool error_ = true;
};

// Decodes the name at msg[pos] (following compression pointers, which must point backwards, so
// no loop is possible) into `out` and moves `pos` past it in the message's own bytes. False on a
// malformed name: out of bounds, a reserved label type, or longer than 255 bytes on the wire.
bool read_name(const uint8_t* msg, size_t size, size_t& pos, Name& out);

// Names compared as DNS compares them: ASCII case-insensitive.
bool equal_names(std::string_view a, std::string_view b);

// What a forwarder needs from a whole message, read and validated in one pass.
struct Summary {
  Header header;
  Question question;  // the first question (qdcount 0: empty)
  // The smallest TTL of the answer and authority records (an SOA's MINIMUM bounds it for a
  // negative answer, RFC 2308 section 5); UINT32_MAX when there is none.
  uint32_t min_ttl = UINT32_MAX;
  uint16_t addresses = 0;  // A and AAAA answers
};

// Reads every part of the message. Error if any of it is malformed.
ParseStatus summarize(const uint8_t* msg, size_t size, Summary& out);

// DNS over TCP (RFC 1035 4.2.2): each message follows its 2-byte length. Ok with the length once
// all of it has arrived; Error for a zero length.
ParseStatus tcp_frame(const uint8_t* data, size_t size, size_t& message_size);

// A query with recursion desired for `name` (dotted, a final dot allowed) and `type`. Its size,
// or 0 if the name is not a valid name or the query does not fit in `cap` (out's bytes are then
// unspecified; the same holds for build_answer).
size_t build_query(uint8_t* out, size_t cap, uint16_t id, std::string_view name, uint16_t type);

// One address of an answer: 4 bytes (A) or 16 (AAAA).
struct AddressAnswer {
  const uint8_t* bytes = nullptr;
  uint8_t size = 0;
};

// The answer to `query` (its id, its first question, RD copied; RA set) with `rcode` and the
// addresses as A/AAAA records naming the question (by a compression pointer), each with `ttl`.
// Its size, or 0 if the query has no question or the answer does not fit in `cap`.
size_t build_answer(uint8_t* out, size_t cap, const uint8_t* query, size_t query_size,
                    uint8_t rcode, std::span<const AddressAnswer> addresses, uint32_t ttl);

// The message's id, read and rewritten in place (size >= 2).
uint16_t message_id(const uint8_t* msg);
void set_message_id(uint8_t* msg, uint16_t id);

}  // namespace ss::dns
