# Installation (cmake --install) and the Debian package (cpack). Included by the top-level
# CMakeLists.txt after every target exists; GNUInstallDirs is included there.
#
#   bin/                                  ss-local ss-server ss-tunnel ss-redir ss-manager
#   share/man/man1/                       ss-local.1 ss-server.1 ss-tunnel.1 ss-redir.1
#                                         ss-manager.1 (as libev)
#   share/doc/shadowsocks-uv/examples/    config.example.json
#   <SS_SYSTEMD_UNIT_DIR>/                ss-local@.service ss-server@.service ss-tunnel@.service
#                                         (none for ss-redir: it needs firewall rules beside it and,
#                                         with -T, CAP_NET_ADMIN)
#   <sysconfdir>/shadowsocks-uv/          empty: NAME.json for the units
#
# Relative directories are under the prefix given at install time (cmake --install --prefix DIR);
# with the prefix /usr the configuration goes to /etc and the units to /lib/systemd/system.

set(SS_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "Where the systemd units are installed: relative to the install prefix (/lib/systemd/system \
when the prefix is /usr), or absolute")

install(TARGETS ss-local ss-server ss-tunnel ss-redir ss-manager RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES docs/man/ss-local.1 docs/man/ss-server.1 docs/man/ss-tunnel.1 docs/man/ss-redir.1
              docs/man/ss-manager.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES config.example.json DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
# The units name the installed binaries and configuration directory, which depend on the prefix
# chosen at install time: they are written by a script that runs then.
configure_file(scripts/systemd/install_units.cmake.in install_units.cmake @ONLY)
install(SCRIPT ${CMAKE_CURRENT_BINARY_DIR}/install_units.cmake)

# --- cpack: a .deb ---
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME shadowsocks-uv)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# The project's own contact, as in its commits.
set(CPACK_PACKAGE_CONTACT
    "shadowsocks-uv maintainers <maintainers@users.noreply.h-seed-f28bbac0.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Shadowsocks proxy (ss-local, ss-tunnel, ss-redir, ss-server, ss-manager) on libuv")
# The .deb's long description: lines as they appear in the control file.
set(CPACK_PACKAGE_DESCRIPTION [=[shadowsocks-uv is a Shadowsocks implementation in C++ on libuv: ss-local (a
SOCKS5 proxy), ss-tunnel (a fixed port forward), ss-redir (a transparent
proxy for iptables REDIRECT and TPROXY), ss-server (the remote end) and
ss-manager (ss-server with libev's manager protocol, in one process), with
the AEAD ciphers and the Shadowsocks 2022 methods. Its wire format,
command-line flags and JSON keys are those of shadowsocks-libev, whose
binary names it shares. systemd template units run one instance per
/etc/shadowsocks-uv/NAME.json.]=])
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies from dpkg-shlibdeps (package dpkg-dev).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# shadowsocks-libev installs /usr/bin/ss-server, ss-local, ss-tunnel, ss-redir, ss-manager and
# their man pages too.
# No Replaces: installing this package must not silently take over libev's files.
set(CPACK_DEBIAN_PACKAGE_CONFLICTS shadowsocks-libev)
# systemd reads new and changed unit files after daemon-reload, as debhelper's scripts do.
configure_file(scripts/systemd/daemon-reload.sh deb/postinst COPYONLY)
configure_file(scripts/systemd/daemon-reload.sh deb/postrm COPYONLY)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_CURRENT_BINARY_DIR}/deb/postinst
                                       ${CMAKE_CURRENT_BINARY_DIR}/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
