"""Slow, long HTTP transfers through the cluster: COUNT concurrent
connections, each fetching PATH from VIP:80 and reading it at RATE bytes per
second, the bytes compared with EXPECT_FILE as they arrive. A transfer counts
as complete only with exactly the expected bytes and a clean end of stream; a
reset (ECONNRESET), a stall (no byte for STALL seconds), a wrong or short body
are each reported.

Prints JSON lines: {"event": "connected", "i", "src", "sport", "ms"} once per
connection (the connect time includes SYN authentication), then one
{"event": "done", "i", "src", "sport", "result", "bytes", "secs", "error"}
per transfer, and last {"event": "summary", "total", "complete", "resets",
"results": {result: n}}. Exits 0 when every transfer is complete, 1 otherwise.

usage: slow-client.py VIP PATH EXPECT_FILE COUNT RATE STALL SOURCE...
  (connection i is bound to SOURCE[i % len(SOURCE)])
"""

import json
import socket
import sys
import threading
import time

vip, path, expect_path = sys.argv[1], sys.argv[2], sys.argv[3]
count, rate, stall = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
sources = sys.argv[7:]
expected = open(expect_path, "rb").read()
lock = threading.Lock()
results = []


def emit(obj):
    with lock:
        print(json.dumps(obj), flush=True)


def transfer(i):
    src = sources[i % len(sources)]
    rec = {"event": "done", "i": i, "src": src, "sport": 0, "result": "", "bytes": 0, "secs": 0.0, "error": ""}
    start = time.monotonic()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # A small receive buffer: the server's sends block on the reader's
        # pace, so the connection stays busy (ACKs through Moat) all along.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.bind((src, 0))
        rec["sport"] = s.getsockname()[1]
        # SYN authentication costs a retransmitted SYN (1 s).
        s.settimeout(10)
        try:
            s.connect((vip, 80))
        except OSError as e:
            rec["result"], rec["error"] = "connect_failed", repr(e)
            return
        emit({"event": "connected", "i": i, "src": src, "sport": rec["sport"],
              "ms": round((time.monotonic() - start) * 1000)})
        s.settimeout(stall)
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: {vip}\r\n\r\n".encode())
        head = b""
        in_body = False
        got = 0
        t0 = time.monotonic()
        body_ok = True
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            if not in_body:
                head += chunk
                if b"\r\n\r\n" not in head:
                    continue
                head, chunk = head.split(b"\r\n\r\n", 1)
                status = head.split(b"\r\n", 1)[0]
                if b" 200 " not in status:
                    rec["result"], rec["error"] = "bad_status", status.decode(errors="replace")
                    return
                in_body = True
            if chunk:
                if expected[got:got + len(chunk)] != chunk:
                    body_ok = False
                got += len(chunk)
                rec["bytes"] = got
            # Read no faster than RATE.
            ahead = got / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
        if not in_body:
            rec["result"], rec["error"] = "no_header", head[:80].decode(errors="replace")
        elif not body_ok:
            rec["result"] = "corrupt"
        elif got != len(expected):
            rec["result"], rec["error"] = "short", f"{got} of {len(expected)} bytes"
        else:
            rec["result"] = "complete"
    except ConnectionResetError as e:
        rec["result"], rec["error"] = "reset", repr(e)
    except socket.timeout:
        rec["result"], rec["error"] = "stalled", f"no byte for {stall} s"
    except OSError as e:
        rec["result"], rec["error"] = "error", repr(e)
    finally:
        s.close()
        rec["secs"] = round(time.monotonic() - start, 3)
        with lock:
            results.append(rec)
        emit(rec)


threads = [threading.Thread(target=transfer, args=(i,)) for i in range(count)]
for t in threads:
    t.start()
    # Spread the SYNs a little (SYN authentication, one at a time per source).
    time.sleep(0.02)
for t in threads:
    t.join()
by = {}
for r in results:
    by[r["result"]] = by.get(r["result"], 0) + 1
emit({"event": "summary", "total": count, "complete": by.get("complete", 0), "resets": by.get("reset", 0),
      "results": by})
sys.exit(0 if by.get("complete", 0) == count else 1)
