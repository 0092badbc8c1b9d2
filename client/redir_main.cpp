#include "client/inbound/registry.h"
#include "relay/app.h"

int main(int argc, char** argv) {
  return ss::run_app(ss::Role::Redir, argc, argv, ss::local_inbound_factory);
}
