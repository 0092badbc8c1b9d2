// The metrics endpoint (Prometheus text format 0.0.4) on relay/http_server's one-request
// connections: 200 with the exposition for GET/HEAD /metrics, 404 for another path, 405 (Allow:
// GET, HEAD) for another method; a request with a body gets 413, a malformed head 400 and one too
// large 431 (relay/http_server.cpp).

#include "relay/metrics_server.h"

#include "relay/metrics.h"

namespace ss {

MetricsServer::MetricsServer(uv_loop_t* loop)
    : http_(loop, [](const HttpRequest& req, HttpResponse& out) {
        const bool get = req.method == "GET";
        const bool head = req.method == "HEAD";
        out.head_only = head;
        if (!get && !head) {
          out.status = 405;
          out.extra_headers = "Allow: GET, HEAD\r\n";
        } else if (req.path != "/metrics") {
          out.status = 404;
        } else {
          out.content_type = std::string(metrics::kContentType);
          out.body = metrics::render_text();
          return;
        }
        out.reason = http_reason(out.status);
        out.body = std::to_string(out.status) + " " + std::string(out.reason) + "\n";
      }) {}

}  // namespace ss
