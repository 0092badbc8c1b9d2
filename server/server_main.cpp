#include "relay/app.h"
#include "server/server_session.h"

int main(int argc, char** argv) {
  return ss::run_app(ss::Role::Server, argc, argv,
                     [](ss::Listener& l) -> ss::Session* { return new ss::ServerSession(l); });
}
