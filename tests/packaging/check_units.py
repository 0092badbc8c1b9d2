#!/usr/bin/env python3
"""packaging_units: the systemd units as `cmake --install --prefix TMP` writes them.

- every unit has the hardening settings and runs TMP/bin/PROGRAM on the credential copy of
  TMP/etc/shadowsocks-uv/%i.json (packaging_util.check_unit);
- `systemd-analyze verify` reports nothing (it works without a running systemd: it parses the
  unit and checks that the ExecStart binary exists and is executable);
- `systemd-analyze security --offline=true` rates each unit "OK" or better (exposure < 5.0);
- the ExecStart command line, with ${CREDENTIALS_DIRECTORY} expanded as systemd does, starts the
  binary on a configuration file, and SIGTERM stops it with status 0.
"""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import time

from packaging_util import (UNIT_PROGRAMS, Failures, arguments, check_unit, cmake_install, parse_unit,
                            run)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exec_start_runs(fails, unit_path, program, tmp):
    """Runs the unit's ExecStart as systemd would, on a loopback configuration."""
    with open(unit_path, encoding="utf-8") as f:
        service = dict(parse_unit(f.read()).get("Service", []))
    creds = os.path.join(tmp, "credentials-" + program)
    os.makedirs(creds)
    config = {"server": "127.0.0.1", "server_port": free_port(), "local_address": "127.0.0.1",
              "local_port": free_port(), "password": "packaging test",
              "method": "chacha20-ietf-poly1305", "workers": 1}
    if program == "ss-tunnel":
        config["tunnel_address"] = "127.0.0.1:9"
    with open(os.path.join(creds, "config"), "w", encoding="utf-8") as f:
        json.dump(config, f)
    argv = shlex.split(service["ExecStart"].replace("${CREDENTIALS_DIRECTORY}", creds))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    port = config["server_port"] if program == "ss-server" else config["local_port"]
    deadline = time.monotonic() + 10
    listening = False
    while time.monotonic() < deadline and proc.poll() is None and not listening:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            listening = True
        except OSError:
            time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    fails.check(listening, f"{program}: ExecStart {argv} did not listen on port {port}: {out}")
    fails.check(proc.returncode == 0,
                f"{program}: exited {proc.returncode} after SIGTERM, expected 0: {out}")


def main():
    args = arguments("--cmake", "--build-dir")
    fails = Failures()
    with tempfile.TemporaryDirectory(prefix="ss-units-") as tmp:
        prefix = os.path.join(tmp, "prefix")
        cmake_install(args.cmake, args.build_dir, prefix)
        unit_dir = os.path.join(prefix, "lib/systemd/system")
        for p in UNIT_PROGRAMS:
            unit = os.path.join(unit_dir, p + "@.service")
            with open(unit, encoding="utf-8") as f:
                check_unit(fails, p + "@.service", f.read(), p, prefix + "/bin",
                           prefix + "/etc/shadowsocks-uv")
            r = run(["systemd-analyze", "verify", unit], check=False)
            fails.check(r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(),
                        f"systemd-analyze verify {unit}: exit {r.returncode}: "
                        f"{(r.stdout + r.stderr).strip()}")
            r = run(["systemd-analyze", "security", "--offline=true", "--no-pager", unit],
                    check=False)
            m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
            fails.check(r.returncode == 0 and m is not None and float(m.group(1)) < 5.0,
                        f"systemd-analyze security --offline=true {unit}: exit {r.returncode}, "
                        f"{m.group(0) if m else 'no exposure level'}: {r.stderr.strip()}")
            exec_start_runs(fails, unit, p, tmp)
    fails.finish("systemd units: settings, systemd-analyze verify and security, ExecStart")


if __name__ == "__main__":
    main()
