"""UDP game traffic through the cluster: FLOWS sockets (each its own source
port, bound to SOURCE[i % len(SOURCE)]) send "GAME<TAG>:<sequence>:<send
time, Unix milliseconds>" datagrams to VIP:PORT, RATE datagrams per second in
all, for SECS seconds. The origin's udp-server.py logs each datagram it gets
(source, port, payload in hex), so a test counts what arrived by TAG and
tells when what arrived was sent.

Prints {"sent": N, "tag": TAG, "flows": [[source, port], ...]} and exits 0.

usage: game-client.py VIP PORT TAG FLOWS RATE SECS SOURCE...
"""

import json
import socket
import sys
import time

vip, port, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
flows, rate, secs = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
sources = sys.argv[7:]
socks = []
for i in range(flows):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sources[i % len(sources)], 0))
    socks.append(s)
sent = 0
start = time.monotonic()
# Bounded by time and by count.
limit = int(rate * secs)
while sent < limit and time.monotonic() - start < secs + 5:
    s = socks[sent % flows]
    try:
        s.sendto(f"GAME{tag}:{sent}:{int(time.time() * 1000)}".encode(), (vip, port))
    except OSError:
        # ICMP errors from an earlier datagram (unreachable): keep going.
        pass
    sent += 1
    ahead = sent / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)
print(json.dumps({"sent": sent, "tag": tag, "flows": [list(s.getsockname()) for s in socks]}), flush=True)
