"""The origin's real server for Moat's end-to-end GRE test: a UDP socket on
each VIP (IPv4 and IPv6), one log line per datagram received:
"<source address> <source port> <payload hex>". Writes its pid to PID_FILE
and prints "ready" once bound.

usage: udp-server.py VIP4 VIP6 PORT LOG_FILE PID_FILE
"""

import os
import select
import socket
import sys

vip4, vip6, port, log_path, pid_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
socks = []
for family, addr in ((socket.AF_INET, vip4), (socket.AF_INET6, vip6)):
    s = socket.socket(family, socket.SOCK_DGRAM)
    # A few thousand datagrams arrive in a burst: room for all of them.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((addr, port))
    socks.append(s)
with open(pid_path, "w") as f:
    f.write(f"{os.getpid()}\n")
print("ready", flush=True)
with open(log_path, "a", buffering=1) as log:
    while True:
        for s in select.select(socks, [], [])[0]:
            data, src = s.recvfrom(65535)
            log.write(f"{src[0]} {src[1]} {data.hex()}\n")
