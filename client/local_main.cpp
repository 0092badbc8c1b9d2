#include "client/local_session.h"
#include "relay/app.h"

int main(int argc, char** argv) {
  return ss::run_app(ss::Role::Local, argc, argv,
                     [](ss::Listener& l) -> ss::Session* { return new ss::LocalSession(l); });
}
