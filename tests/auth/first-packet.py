"""A game client of the first-packet profile (mgmt/tests/e2e_auth.rs): from
SRC, sends its init packet INIT_HEX to VIP:PORT, then again after GAP_MS (a
retransmission, as real clients do when the server is silent), then one
datagram "play" a little later.

usage: first-packet.py SRC VIP PORT INIT_HEX GAP_MS
"""

import socket
import sys
import time

src, vip, port, init, gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), bytes.fromhex(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
s.sendto(init, (vip, port))
time.sleep(gap / 1000)
s.sendto(init, (vip, port))
time.sleep(0.2)
s.sendto(b"play", (vip, port))
print("sent", flush=True)
