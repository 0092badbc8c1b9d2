// Stream's non-virtual helpers (the interface is in stream.h).

#include "relay/net/stream.h"

#include "relay/address.h"

namespace ss {

std::string Stream::peer_text() const {
  sockaddr_storage ss{};
  if (!peer_address(ss)) return "?";
  return Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)).to_string();
}

}  // namespace ss
