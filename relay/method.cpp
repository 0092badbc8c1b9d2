// Method selection: classic AEAD (with the server's replay filter), none, or the 2022 edition.

#include "relay/method.h"

#include "crypto/none_suite.h"
#include "crypto/replay_filter.h"

namespace ss {

std::shared_ptr<const TcpCipherSuite> make_tcp_suite(const Config& cfg) {
  switch (cfg.method_kind) {
    case MethodKind::None:
      return make_none_suite();
    case MethodKind::Classic:
    case MethodKind::Aead2022: {
      std::shared_ptr<ReplayFilter> replay;
      if (cfg.role == Role::Server && cfg.replay_capacity > 0) {
        replay = std::make_shared<ReplayFilter>(cfg.replay_capacity, cfg.replay_fp_rate);
      }
      return make_classic_suite(*cfg.cipher, cfg.key, std::move(replay));
    }
  }
  return nullptr;
}

}  // namespace ss
