#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/<target>/ (committed; rerun after changing this).

Small valid and near-valid inputs for each fuzz target. The crypto seeds are the published
vectors of /work/shared/spec/protocol.md: §6.2 streams (password "密码") for fuzz_aead_stream and
§6.4 (g) (password "password", aes-128-gcm) for fuzz_udp_packet, plus packets sealed here with
the same key for the other ciphers (python3-cryptography, if installed); the §6.4 (a)-(f)
worked examples (2022 TCP and UDP) for fuzz_tcp2022 and fuzz_udp2022, whose sealed modes make
further valid flights in the target (BLAKE3 is not in Python's standard library)."""

import hashlib
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
# Order of classic_ciphers() in crypto/cipher_spec.cpp: the first byte of the crypto inputs.
CIPHERS = ["aes-128-gcm", "aes-192-gcm", "aes-256-gcm", "chacha20-ietf-poly1305",
           "xchacha20-ietf-poly1305"]


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def port(p):
    return bytes([p >> 8, p & 0xFF])


def domain(host, p):
    h = host.encode() if isinstance(host, str) else host
    return bytes([3, len(h)]) + h + port(p)


V4 = bytes([1, 192, 0, 2, 1]) + port(80)
V6 = bytes([4]) + bytes.fromhex("20010db8000000000000000000000001") + port(443)
MAPPED = bytes([4]) + bytes.fromhex("00000000000000000000ffff7f000001") + port(53)


def address_seeds():
    t = "fuzz_address"
    write(t, "ipv4", V4)
    write(t, "ipv6", V6)
    write(t, "ipv4_mapped", MAPPED)
    write(t, "domain", domain("example.com", 443))
    write(t, "domain_utf8", domain("bücher.example", 80))
    write(t, "domain_ip_literal", domain("127.0.0.1", 80))
    write(t, "domain_max", domain("a" * 255, 65535))
    write(t, "domain_len0", bytes([3, 0, 0, 80]))
    write(t, "domain_nul", domain(b"a\x00b", 80))
    write(t, "domain_bad_utf8", domain(b"\xc0\xafx", 80))
    write(t, "domain_truncated", bytes([3, 20]) + b"example")
    write(t, "ipv4_truncated", V4[:5])
    write(t, "bad_atyp", bytes([5, 1, 2, 3, 4, 0, 80]))
    write(t, "ipv4_trailing", V4 + b"GET / HTTP/1.1\r\n")


def socks5_seeds():
    t = "fuzz_socks5"
    write(t, "greeting_noauth", bytes([5, 1, 0]))
    write(t, "greeting_three", bytes([5, 3, 0, 1, 2]))
    write(t, "greeting_empty", bytes([5, 0]))
    write(t, "greeting_userpass_only", bytes([5, 1, 2]))
    write(t, "greeting_255_short", bytes([5, 255, 0, 1, 2]))
    write(t, "socks4", bytes([4, 1, 0, 80, 127, 0, 0, 1, 0]))
    write(t, "http", b"GET / HTTP/1.1\r\n\r\n")
    write(t, "tls", bytes([0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0]))
    write(t, "connect_ipv4", bytes([5, 1, 0]) + V4)
    write(t, "connect_ipv6", bytes([5, 1, 0]) + V6)
    write(t, "connect_domain", bytes([5, 1, 0]) + domain("example.com", 80))
    write(t, "connect_domain_payload",
          bytes([5, 1, 0]) + domain("example.com", 443) + bytes([0x16, 3, 1, 0, 0]))
    write(t, "bind", bytes([5, 2, 0]) + V4)
    write(t, "udp_associate_zero", bytes([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]))
    write(t, "bad_command", bytes([5, 9, 0]) + V4)
    write(t, "bad_atyp", bytes([5, 1, 0, 7, 1, 2, 3, 4, 0, 80]))
    write(t, "rsv_nonzero", bytes([5, 1, 0xFF]) + V4)
    write(t, "connect_port0", bytes([5, 1, 0, 1, 10, 0, 0, 1, 0, 0]))
    write(t, "connect_domain_len0", bytes([5, 1, 0, 3, 0, 0, 80]))
    write(t, "connect_domain_space", bytes([5, 1, 0]) + domain("a b", 80))
    write(t, "udp_ipv4", bytes([0, 0, 0]) + V4 + b"hello")
    write(t, "udp_domain", bytes([0, 0, 0]) + domain("example.com", 53) + b"\x12\x34")
    write(t, "udp_frag", bytes([0, 0, 1]) + V6 + b"x")
    write(t, "udp_short", bytes([0, 0, 0, 1, 10]))
    write(t, "greeting_then_request", bytes([5, 1, 0, 5, 1, 0]) + V4)


def host_port_seeds():
    t = "fuzz_host_port"
    for name, text in [
        ("domain", "example.com:80"), ("ipv4", "192.0.2.1:65535"), ("ipv6", "[2001:db8::1]:53"),
        ("mapped", "[::ffff:127.0.0.1]:8388"), ("loopback6", "[::1]:1"),
        ("unbracketed_v6", "::1:53"), ("port0", "host:0"), ("port_big", "host:65536"),
        ("port_sign", "host:+80"), ("no_port", "example.com"), ("empty_host", ":80"),
        ("bracket_domain", "[example.com]:80"), ("scoped", "[fe80::1%eth0]:22"),
        ("utf8", "bücher.example:443"), ("space", "a b:80"), ("bare_v6", "2001:db8::2"),
        ("bare_v4", "10.0.0.1"), ("short_v4", "1.2.3:4"), ("long", "a" * 255 + ":1"),
    ]:
        write(t, name, text)


def config_seeds():
    t = "fuzz_config"
    with open(os.path.join(HERE, "..", "..", "config.example.json"), "rb") as f:
        write(t, "example", f.read())
    write(t, "local_min", '{"server":"198.51.100.1","server_port":8388,"local_port":1080,'
                          '"password":"p"}')
    write(t, "server_array", '{"server":["::","0.0.0.0"],"server_port":"8388",'
                             '"key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",'
                             '"method":"aes-256-gcm","mode":"tcp_and_udp"}')
    write(t, "tunnel", '{"server":"h","server_port":1,"local_port":5353,"password":"p",'
                       '"tunnel_address":"[::1]:53","mode":"udp_only"}')
    write(t, "all_keys", '{"server":"a.example","server_port":8388,"local_address":"0.0.0.0",'
                         '"local_port":"1080","password":"pw","method":"aes-128-gcm",'
                         '"timeout":300,"udp_timeout":30,"udp_max_associations":4096,'
                         '"no_delay":true,"ipv6_first":false,"reuse_port":true,'
                         '"fast_open":true,"workers":"4","max_connections":1000,'
                         '"allow_private_targets":true}')
    write(t, "comments", '{\n// comment\n"server_port": 1 /* x */, "password": "p"}')
    write(t, "unknown_keys", '{"plugin":"obfs-local","frobnicate":[1,{"a":null}],"acl":"x"}')
    write(t, "bad_port", '{"server_port": 65536}')
    write(t, "bad_types", '{"timeout": 1.5, "server": [], "mode": 1}')
    write(t, "method_2022", '{"server":"h","server_port":1,"local_port":2,'
                            '"method":"2022-blake3-aes-128-gcm",'
                            '"password":"AAECAwQFBgcICQoLDA0ODw=="}')
    write(t, "method_none", '{"server":"h","server_port":1,"local_port":2,"method":"none"}')
    write(t, "truncated", '{"server": "a", "server_port": ')
    write(t, "not_object", '[1, 2, 3]')
    write(t, "deep", '{"server":' + '[' * 64 + ']' * 64 + '}')
    write(t, "unicode", '{"password":"\\u5bc6\\u7801","server":"\\u00fc.example"}')
    # Issue 16 item 5: a duplicate key (top level and nested), a NUL in a string and in a key, and
    # one listen address given many times (merged into one listener).
    write(t, "dup_key", '{"server":"h","server_port":1,"local_port":2,"password":"a",'
                        '"password":"b"}')
    write(t, "dup_key_nested", '{"local_port":2,"servers":[{"server":"a","server_port":1,'
                               '"password":"p"},{"server":"b","server_port":2,"password":"x",'
                               '"password":"y"}]}')
    write(t, "nul_string", '{"server":"h","server_port":1,"local_port":2,"password":"a\\u0000b"}')
    write(t, "nul_key", '{"server":"h","server_port":1,"local_port":2,"pass\\u0000word":"p"}')
    write(t, "dup_listen", '{"server":[' + ','.join(['"0.0.0.0"'] * 64 + ['"::"', '"0::0"'])
                           + '],"server_port":8388,"password":"p"}')


def socks4_seeds():
    t = "fuzz_socks4"
    v4 = bytes([4, 1]) + port(80) + bytes([93, 184, 216, 34])
    v4a = bytes([4, 1]) + port(443) + bytes([0, 0, 0, 1])
    write(t, "connect", v4 + b"alice\0")
    write(t, "connect_empty_user", v4 + b"\0")
    write(t, "connect_payload", v4 + b"\0" + bytes([0x16, 3, 1, 0, 5]))
    write(t, "socks4a", v4a + b"bob\0example.com\0")
    write(t, "socks4a_literal", v4a + b"\0" + b"127.0.0.1\0")
    write(t, "socks4a_v6_literal", v4a + b"\0[::1]\0")
    write(t, "socks4a_utf8", v4a + b"\0" + "bücher.example".encode() + b"\0")
    write(t, "socks4a_empty_host", v4a + b"\0\0")
    write(t, "socks4a_bad_host", v4a + b"\0a b\0")
    write(t, "socks4a_max", v4a + b"u" * 255 + b"\0" + b"h" * 255 + b"\0")
    write(t, "user_too_long", v4 + b"u" * 256)
    write(t, "bind", bytes([4, 2]) + port(80) + bytes([1, 2, 3, 4, 0]))
    write(t, "port0", bytes([4, 1, 0, 0, 1, 2, 3, 4, 0]))
    write(t, "socks5", bytes([5, 1, 0]))
    write(t, "http", b"GET / HTTP/1.1\r\n\r\n")


def socks5_auth_seeds():
    t = "fuzz_socks5_auth"

    def req(user, password, ver=1):
        return bytes([ver, len(user)]) + user + bytes([len(password)]) + password

    write(t, "ok", req(b"alice", b"s3cret"))
    write(t, "max", req(b"u" * 255, b"p" * 255))
    write(t, "then_request", req(b"u", b"p") + bytes([5, 1, 0]) + V4)
    write(t, "ver2", req(b"u", b"p", 2))
    write(t, "ulen0", bytes([1, 0, 1]) + b"p")
    write(t, "plen0", bytes([1, 1]) + b"u" + bytes([0]))
    write(t, "truncated", bytes([1, 5]) + b"ali")
    write(t, "binary", req(bytes([0, 0xFF, 0x3A]), bytes([0, 0x0D, 0x0A])))


def users_file_seeds():
    t = "fuzz_users_file"
    write(t, "example", '{"password": {"users": [{"user_name": "alice", "password": "a"},'
                        ' {"user_name": "bob", "password": "b"}]}}')
    write(t, "comments", '// auth\n{"password": {/* x */ "users": [{"user_name": "u",'
                         ' "password": "p", "extra": 1}]}, "other": null}')
    write(t, "unicode", '{"password":{"users":[{"user_name":"\\u00fc","password":"\\u5bc6"}]}}')
    write(t, "duplicate", '{"password":{"users":[{"user_name":"a","password":"x"},'
                          '{"user_name":"a","password":"y"}]}}')
    write(t, "empty_users", '{"password":{"users":[]}}')
    write(t, "no_password", '{}')
    write(t, "bad_types", '{"password":{"users":[{"user_name":7,"password":null}]}}')
    write(t, "control_name", '{"password":{"users":[{"user_name":"a\\nb","password":"x"}]}}')
    write(t, "truncated", '{"password":{"users":[{"user_name":"u","password":"secr')
    write(t, "big_number", '{"password": 1e400}')


def http1_seeds():
    t = "fuzz_http1"
    # [mode][seed][bytes]: mode 0 request, 1 response (seed % 4: GET, HEAD, CONNECT, POST),
    # 2 chunked body, 3 length / until-close bodies and Basic credentials, 4 ResponseFramer
    # (seed bit 0: the request was HEAD).
    write(t, "connect", b"\0\0CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
                        b"Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n\x16\x03\x01")
    write(t, "connect_v6", b"\0\0CONNECT [2001:db8::1]:8443 HTTP/1.0\r\n\r\n")
    write(t, "get", b"\0\1GET http://example.com/index.html?q=1 HTTP/1.1\r\nHost: x\r\n"
                    b"User-Agent: curl/8\r\nAccept: */*\r\nProxy-Connection: keep-alive\r\n\r\n"
                    b"GET http://example.com/next HTTP/1.1\r\n\r\n")
    write(t, "post_length", b"\0\0POST http://a.example:8080/form HTTP/1.1\r\n"
                            b"Content-Length: 5\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
                            b"Upgrade: websocket\r\nTE: trailers\r\n\r\nhello")
    write(t, "post_chunked", b"\0\1POST http://a.example/ HTTP/1.1\r\n"
                             b"Transfer-Encoding: gzip, chunked\r\n\r\n"
                             b"5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n")
    write(t, "http10", b"\0\0GET http://a.example HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    write(t, "leading_crlf", b"\0\0\r\n\r\nGET http://a.example/ HTTP/1.1\r\n\r\n")
    write(t, "smuggle_cl_te", b"\0\0POST http://a.example/ HTTP/1.1\r\nContent-Length: 4\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    write(t, "smuggle_connection_cl", b"\0\0POST http://a.example/ HTTP/1.1\r\n"
                                      b"Connection: Content-Length\r\nContent-Length: 3\r\n\r\nabc")
    write(t, "bare_lf", b"\0\0GET http://a.example/ HTTP/1.1\nHost: a\n\n")
    write(t, "obs_fold", b"\0\0GET http://a.example/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n")
    write(t, "origin_form", b"\0\0GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    write(t, "tls", b"\0\0\x16\x03\x01\x02\x00\x01")
    write(t, "resp_length", b"\1\0HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1")
    write(t, "resp_chunked", b"\1\0HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n")
    write(t, "resp_head", b"\1\1HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    write(t, "resp_until_close", b"\1\0HTTP/1.0 200 OK\r\n\r\nbody until close")
    write(t, "resp_100", b"\1\3HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    write(t, "resp_101", b"\1\0HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")
    write(t, "resp_304", b"\1\0HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n")
    write(t, "resp_connect", b"\1\2HTTP/1.1 200 Connection established\r\n\r\n")
    write(t, "chunked", b"\2\0" + b"E\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: x\r\n\r\nnext")
    write(t, "chunked_bad", b"\2\0" + b"5\r\nhelloX\r\n")
    write(t, "length_body", b"\3\5" + b"hellonext")
    write(t, "basic", b"\3\0Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    write(t, "framer_100_chunked", b"\4\0HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP")
    write(t, "framer_head", b"\4\1HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nHTTP/1.1")
    write(t, "framer_304", b"\4\0HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n")
    write(t, "framer_bad_chunk", b"\4\0HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 b"zz\r\n")
    write(t, "framer_close", b"\4\0HTTP/1.0 200 OK\r\n\r\nuntil close")


def inbounds_seeds():
    t = "fuzz_inbounds"
    # [mode][client bytes]: mode bit 0 users (alice/secret, bob/hunter2), bit 1 UDP, bit 2
    # udp_only, bits 3-5 the connect error.
    plain, auth, udp, udp_only = b"\0", b"\1", b"\2", b"\4"

    def rfc1929(user, password, ver=1):
        return bytes([ver, len(user)]) + user + bytes([len(password)]) + password

    s4 = bytes([4, 1]) + port(80) + bytes([192, 0, 2, 1]) + b"id\0"
    s4a = bytes([4, 1]) + port(443) + bytes([0, 0, 0, 1]) + b"\0example.com\0"
    hello = bytes([0x16, 3, 1, 0, 5]) + b"hello"
    write(t, "socks5", plain + bytes([5, 1, 0, 5, 1, 0]) + V4)
    write(t, "socks5_domain_payload",
          plain + bytes([5, 2, 0, 2, 5, 1, 0]) + domain("example.com", 443) + hello)
    write(t, "socks5_ipv6", b"\x08" + bytes([5, 1, 0, 5, 1, 0]) + V6)
    write(t, "socks5_no_method", plain + bytes([5, 1, 0x80]))
    write(t, "socks5_bind", plain + bytes([5, 1, 0, 5, 2, 0]) + V4)
    write(t, "socks5_udp", udp + bytes([5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0]))
    write(t, "socks5_udp_only", udp_only + bytes([5, 1, 0, 5, 1, 0]) + V4)
    write(t, "socks5_bad_atyp", plain + bytes([5, 1, 0, 5, 1, 0, 9, 1, 2, 3, 4, 0, 80]))
    write(t, "socks5_auth", auth + bytes([5, 1, 2]) + rfc1929(b"alice", b"secret") +
          bytes([5, 1, 0]) + domain("example.com", 80) + b"GET / HTTP/1.1\r\n\r\n")
    write(t, "socks5_auth_wrong", auth + bytes([5, 1, 2]) + rfc1929(b"bob", b"secret") +
          bytes([5, 1, 0]) + V4)
    write(t, "socks5_auth_ulen0", auth + bytes([5, 1, 2, 1, 0, 1]) + b"p")
    write(t, "socks5_auth_noauth_offered", auth + bytes([5, 1, 0, 5, 1, 0]) + V4)
    write(t, "socks4", plain + s4 + hello)
    write(t, "socks4a", b"\x10" + s4a)
    write(t, "socks4_with_users", auth + s4)
    write(t, "socks4_bind", plain + bytes([4, 2]) + port(80) + bytes([1, 2, 3, 4, 0]))
    write(t, "http_connect", plain + b"CONNECT example.com:443 HTTP/1.1\r\n"
                             b"Host: example.com:443\r\n\r\n" + hello)
    write(t, "http_connect_auth", auth + b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\n"
                                  b"Proxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n")
    write(t, "http_get_auth_wrong", auth + b"GET http://a.example/ HTTP/1.1\r\n"
                                    b"Proxy-Authorization: Basic Ym9iOnNlY3JldA==\r\n\r\n")
    write(t, "http_get", b"\x18" + b"GET http://example.com:8080/a?b HTTP/1.1\r\nHost: x\r\n"
                         b"Proxy-Connection: keep-alive\r\nConnection: X-Hop\r\nX-Hop: 1\r\n\r\n"
                         b"GET http://example.com/next HTTP/1.1\r\n\r\n")
    write(t, "http_keepalive_chain", plain + b"GET http://a.example/1 HTTP/1.1\r\n\r\n"
          b"POST http://b.example:81/2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nok"
          b"HEAD http://a.example/3 HTTP/1.1\r\n\r\nCONNECT c.example:443 HTTP/1.1\r\n\r\nx")
    write(t, "http_keepalive_auth", auth + b"GET http://a.example/ HTTP/1.1\r\n"
          b"Proxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n"
          b"GET http://a.example/2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
          b"GET http://a.example/3 HTTP/1.1\r\nX: \x01\r\n\r\n")
    write(t, "http_post_length", plain + b"POST http://a.example/f HTTP/1.1\r\n"
                                 b"Content-Length: 5\r\n\r\nhelloEXTRA")
    write(t, "http_post_chunked", plain + b"POST http://a.example/ HTTP/1.1\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n"
                                  b"5;x=1\r\nhello\r\n0\r\nT: 1\r\n\r\nEXTRA")
    write(t, "http_bad", plain + b"GET / HTTP/1.1\r\n\r\n")
    write(t, "tls", plain + bytes([0x16, 3, 1, 2, 0, 1, 0, 1, 0xFC, 3, 3]))
    write(t, "lower_case", plain + b"get http://a.example/ HTTP/1.1\r\n\r\n")
    write(t, "nul", auth + bytes([0, 5, 1, 0]))


# protocol.md §6.2: password "密码", two streams per method (P1, P2).
STREAMS_62 = {
    "aes-128-gcm": [
        "9b0006e19ff614e5eb44a5c9190268d243b5356463c8760d52db2dcb4ca3cd00747f4237ba8e94d3e498e0d8101d7610752766785190b9a869d3aee3db4db5411eea5a6b0e16d1bbd469bfab72a8cc6745a70b71472ec76aa189363cf5d71d98f46a6dbde1acca5de7083c8e27dc386daa6c460540eea8f0d223e8d890d34f45cd5b912b7fcfc3cc20156d1cbbd3066e5cadce99",
        "c3b3e419f8de8c2d4701d94f5258915a967bf7b27a9e97e4cee0c00d67caa7c992f4f41d83109f0a9a6710871501b64851ffa1588c0603c168e00a4ac50b4d729203aecfddd1475b78e338bfe943662fe25f2fe49afc1f5eb00389113d417e5e",
    ],
    "aes-192-gcm": [
        "f3cebc6fb635c16cf1c5d7dfc1350c9c5fd1c51bdd93c68b49be9a856c9230db07e8619cea8c05cf66417fd1962838b822e455f915b594393a6486041c740e41470986d32e091461d5fe2739888195db181909e13fe867764fca8730a437709a577f486cccabdc2f3918d4d0fa3fb96fddc35d8ae6d18073c54570aed05291c558d2817b3a1ef23af4be14a36c297d034844f1780de3b6f7c143ac9a",
        "c58266923546894ea26c786e1cb6e35a4a15ac9b5ba83cbdf43187f7b1d53bd0bb4e61821d519c71eb2fdcea0573aaaa0a7a0ba59a3e4e966b51750b2602c740f293720a31665f879332974ad715b0cd7a8e1428d9b7c4b71f5ed07c539f7f1a296dd39ffe354924",
    ],
    "aes-256-gcm": [
        "4fb44de9876054b81d156438024560fc0ef0118e294eb0950490acc0f2083595ba06df583bafcb96e7ac2916e7d064cc1f8e687aba688cb29e500cef11cb91223c17d62e0f8b7bc15d2ff7a18658f30e4e1b66a80cb3f70cfa110fceaa2c50a2271d533f3c15ba427a9ebf96cc7f0426d79c85e6dfbd3c7b26cd2a663629125feafe65659942d0fe29945e3a80b6a7e253bb400c7f0f0fcad0eb3e455d66d178af51f51a",
        "5648a2d3e86fe68d7c137ad894294f8e8b57ce55eb545cb7da69b93708e2a689a4a8798171d001ed9ef8d3e1b1c89d862604ce7e0803584719ea65e0c4025800187a0e0a2c5408519e93b2279358fb81842e9c913a76ee93ee25d4ddbfb4729fcc64411054411a01a4ada4f22c5e401e",
    ],
    "chacha20-ietf-poly1305": [
        "8094ac0782801abeb1e60778767df9b4310cacf43d6e52f19371e19fcc7716dd5ccf2b739de27db535ab0571ebeb2b30a3652ffedfaa77d47d9a97f21b015d056902d4aa198cc2e5588a8dddd36a8abd9dd3154c3837e86cf36f6471eead1166ed485cd4da93fd7caa27be5682788cf61e36371ab700803e18633b1011dd08df6553df8b7e5adc7bfc6c2f58b531039b044437f74f86a739dc70410f5db04b387988cc8e",
        "8bd996a259f861d54c4b27e740a6ad23381631dae3ab69e5c0377625752fa0f5dc68c4ae6a4c6b2c4f6bdda92ffad4e11fbf5b63bf05809d419cd0b562e927b370c627f14f42b18e146c832bfb6e6bd1f58cc71333ac60943d5592a8f8148687d6008defd21c791fc199efe26dc136e5",
    ],
    "xchacha20-ietf-poly1305": [
        "72771304872876d38cfbf36aaabece33a08b68d4649f35de5ed93d3d16d1481e0cf9959111c2c474f51294d72a57dca30e4b9188999885e313ba10d62531d1ffa4454a97d38861169a2b30d9555ba701e55327cb5162b9dd8d9d0815e027d33452a5288641e956ae65860475f64392faec12428e705ba001229563fa15a4ded235039b55b749d9bc6f043398d73863f89f74b875c5824f0c313d3e1e211485f7837fde0c",
        "1dca4629620bfecd77133488d3e34d9594155982cf514f554f8d0332a4007742979d66ac9524d52d03d82bad6594da985a20b53a52138b5dfc95e9ead17f1e7281568e90111b0b8d26dd11a74eb36457de35505dbb99d91ef4a4848fa9c4dffb1e5938c1a9537b3c09f1bcba762a2f64",
    ],
}
# §6.2 negative vector (aes-128-gcm): the first length decrypts to 0x4000.
NEGATIVE_62 = "9fe197e9b49097273bd814f2955f2056527fcedc730b1c28b37f37520900ad518fb91bd61e4b8226cdb5a69109c713e2c37db1ffb980b09aafc3a56857df3eec3cb3b10edd9aa8e257851cff2250d4cbc952cf9c5103e8311c4e9b18fa68e0734716294747c1abcc906be8a0ce33d41438795cd682cdf7b4e1949b398656543ca03ed7af3cfbcb6700646c241baa3bb39a3f175f5d127d27649876cb055d8b271f48a5abeead43ad5f9d9ac2d47b12997fa8d45f4c370dd49b683c772b30ed092f6326980c5c"


def stream_seeds():
    t = "fuzz_aead_stream"
    for method, streams in STREAMS_62.items():
        sel = CIPHERS.index(method)
        for i, hexs in enumerate(streams):
            s = bytes.fromhex(hexs)
            # [cipher][split seed][stream]; seeds 0 and 7 give different split patterns.
            write(t, f"{method}_p{i + 1}", bytes([sel, 0]) + s)
            if i == 0:
                write(t, f"{method}_p1_truncated", bytes([sel, 7]) + s[:-1])
                write(t, f"{method}_p1_first16", bytes([sel, 3]) + s[:16])
    write(t, "aes-128-gcm_reserved_length_bits", bytes([0, 1]) + bytes.fromhex(NEGATIVE_62))
    write(t, "empty_plaintext", bytes([3, 5]))
    write(t, "plain_text", bytes([4, 9]) + b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")


# protocol.md §6.4 (g): aes-128-gcm, password "password", salt 00..0f.
UDP_64G = "000102030405060708090a0b0c0d0e0f5d51eb74016db72edf50b8847ceb0f8eb20d56131e36cff055ae2293"


def evp_bytes_to_key(password, n):
    out, prev = b"", b""
    while len(out) < n:
        prev = hashlib.md5(prev + password).digest()
        out += prev
    return out[:n]


def udp_seeds():
    t = "fuzz_udp_packet"
    write(t, "aes-128-gcm_64g", bytes([0]) + bytes.fromhex(UDP_64G))
    write(t, "aes-128-gcm_64g_flipped",
          bytes([0]) + bytes.fromhex(UDP_64G[:-2] + "92"))
    write(t, "short_salt_tag_minus_1", bytes([2]) + bytes(47))
    write(t, "empty", bytes([1]))
    pt = bytes([1, 127, 0, 0, 1, 0x14, 0xE9]) + b"hello"
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError:
        print("make_seeds.py: python3-cryptography missing; only the §6.4 (g) UDP seed written",
              file=sys.stderr)
        return
    master = evp_bytes_to_key(b"password", 32)
    for sel, method in enumerate(CIPHERS):
        klen = {"aes-128-gcm": 16, "aes-192-gcm": 24}.get(method, 32)
        if method == "xchacha20-ietf-poly1305":
            continue  # not in python3-cryptography; the target's round trip covers it
        salt = bytes(range(0x40, 0x40 + klen))
        sub = HKDF(hashes.SHA1(), klen, salt, b"ss-subkey").derive(master[:klen])
        aead = ChaCha20Poly1305(sub) if method.startswith("chacha") else AESGCM(sub)
        packet = salt + aead.encrypt(bytes(12), pt, None)
        write(t, f"{method}_hello", bytes([sel]) + packet)
    # Check the derivation against the published vector.
    sub = HKDF(hashes.SHA1(), 16, bytes(range(16)), b"ss-subkey").derive(master[:16])
    assert sub.hex() == "ed2a618d9490d1701de885d82aa80616", sub.hex()


def base64_seeds():
    t = "fuzz_base64"
    write(t, "key32", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
    write(t, "key16_urlsafe_nopad", "AAECAwQFBgcICQoLDA0ODw")
    write(t, "urlsafe", "-_-_")
    write(t, "bad_char", "AAEC*wQF")
    write(t, "bad_padding", "AA=A")
    write(t, "one_char", "A")


# protocol.md §6.4 (a), (b), (e): 2022 TCP flights stamped 1700000000 (PSK 00..0f, iPSK a0..af,
# uPSK b0..bf: the keys of tests/fuzz/fuzz_2022.h).
TCP22_A = ("101112131415161718191a1b1c1d1e1f"
           "f62b42ac395d4aead07a4581e1fdd97fdb2228213f1e01a92fc2c6"
           "e19e0c3dc0253175322489f04f23b87d6f7bc5813bd29ae35227a4d97b65f1bcadd6bf5ef46696e813695e"
           "6449a1f6cc3cf86a5bed745aa33650923cf3b811ba8ad2591d2e16")
TCP22_B = ("202122232425262728292a2b2c2d2e2fcfd439ccd5cb580032874d1521cc11d623310888444d4ba6dd1aa8"
           "82e4892b129c48ba7b35a491381984195689c6b845d372bb5ad2b72484fa6c40ad2e19a6227ba435684a0d"
           "b76dc95a057aff28")
TCP22_E = ("101112131415161718191a1b1c1d1e1fe8f48ebc8648780091db9e446e2e016ae259a58d3af2d4d5521dd2"
           "94a92b4b76948464338cade331182e7c473f3d94e88a759e307f32ce5de06abfbbb1bdf171b21d4d8b6d4f"
           "9cd92e015395033d232bb930ebe67a7823ca0c325c4ba1c1e409bafc4b799387d4e2163035826d750bbba1")
# §6.4 (c), (d), (f): 2022 UDP requests.
UDP22_C = ("18ba69bb4661fee5a7cc9ec1a731e278"
           "0f887748f59fbaddc74035aa8ff890410dcc937ae67325c95a8618615dc83e25a079a65a63b2eb")
UDP22_D = ("404142434445464748494a4b4c4d4e4f5051525354555657d53b0674d5e67e1e8ff487beaf9c659292baad"
           "c4133c006b6a31fd447604239102106a0b39feeb755066be7ae3334734a9b8393834aa22")
UDP22_F = ("4b606595983a2c933d2109e4c23245dfefee03887611ce07d6e6a4214938b04ef39c4f20cc0395dcc558ae"
           "5b4810895560b30cd305461616bcbc629066ffbe5349b06f1558e63c")


def setup(method, users=False, user=0):
    """The setup byte of fuzz_2022.h: method (0 aes-128, 1 aes-256, 2 chacha20), users, user."""
    return method + 3 * (1 if users else 0) + 6 * user


def split_seed(size, wanted):
    """A fuzz_tcp2022 split seed for an input of `size` bytes whose SplitMix64 draws
    (tests/fuzz/fuzz_util.h) satisfy wanted = {draw number: (modulus, residue)}."""
    mask = (1 << 64) - 1
    for seed in range(256):
        state, draws = (seed * 0x0101010101010101 ^ size) & mask, []
        for _ in range(max(wanted) + 1):
            state = (state + 0x9E3779B97F4A7C15) & mask
            z = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & mask
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
            draws.append(z ^ (z >> 31))
        if all(draws[i] % m == r for i, (m, r) in wanted.items()):
            return seed
    raise ValueError(size)


# fuzz_tcp2022's sealed mode, aes-128: draw 0 == 0 mod 4 takes a raw address from the input;
# draws 1-16 are the request salt; draw 17 not 0 mod 4 (1 here) puts payload in the first
# flight, and draw 18 == 3 mod 4 all of it.
RAW_ADDRESS_ALL_PAYLOAD = {0: (4, 0), 17: (4, 1), 18: (4, 3)}


def tcp2022_seeds():
    # [setup][clock skew (int8)][mode][split seed][bytes]; mode 0 request, 1 response, 2 sealed
    # (response clock skew (mode >> 2) * 2 - 64: 0x80 is 0 s, 0xb8 is +28 s, 0xfe is +62 s).
    t = "fuzz_tcp2022"
    a, b, e = bytes.fromhex(TCP22_A), bytes.fromhex(TCP22_B), bytes.fromhex(TCP22_E)
    write(t, "request_64a", bytes([setup(0), 0, 0, 0]) + a)
    write(t, "request_64a_stale", bytes([setup(0), 31, 0, 1]) + a)
    write(t, "request_64a_behind", bytes([setup(0), 0xE2, 0, 2]) + a)  # -30 s: still fresh
    write(t, "request_64e_user", bytes([setup(0, True), 0, 0, 3]) + e)
    write(t, "response_64b", bytes([setup(0), 5, 1, 4]) + b)
    http = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
    for m in range(3):
        write(t, f"sealed_m{m}", bytes([setup(m), 0, 0x82, 5 + m]) + http)
    write(t, "sealed_m1_users_u2", bytes([setup(1, True, 2), 0xF0, 0xB8 | 2, 9]) + http)
    write(t, "sealed_m0_stranger", bytes([setup(0, True, 3), 0, 0x82, 10]) + http)
    write(t, "sealed_m2_stale_reply", bytes([setup(2), 20, 0xFE, 11]) + b"x")
    write(t, "sealed_m0_empty", bytes([setup(0), 0, 0x82, 12]))
    # Raw addresses, the first byte + 1 their size, and all the payload in the first flight. An
    # IPv4 header opens; padding length 900 is the most allowed, 901 not.
    v4 = bytes([1, 192, 0, 2, 1, 0, 80])
    for name, raw, rest in [("raw_ipv4", v4, b"hello"),
                            ("raw_padding_900", v4 + bytes([3, 0x84]), b"x" * 1000),
                            ("raw_padding_901", v4 + bytes([3, 0x85]), b"x" * 1000)]:
        data = bytes([len(raw) - 1]) + raw + rest
        seed = split_seed(4 + len(data), RAW_ADDRESS_ALL_PAYLOAD)
        write(t, f"sealed_m0_{name}", bytes([setup(0), 0, 0x82, seed]) + data)


def udp_record(response=False, session=0, user=0, id_rule=0, v=0, skew=0, damage=0, position=0,
               payload=5, address=0, in_place=False, padding=0):
    """One 8-byte record of fuzz_udp2022's script modes."""
    b0 = (1 if response else 0) | session << 1 | user << 3 | id_rule << 5
    b4 = damage | (position >> 8) << 3
    b7 = address | (4 if in_place else 0) | padding << 3
    return bytes([b0, v >> 8, v & 0xFF, skew & 0xFF, b4, position & 0xFF, payload, b7])


def udp2022_seeds():
    # [setup][clock skew (int8)][mode][seed][bytes]; mode 0 request, 1 response, 2 records.
    t = "fuzz_udp2022"
    c, d, f = bytes.fromhex(UDP22_C), bytes.fromhex(UDP22_D), bytes.fromhex(UDP22_F)
    write(t, "request_64c", bytes([setup(0), 0, 0, 0]) + c)
    write(t, "request_64c_stale", bytes([setup(0), 40, 0, 0]) + c)
    write(t, "request_64d_chacha", bytes([setup(2), 0, 0, 0]) + d)
    write(t, "request_64f_user", bytes([setup(0, True), 0, 0, 0]) + f)
    write(t, "request_64c_as_response", bytes([setup(0), 0, 1, 0]) + c)
    # Normal traffic both ways; a jump of 9000, then 8128 back (the oldest ID still taken) and
    # 871 (one older); timestamps just outside and inside the window; damaged and reflected
    # packets; IDs at the top of the range; raw address bytes.
    traffic = b"".join([
        udp_record(), udp_record(response=True), udp_record(address=2, padding=3),
        udp_record(response=True, in_place=True), udp_record(session=1, id_rule=4, v=9000),
        udp_record(id_rule=2), udp_record(session=1, id_rule=3, v=8128),
        udp_record(session=1, id_rule=6, v=871),
        udp_record(skew=-31), udp_record(skew=30, address=1),
        udp_record(damage=3, position=40), udp_record(response=True, damage=4, position=30),
        udp_record(damage=6), udp_record(damage=7), udp_record(response=True, damage=7),
        udp_record(id_rule=7, v=0), udp_record(id_rule=6, v=1),
        udp_record(address=3, payload=12), udp_record(response=True, address=3)])
    for m in range(3):
        write(t, f"records_m{m}", bytes([setup(m), 0, 2, m]) + traffic)
    users = (udp_record(user=1) + udp_record(user=2, response=True) + udp_record(user=3)
             + udp_record(user=0, session=3, id_rule=5, v=200) + udp_record(user=1, damage=3))
    write(t, "records_m1_users", bytes([setup(1, True), 0, 2, 3]) + users)


def password_seeds():
    t = "fuzz_2022_password"
    write(t, "key16", "AAECAwQFBgcICQoLDA0ODw==")
    write(t, "key32", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
    write(t, "ipsk_upsk16", "oKGio6SlpqeoqaqrrK2urw==:sLGys7S1tre4ubq7vL2+vw==")
    write(t, "three_keys32_urlsafe_nopad",
          ":".join(["oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8"] * 3))
    write(t, "trailing_colon", "AAECAwQFBgcICQoLDA0ODw==:")
    write(t, "empty_middle", "AAECAwQFBgcICQoLDA0ODw==::AAECAwQFBgcICQoLDA0ODw==")
    write(t, "key15", "AAECAwQFBgcICQoLDA0O")
    write(t, "bad_char", "AAECAwQFBgcICQoLDA0O*w==")


def http_request_seeds():
    t = "fuzz_http_request"
    write(t, "scrape", "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9090\r\n"
          "Accept: text/plain;version=0.0.4\r\n\r\n")
    write(t, "head10", "HEAD /metrics?x=1 HTTP/1.0\r\n\r\n")
    write(t, "post_body", "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
    write(t, "bare_lf", "GET /metrics HTTP/1.1\n\n")
    write(t, "partial", "GET /metr")
    # The management API's shapes: a bearer token, a JSON body, a query, a bad length.
    write(t, "api_post", "POST /users HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n"
          "Content-Type: application/json\r\nContent-Length: 46\r\n\r\n"
          '{"username": "alice", "uPSK": "AAAAAAAAAAA="}')
    write(t, "api_stats_clear", "GET /stats?clear=true HTTP/1.1\r\nAuthorization: Bearer x\r\n\r\n")
    write(t, "api_two_lengths", "PATCH /users/a HTTP/1.1\r\nContent-Length: 1\r\n"
          "Content-Length: 2\r\n\r\n")


def sip008_seeds():
    t = "fuzz_sip008"
    server = ('{"id": "27b8a625-4f4b-4428-9f0f-8a2317db7c79", "remarks": "Name of the server", '
              '"server": "example.com", "server_port": 8388, "password": "example", '
              '"method": "chacha20-ietf-poly1305"%s}')
    write(t, "example", '{"version": 1, "servers": [%s, %s], "bytes_used": 274877906944, '
          '"bytes_remaining": 824633720832}'
          % (server % ', "plugin": "obfs-local", "plugin_opts": "obfs=http;obfs-host=www.example.com"',
             server % ', "plugin": "", "plugin_opts": ""'))
    write(t, "2022_ipv6", '{"version": 1, "servers": [{"server": "::1", "server_port": 443, '
          '"method": "2022-blake3-aes-128-gcm", "password": "AAAAAAAAAAAAAAAAAAAAAA==", '
          '"custom": {"a": [1, 2]}}]}')
    write(t, "bad_method", '{"version": 1, "servers": [%s]}'
          % (server % '').replace("chacha20-ietf-poly1305", "rc4-md5"))
    write(t, "disabled", '{"version": 1, "servers": [%s]}' % (server % ', "disabled": true'))
    write(t, "empty", '{"version": 1, "servers": []}')
    write(t, "truncated", '{"version": 1, "servers": [{"server": "192.0.2.1", "server_po')


def dns_seeds():
    t = "fuzz_dns_message"

    def name(n):
        return b"".join(bytes([len(x)]) + x.encode() for x in n.split(".")) + b"\0"

    def header(ident, flags, qd, an=0, ns=0, ar=0):
        return b"".join(v.to_bytes(2, "big") for v in (ident, flags, qd, an, ns, ar))

    q = name("www.example.com") + b"\0\x01\0\x01"
    write(t, "query_a", header(0x1234, 0x0100, 1) + q)
    write(t, "query_aaaa", header(7, 0x0100, 1) + name("proxied.test") + b"\0\x1c\0\x01")
    # CNAME into the question's name, A, an NS in authority, an OPT in additional.
    write(t, "response_cname", header(0x1234, 0x8180, 1, 2, 1, 1) + q
          + b"\xc0\x0c\0\x05\0\x01\0\0\x01\x2c\0\x06\x03web\xc0\x10"
          + b"\xc0\x2d\0\x01\0\x01\0\0\0\x3c\0\x04" + bytes([93, 184, 216, 34])
          + b"\xc0\x10\0\x02\0\x01\0\x01\x51\x80\0\x05\x02ns\xc0\x10"
          + b"\0\0\x29\x04\xd0\0\0\0\0\0\0")
    write(t, "response_aaaa", header(7, 0x8180, 1, 1) + name("proxied.test") + b"\0\x1c\0\x01"
          + b"\xc0\x0c\0\x1c\0\x01\0\0\0\x05\0\x10" + bytes(15) + b"\x01")
    # NXDOMAIN with an SOA (negative TTL from its MINIMUM).
    write(t, "nxdomain_soa", header(9, 0x8183, 1, 0, 1) + q + b"\xc0\x10\0\x06\0\x01\0\0\x0e\x10"
          + (len(name("ns.example.com")) + len(name("admin.example.com")) + 20).to_bytes(2, "big")
          + name("ns.example.com") + name("admin.example.com") + bytes(19) + b"\x3c")
    write(t, "pointer_loop", header(1, 0, 1) + b"\x01a\xc0\x10\xc0\x0c\0\x01\0\x01")


def fake_dns_seeds():
    t = "fuzz_fake_dns"
    h = "shadowsocks-uv fake-dns 1\n"
    write(t, "table", h + "198.18.0.1 1800000598 a.example\n198.18.0.2 1800000599 b.example\n"
                         "fc00::1 1800000600 c.example\n")
    write(t, "outside", h + "10.0.0.1 1800000600 a.example\n198.18.0.9 1800000600 b.example\n")
    write(t, "twice", h + "198.18.0.5 5000 x.example\n198.18.0.5 5000 y.example\n")
    write(t, "expired", h + "198.18.0.1 1 a.example\n")
    write(t, "cut", h + "198.18.0.1 1800000600 a.exa")

    def query(ident, name, qtype):
        q = ident.to_bytes(2, "big") + b"\x01\x00\x00\x01" + bytes(6)
        q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
        q += qtype.to_bytes(2, "big") + b"\x00\x01"
        return len(q).to_bytes(2, "big") + q
    write(t, "tcp_pipelined", query(0x100, "a.example", 1) + query(0x101, "b.example", 28))
    write(t, "tcp_txt", query(0x102, "a.example", 1) + query(0x103, "a.example", 16))
    write(t, "tcp_many", b"".join(query(i, "n%d.example" % i, 1) for i in range(30)))
    write(t, "tcp_zero_length", b"\x00\x00")


def main():
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    address_seeds()
    socks5_seeds()
    host_port_seeds()
    config_seeds()
    stream_seeds()
    udp_seeds()
    base64_seeds()
    tcp2022_seeds()
    udp2022_seeds()
    password_seeds()
    socks4_seeds()
    socks5_auth_seeds()
    users_file_seeds()
    http1_seeds()
    inbounds_seeds()
    http_request_seeds()
    sip008_seeds()
    dns_seeds()
    fake_dns_seeds()


if __name__ == "__main__":
    main()
