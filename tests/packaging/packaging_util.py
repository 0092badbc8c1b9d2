"""Shared by the packaging tests (tests/packaging/CMakeLists.txt): running commands, collecting
failures, and the checks every installed copy of the systemd units must pass."""

import argparse
import os
import subprocess
import sys

# Every installed program, with its man page.
PROGRAMS = ("ss-server", "ss-local", "ss-tunnel", "ss-redir", "ss-manager")
# The programs with a systemd template unit. ss-redir has none: it needs firewall rules beside it,
# and with -T the CAP_NET_ADMIN capability, which the units' sandbox does not grant.
UNIT_PROGRAMS = ("ss-server", "ss-local", "ss-tunnel")

# The [Service] settings every unit must have, exactly (besides ExecStart and LoadCredential,
# which depend on where it is installed).
SERVICE_SETTINGS = {
    "Type": "exec",
    "Restart": "on-failure",
    "LimitNOFILE": "51200",
    "DynamicUser": "yes",
    "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
    "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
    # The instance's state directory is its working directory: the replay state file (state_dir,
    # default ./ss-state) lands in /var/lib/shadowsocks-uv/NAME and survives restarts.
    "StateDirectory": "shadowsocks-uv/%i",
    "WorkingDirectory": "%S/shadowsocks-uv/%i",
}


def arguments(*names):
    """The command line: each of `names` ("--build-dir", ...) is a required option."""
    ap = argparse.ArgumentParser()
    for name in names:
        ap.add_argument(name, required=True)
    return ap.parse_args()


class Failures:
    """Collects failed checks so that one run reports all of them."""

    def __init__(self):
        self.messages = []

    def check(self, ok, message):
        if not ok:
            self.messages.append(message)
        return ok

    def finish(self, what):
        if self.messages:
            print(f"FAILED: {what}: {len(self.messages)} problem(s):")
            for m in self.messages:
                print("  - " + m)
            sys.exit(1)
        print(f"passed: {what}")


def run(cmd, env=None, check=True, timeout=120):
    """Runs cmd; returns the CompletedProcess (text). Exits the test if check and it failed."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        print(f"FAILED: {' '.join(cmd)} exited {p.returncode}")
        print(p.stdout)
        print(p.stderr)
        sys.exit(1)
    return p


def cmake_install(cmake, build_dir, prefix, destdir=None):
    env = {"DESTDIR": destdir} if destdir else {"DESTDIR": ""}
    run([cmake, "--install", build_dir, "--prefix", prefix], env=env)


def parse_unit(text):
    """{section: [(key, value), ...]} from a systemd unit file."""
    sections = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith(";"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        if current is None or not sep:
            sections.setdefault("<malformed>", []).append((line, ""))
            continue
        current.append((key.strip(), value.strip()))
    return sections


def check_unit(fails, name, text, program, bindir, config_dir):
    """The unit `name` (the text of PROGRAM@.service) runs BINDIR/PROGRAM on the credential copy
    of CONFIG_DIR/%i.json, hardened as SERVICE_SETTINGS says."""
    sections = parse_unit(text)
    fails.check("<malformed>" not in sections, f"{name}: lines that are not key=value: "
                f"{sections.get('<malformed>')}")
    for section in ("Unit", "Service", "Install"):
        fails.check(section in sections, f"{name}: no [{section}] section")

    def values(section, key):
        return [v for k, v in sections.get(section, []) if k == key]

    def one(section, key, expected):
        got = values(section, key)
        fails.check(got == [expected], f"{name}: [{section}] {key}: expected {expected!r}, "
                    f"got {got}")

    one("Unit", "After", "network-online.target")
    one("Unit", "Wants", "network-online.target")
    one("Unit", "Documentation", f"man:{program}(1)")
    one("Service", "ExecStart", f"{bindir}/{program} -c ${{CREDENTIALS_DIRECTORY}}/config")
    one("Service", "LoadCredential", f"config:{config_dir}/%i.json")
    for key, expected in SERVICE_SETTINGS.items():
        one("Service", key, expected)
    # SIGHUP is logged and ignored until the binaries can reload.
    fails.check(not values("Service", "ExecReload"), f"{name}: has ExecReload")
    one("Install", "WantedBy", "multi-user.target")
    known = set(SERVICE_SETTINGS) | {"ExecStart", "LoadCredential"}
    extra = [k for k, _ in sections.get("Service", []) if k not in known]
    fails.check(not extra, f"{name}: [Service] settings the test does not know: {extra}")
