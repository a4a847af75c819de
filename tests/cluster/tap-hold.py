"""Holds a non-persistent TAP interface open until killed, as Moat holds its
BIRD liveness interface: when this process dies the kernel deletes the TAP.
Used to check the BIRD side of the cluster topology without Moat
(`topology.sh down` stops it when PID_FILE is STATE_DIR/n1/tap.pid or n2/tap.pid).

usage: tap-hold.py NAME PID_FILE
"""

import fcntl
import os
import struct
import subprocess
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000

name, pid_path = sys.argv[1], sys.argv[2]
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
subprocess.run(["ip", "link", "set", name, "up"], check=True)
with open(pid_path, "w") as f:
    f.write(f"{os.getpid()}\n")
print("ready", flush=True)
while True:
    time.sleep(3600)
