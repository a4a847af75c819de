"""A2S_INFO through Moat with PyPI python-a2s (the game query client of
mgmt/tests/e2e_auth.rs), its socket bound to SRC: prints the server's name.

usage: a2s-query.py SRC VIP PORT
"""

import sys

import a2s
import a2s.a2s_sync

src, vip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
init = a2s.a2s_sync.A2SStream.__init__


def bound_init(self, address, timeout):
    init(self, address, timeout)
    self._socket.bind((src, 0))


a2s.a2s_sync.A2SStream.__init__ = bound_init
print(a2s.info((vip, port), timeout=3).server_name)
