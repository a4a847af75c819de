"""HTTP clients of mgmt/tests/e2e_auth.rs, bound to source address SRC.

- `requests SRC URL`: Python requests (follows redirects, like a browser)
  fetches URL and prints the body.
- `bot SRC URL COUNT`: a bot of the CC kind: COUNT connections, each
  sending a GET and reading the answer without following redirects; prints
  "<status> <n>" per status seen.

usage: http-clients.py requests SRC URL
       http-clients.py bot SRC URL COUNT
"""

import collections
import sys

import requests
from requests.adapters import HTTPAdapter


class Bound(HTTPAdapter):
    def __init__(self, src, **kw):
        self.src = src
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.src, 0)
        super().init_poolmanager(*args, **kw)


mode, src, url = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "requests":
    s = requests.Session()
    s.mount("http://", Bound(src))
    r = s.get(url, timeout=10)
    r.raise_for_status()
    sys.stdout.write(r.text)
elif mode == "bot":
    seen = collections.Counter()
    for _ in range(int(sys.argv[4])):
        s = requests.Session()
        s.mount("http://", Bound(src))
        try:
            r = s.get(url, timeout=5, allow_redirects=False)
            seen[str(r.status_code)] += 1
        except requests.RequestException as e:
            seen[type(e).__name__] += 1
        s.close()
    for k, v in sorted(seen.items()):
        print(k, v)
else:
    sys.exit(f"unknown mode {mode}")
