#!/usr/bin/env python3
"""A webhook receiver for the attack demo: prints each POSTed JSON body on
one line and answers 204. Listens on 127.0.0.1:PORT (default 9099)."""
import http.server
import json
import sys


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            doc = json.loads(body)
            print(json.dumps(doc, sort_keys=True), flush=True)
        except ValueError:
            print("not JSON:", body[:200], flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


port = int(sys.argv[1]) if len(sys.argv) > 1 else 9099
http.server.HTTPServer(("127.0.0.1", port), Hook).serve_forever()
