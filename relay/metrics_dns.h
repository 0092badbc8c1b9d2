#pragma once
// Metrics of ss-local's DNS inbound (client/dns), kept in relay/metrics.cpp's per-thread shards
// and summed at scrape like the others: answers by upstream (the local resolver, the remote one
// through the tunnel, the cache), failures (SERVFAIL after a failed or timed-out upstream), and
// the time from a query's arrival to its answer.

#include <cstdint>

namespace ss::metrics {

enum class DnsSource : uint8_t { Local, Remote, Cache, kCount };

// A query of the inbound answered after `ns` nanoseconds by `src` (`ok`), or failed (`ok` false,
// `src` the upstream that failed).
void dns_inbound_answer(DnsSource src, uint64_t ns, bool ok);

}  // namespace ss::metrics
