#!/usr/bin/env python3
"""packaging_deb: `cpack -G DEB` with the build's CPack configuration makes a .deb whose control
fields are right (name, version, architecture, maintainer, Depends from dpkg-shlibdeps,
Conflicts: shadowsocks-libev and no Replaces), which holds exactly the binaries, man pages,
example, units (for /usr/bin and /etc/shadowsocks-uv) and the empty /etc/shadowsocks-uv, and
whose binaries run once extracted. The package is never installed (it conflicts with
shadowsocks-libev, which the interop tests need)."""

import glob
import os
import re
import stat
import tempfile

from packaging_util import PROGRAMS, UNIT_PROGRAMS, Failures, arguments, check_unit, run


def main():
    args = arguments("--cpack", "--build-dir", "--version")
    fails = Failures()
    with tempfile.TemporaryDirectory(prefix="ss-deb-") as tmp:
        run([args.cpack, "-G", "DEB", "--config",
             os.path.join(args.build_dir, "CPackConfig.cmake"), "-B", tmp], timeout=600)
        debs = glob.glob(os.path.join(tmp, "*.deb"))
        if not fails.check(len(debs) == 1, f"cpack made {debs}, expected one .deb"):
            fails.finish("cpack -G DEB")
        deb = debs[0]
        arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        fails.check(os.path.basename(deb) == f"shadowsocks-uv_{args.version}_{arch}.deb",
                    f"unexpected file name {os.path.basename(deb)}")

        # Control fields.
        control = run(["dpkg-deb", "-f", deb]).stdout
        fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", control, re.MULTILINE))
        for name, expected in (("Package", "shadowsocks-uv"), ("Version", args.version),
                               ("Architecture", arch), ("Section", "net"),
                               ("Conflicts", "shadowsocks-libev")):
            fails.check(fields.get(name) == expected,
                        f"control {name}: expected {expected!r}, got {fields.get(name)!r}")
        for name in ("Replaces", "Breaks", "Provides"):
            fails.check(name not in fields, f"control has {name}: {fields.get(name)}")
        fails.check(re.fullmatch(r"[^<>]+ <[^@<>\s]+@[^@<>\s]+>", fields.get("Maintainer", "")),
                    f"control Maintainer is not 'Name <email>': {fields.get('Maintainer')!r}")
        fails.check(fields.get("Description", "").startswith("Shadowsocks") and
                    "\n " in control.split("Description:", 1)[-1],
                    f"control Description lacks a summary or a long description: {control}")
        depends = {d.strip().split()[0] for d in fields.get("Depends", "").split(",") if d.strip()}
        for lib in ("libc6", "libuv1", "libssl3", "libsodium23", "libstdc++6"):
            fails.check(lib in depends, f"control Depends lacks {lib}: {fields.get('Depends')}")

        # Maintainer scripts: daemon-reload, executable.
        scripts = os.path.join(tmp, "control")
        run(["dpkg-deb", "-e", deb, scripts])
        for name in ("postinst", "postrm"):
            path = os.path.join(scripts, name)
            if fails.check(os.path.isfile(path), f"no {name}"):
                fails.check(os.stat(path).st_mode & 0o777 == 0o755, f"{name} is not 0755")
                with open(path, encoding="utf-8") as f:
                    fails.check("daemon-reload" in f.read(), f"{name} does not daemon-reload")

        # Contents: exactly these files, and the configuration directory.
        listing = run(["dpkg-deb", "-c", deb]).stdout.splitlines()
        entries = {line.split()[-1]: line.split()[0] for line in listing}
        files = {path for path, mode in entries.items() if not mode.startswith("d")}
        want = {f"./usr/bin/{p}" for p in PROGRAMS}
        want |= {f"./usr/share/man/man1/{p}.1" for p in PROGRAMS}
        want |= {f"./lib/systemd/system/{p}@.service" for p in UNIT_PROGRAMS}
        want.add("./usr/share/doc/shadowsocks-uv/examples/config.example.json")
        fails.check(not (want - files), f"missing from the .deb: {sorted(want - files)}")
        fails.check(not (files - want), f"not expected in the .deb: {sorted(files - want)}")
        fails.check(entries.get("./etc/shadowsocks-uv/", "").startswith("d"),
                    "no directory /etc/shadowsocks-uv/ in the .deb")
        for p in PROGRAMS:
            fails.check(entries.get(f"./usr/bin/{p}") == "-rwxr-xr-x",
                        f"/usr/bin/{p} mode {entries.get(f'./usr/bin/{p}')}")

        # Extracted (not installed): the units and the binaries.
        root = os.path.join(tmp, "root")
        run(["dpkg-deb", "-x", deb, root])
        for p in UNIT_PROGRAMS:
            with open(os.path.join(root, f"lib/systemd/system/{p}@.service"),
                      encoding="utf-8") as f:
                check_unit(fails, f".deb {p}@.service", f.read(), p, "/usr/bin",
                           "/etc/shadowsocks-uv")
        for p in PROGRAMS:
            exe = os.path.join(root, "usr/bin", p)
            r = run([exe, "--help"], check=False, timeout=10)
            fails.check(r.returncode == 0 and f"{p} [options]" in r.stdout,
                        f".deb's {p} --help exited {r.returncode}: {r.stderr.strip()}")
            sections = run(["readelf", "-S", "-W", exe]).stdout
            fails.check(".symtab" not in sections, f".deb's {p} is not stripped")
            fails.check(os.stat(exe).st_mode & stat.S_IXOTH, f".deb's {p} is not executable")
    fails.finish("cpack -G DEB: control fields and contents")


if __name__ == "__main__":
    main()
