#!/usr/bin/env python3
"""Prints the summary of a scripts/soak.sh run.

  summary.py SUMMARY_JSON SERVER_LOG LOCAL_LOG SHUTDOWN_OK

SUMMARY_JSON is load.py's output; the logs are the binaries' -v logs (session close reasons are
counted from them); SHUTDOWN_OK is 1 if both binaries stopped cleanly on SIGTERM. Exit status 0
if everything passed.
"""

import json
import re
import sys

path, server_log, local_log, shutdown_ok = sys.argv[1:5]
try:
    s = json.load(open(path))
except (OSError, ValueError):
    print("soak: no summary from the load generator", file=sys.stderr)
    sys.exit(1)


def reasons(log):
    out = {}
    # "closed: REASON[ (ERR)| ERR], N bytes in" (the error name's form varies between versions)
    pattern = r"closed: ([a-z ,()A-Z_-]+?)(?: \(?[A-Z_]+\)?)?, \d+ bytes in"
    for m in re.finditer(pattern, open(log).read()):
        out[m.group(1)] = out.get(m.group(1), 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


print("==== soak summary ====")
print(f"seed {s['seed']}, {s['seconds']:.0f} s of load, {s['operations']} operations")
print("operations:", ", ".join(f"{k} {v}" for k, v in s["counts"].items()))
print(f"verified byte-exact: {s['verified_transfers']} transfers, "
      f"{s['verified_bytes'] / 2**20:.1f} MiB (long streams "
      f"{s['long_stream_bytes_each_way'] / 2**20:.1f} MiB each way in total)")
for name in s["fds_at_rest"]:
    print(f"{name}: descriptors at rest {s['fds_at_rest'][name]}, peak {s['fds_peak'][name]}, "
          f"end {s['fds_end'][name]}; RSS baseline {s['rss_baseline_kib'][name]} KiB, "
          f"peak {s['rss_peak_kib'][name]} KiB, end {s['rss_end_kib'][name]} KiB")
print("ss-server session ends:", reasons(server_log))
print("ss-local session ends: ", reasons(local_log))
for c in s["checks"]:
    print(f"{'PASS' if c['ok'] else 'FAIL'}  {c['check']}")
print(f"{'PASS' if shutdown_ok == '1' else 'FAIL'}  clean SIGTERM shutdown of both binaries")
for f in s["failures"][:20]:
    print("  failure:", f)
ok = s["ok"] and shutdown_ok == "1"
print("RESULT:", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
