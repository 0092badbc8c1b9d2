#pragma once
// The "none" method (as shadowsocks-rust has it): no encryption at all, only the address header
// in front of the stream or datagram. For measuring what the relay itself costs; never a default.

#include <memory>

#include "crypto/tcp_cipher.h"

namespace ss {

inline constexpr const char* kNoneMethod = "none";

std::unique_ptr<TcpCipherSuite> make_none_suite();

}  // namespace ss
