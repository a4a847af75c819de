"""The origin's game servers for Moat's udp_auth end-to-end test
(mgmt/tests/e2e_auth.rs), on VIP:

- A2S_PORT: a small Source-engine query server. It answers A2S_INFO like a
  real server since 2020: a query without this server's own challenge for
  the client gets an S2C_CHALLENGE (a random 4 bytes per client address and
  port), a query with it gets the A2S_INFO answer (name "moat-e2e").
- FP_PORT: a plain UDP sink for the first-packet profile.

One log line per datagram received: "<port> <source> <source port> <what>"
with <what> `challenge` (answered with a challenge), `info` (answered with
the info), `junk` (an A2S port datagram that is no INFO query), or the
payload in hex on FP_PORT. Writes its pid to PID_FILE and prints "ready"
once bound.

usage: game-server.py VIP A2S_PORT FP_PORT LOG_FILE PID_FILE
"""

import os
import select
import socket
import struct
import sys

vip, a2s_port, fp_port, log_path, pid_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
HEADER = b"\xff\xff\xff\xff"
INFO = HEADER + b"TSource Engine Query\x00"

socks = {}
for port in (a2s_port, fp_port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((vip, port))
    socks[s] = port
challenges = {}


def info_answer():
    # A2S_INFO response (Valve Developer Community, "Server queries").
    body = b"\x49\x11" + b"moat-e2e\x00" + b"de_dust2\x00" + b"cstrike\x00" + b"Counter-Strike\x00"
    body += struct.pack("<hBBBcc?B", 10, 3, 16, 0, b"d", b"l", False, True)
    body += b"1.0.0.0\x00"
    return HEADER + body


with open(pid_path, "w") as f:
    f.write(f"{os.getpid()}\n")
print("ready", flush=True)
with open(log_path, "a", buffering=1) as log:
    while True:
        for s in select.select(list(socks), [], [])[0]:
            data, src = s.recvfrom(65535)
            port = socks[s]
            if port == fp_port:
                log.write(f"{port} {src[0]} {src[1]} {data.hex()}\n")
                continue
            if not data.startswith(INFO):
                log.write(f"{port} {src[0]} {src[1]} junk\n")
                continue
            want = challenges.setdefault(src, os.urandom(4))
            if data[len(INFO):] == want:
                s.sendto(info_answer(), src)
                log.write(f"{port} {src[0]} {src[1]} info\n")
            else:
                s.sendto(HEADER + b"\x41" + want, src)
                log.write(f"{port} {src[0]} {src[1]} challenge\n")
