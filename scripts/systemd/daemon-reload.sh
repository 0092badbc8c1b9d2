#!/bin/sh
# postinst and postrm of the shadowsocks-uv .deb (cmake/packaging.cmake): a running systemd reads
# the unit files that were added, changed or removed, as debhelper's scripts arrange.
set -e
if [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null || true
fi
exit 0
