#!/usr/bin/env python3
"""packaging_man: docs/man/PROGRAM.1 and `PROGRAM --help` describe the same interface.

For each of ss-server, ss-local, ss-tunnel, ss-redir and ss-manager:
- every flag --help lists has a tagged paragraph (.TP) in the page's OPTIONS section, written
  with roff's minus (\\-x, \\-\\-long), and every flag tagged there is one --help lists;
- every key of --help's "Config file keys" list has a tagged paragraph in CONFIGURATION FILE,
  and every key tagged there is one --help lists;
- the page has the usual sections, its NAME line parses (lexgrog), and
  `groff -man -Tutf8 -ww -z` renders it without a warning.
"""

import os
import re
import shutil

from packaging_util import PROGRAMS, Failures, arguments, run

SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "CONFIGURATION FILE", "SIGNALS",
            "EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO")
# Macros whose arguments alternate fonts and are joined without spaces.
ALTERNATING = {"BI", "BR", "IB", "IR", "RB", "RI"}


def help_interface(text):
    """(flags, keys) of a --help text: "-c", "--key", ... and "server", "server_port", ..."""
    flags, keys = set(), set()
    options, _, rest = text.partition("Config file keys")
    for line in options.splitlines():
        # "  -c FILE    ...", "      --key BASE64   ...", "  -h, --help   ..."; wrapped
        # descriptions are indented further.
        m = re.match(r"^ {2,6}(-\S.*?)(?: {2,}|$)", line)
        if m:
            for part in m.group(1).split(", "):
                flags.add(part.split()[0])
    for line in rest.splitlines()[1:]:
        if not line.strip():
            break
        keys.add(line.split()[0])
    return flags, keys


def roff_text(line):
    """The text a man(7) line such as `.BI \\-s " HOST"` sets: "-s HOST"."""
    macro = ""
    if line.startswith("."):
        macro, _, line = line[1:].partition(" ")
    args = [m.group(1) if m.group(1) is not None else m.group(2)
            for m in re.finditer(r'"([^"]*)"|(\S+)', line)]
    text = ("" if macro in ALTERNATING else " ").join(args)
    text = re.sub(r"\\f(\[[^]]*\]|\(..|.)", "", text)
    text = text.replace("\\-", "-").replace("\\(dq", '"').replace("\\&", "").replace("\\e", "\\")
    return text


def man_sections(text):
    """{section name: [lines]} of a man page."""
    sections, current = {}, None
    for line in text.splitlines():
        if line.startswith(".SH "):
            current = sections.setdefault(line[4:].strip().strip('"'), [])
        elif current is not None:
            current.append(line)
    return sections


def tags(lines):
    """(raw line, text) of every paragraph tag: the line after each .TP."""
    return [(lines[i + 1], roff_text(lines[i + 1]))
            for i, line in enumerate(lines[:-1]) if line.strip() == ".TP"]


def check_page(fails, program, exe, page):
    r = run([exe, "--help"], check=False, timeout=10)
    if not fails.check(r.returncode == 0, f"{program} --help exited {r.returncode}"):
        return
    help_flags, help_keys = help_interface(r.stdout)
    fails.check(len(help_flags) > 10 and len(help_keys) > 10,
                f"{program} --help: could not find its flags and keys")
    with open(page, encoding="utf-8") as f:
        sections = man_sections(f.read())
    for name in SECTIONS:
        fails.check(name in sections, f"{page}: no {name} section")

    man_flags = set()
    for raw, text in tags(sections.get("OPTIONS", [])):
        found = [part.split()[0] for part in text.split(", ") if part.startswith("-")]
        fails.check(found, f"{page}: OPTIONS tag without a flag: {raw}")
        for flag in found:
            man_flags.add(flag)
            fails.check(flag.replace("-", "\\-") in raw,
                        f"{page}: {flag} is not written with roff minus signs: {raw}")
    for flag in sorted(help_flags - man_flags):
        fails.messages.append(f"{program}: {flag} is in --help but not under OPTIONS in {page}")
    for flag in sorted(man_flags - help_flags):
        fails.messages.append(f"{program}: {flag} is under OPTIONS in {page} but not in --help")

    man_keys = {text.split()[0] for _, text in tags(sections.get("CONFIGURATION FILE", []))
                if text.strip()}
    for key in sorted(help_keys - man_keys):
        fails.messages.append(f"{program}: key {key} is in --help but not under CONFIGURATION "
                              f"FILE in {page}")
    for key in sorted(man_keys - help_keys):
        fails.messages.append(f"{program}: key {key} is under CONFIGURATION FILE in {page} but "
                              f"not in --help")

    r = run(["groff", "-man", "-Tutf8", "-ww", "-z", page], check=False)
    fails.check(r.returncode == 0 and not r.stderr.strip(),
                f"groff -man -ww {page}: exit {r.returncode}: {r.stderr.strip()}")
    if shutil.which("lexgrog"):
        r = run(["lexgrog", page], check=False)
        fails.check(r.returncode == 0 and f'"{program} - ' in r.stdout,
                    f"lexgrog {page}: the NAME line does not parse: {r.stdout.strip()}")


def main():
    args = arguments("--bin-dir", "--man-dir")
    fails = Failures()
    for p in PROGRAMS:
        check_page(fails, p, os.path.join(args.bin_dir, p), os.path.join(args.man_dir, p + ".1"))
    fails.finish("man pages against --help")


if __name__ == "__main__":
    main()
