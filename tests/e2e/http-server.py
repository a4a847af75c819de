"""The origin's real HTTP server for Moat's live end-to-end test: serves the
files of DIR on port PORT of each address given (IPv4 or IPv6), one log line per request:
"<client address> <client port> <method> <path>". Writes its pid to PID_FILE
and prints "ready" once every address is bound (python3 may be a wrapper
script that forks, so the caller cannot take the pid from `$!`).

usage: http-server.py DIR PORT LOG_FILE PID_FILE ADDRESS...
"""

import functools
import http.server
import os
import socket
import sys
import threading

root, port, log_path, pid_path, addrs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
log = open(log_path, "a", buffering=1)
lock = threading.Lock()


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_request(self, code="-", size="-"):
        with lock:
            log.write(f"{self.client_address[0]} {self.client_address[1]} {self.command} {self.path}\n")

    def log_message(self, format, *args):
        pass


class Server4(http.server.ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a burst of new connections
    # (the load test's clients) would overflow the accept queue, and the
    # origin, not Moat, would drop SYNs. 128 is the kernel's default somaxconn
    # of old and what a real server configures at least.
    request_queue_size = 128


class Server6(Server4):
    address_family = socket.AF_INET6


handler = functools.partial(Handler, directory=root)
servers = [(Server6 if ":" in a else Server4)((a, port), handler) for a in addrs]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
with open(pid_path, "w") as f:
    f.write(f"{os.getpid()}\n")
print("ready", flush=True)
servers[0].serve_forever()
