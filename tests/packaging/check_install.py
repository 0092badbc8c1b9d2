#!/usr/bin/env python3
"""packaging_install: `cmake --install BUILD --prefix TMP` installs exactly the expected tree
(binaries that run, man pages, example, units naming TMP's binaries and configuration directory,
an empty configuration directory), and DESTDIR with --prefix /usr gives Debian's layout
(/usr/bin, /etc/shadowsocks-uv, /lib/systemd/system)."""

import filecmp
import json
import os
import tempfile

from packaging_util import (PROGRAMS, UNIT_PROGRAMS, Failures, arguments, check_unit,
                            cmake_install, run)


def tree(root):
    """Every file, and every empty directory (with a trailing /), relative to root."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for f in filenames:
            out.add(os.path.normpath(os.path.join(rel, f)))
        if not dirnames and not filenames:
            out.add(rel + "/")
    return out


def expected_tree(prefix_rel, etc_rel, units_rel):
    files = {os.path.join(prefix_rel, "bin", p) for p in PROGRAMS}
    files |= {os.path.join(prefix_rel, "share/man/man1", p + ".1") for p in PROGRAMS}
    files.add(os.path.join(prefix_rel, "share/doc/shadowsocks-uv/examples/config.example.json"))
    files |= {os.path.join(units_rel, p + "@.service") for p in UNIT_PROGRAMS}
    files.add(os.path.join(etc_rel, "shadowsocks-uv") + "/")
    return {os.path.normpath(f) + ("/" if f.endswith("/") else "") for f in files}


def check_layout(fails, label, root, prefix_rel, etc_rel, units_rel, bindir, etcdir, source):
    got = tree(root)
    want = expected_tree(prefix_rel, etc_rel, units_rel)
    fails.check(not (want - got), f"{label}: missing: {sorted(want - got)}")
    fails.check(not (got - want), f"{label}: not expected: {sorted(got - want)}")
    base = os.path.join(root, prefix_rel)
    for p in PROGRAMS:
        exe = os.path.join(base, "bin", p)
        if not fails.check(os.access(exe, os.X_OK), f"{label}: {exe} is not executable"):
            continue
        r = run([exe, "--help"], check=False, timeout=10)
        fails.check(r.returncode == 0 and f"{p} [options]" in r.stdout,
                    f"{label}: {exe} --help exited {r.returncode}: {r.stderr.strip()}")
        man = os.path.join(base, "share/man/man1", p + ".1")
        fails.check(os.path.isfile(man) and
                    filecmp.cmp(man, os.path.join(source, "docs/man", p + ".1"), shallow=False),
                    f"{label}: {man} differs from docs/man/{p}.1")
        unit = os.path.join(root, units_rel, p + "@.service")
        if p in UNIT_PROGRAMS and fails.check(os.path.isfile(unit), f"{label}: no {unit}"):
            with open(unit, encoding="utf-8") as f:
                check_unit(fails, f"{label}: {p}@.service", f.read(), p, bindir,
                           etcdir + "/shadowsocks-uv")
    example = os.path.join(base, "share/doc/shadowsocks-uv/examples/config.example.json")
    if fails.check(os.path.isfile(example), f"{label}: no {example}"):
        with open(example, encoding="utf-8") as f:
            fails.check(isinstance(json.load(f), dict), f"{label}: {example} is not an object")
        fails.check(filecmp.cmp(example, os.path.join(source, "config.example.json"),
                                shallow=False), f"{label}: {example} differs from the source")
    confdir = os.path.join(root, etc_rel, "shadowsocks-uv")
    fails.check(os.path.isdir(confdir) and not os.listdir(confdir),
                f"{label}: {confdir} is not an empty directory")


def main():
    args = arguments("--cmake", "--build-dir", "--source-dir")
    fails = Failures()
    with tempfile.TemporaryDirectory(prefix="ss-install-") as tmp:
        # A prefix of one's own: everything under it, the units pointing into it.
        prefix = os.path.join(tmp, "prefix")
        cmake_install(args.cmake, args.build_dir, prefix)
        check_layout(fails, "--prefix " + prefix, prefix, ".", "etc", "lib/systemd/system",
                     prefix + "/bin", prefix + "/etc", args.source_dir)
        # What a package build does: prefix /usr staged under DESTDIR.
        stage = os.path.join(tmp, "stage")
        cmake_install(args.cmake, args.build_dir, "/usr", destdir=stage)
        check_layout(fails, "DESTDIR=stage --prefix /usr", stage, "usr", "etc",
                     "lib/systemd/system", "/usr/bin", "/etc", args.source_dir)
    fails.finish("cmake --install: --prefix and DESTDIR layouts")


if __name__ == "__main__":
    main()
