#!/usr/bin/env python3
"""A webhook receiver as a user of `hpo coordinator --notify` writes one: it checks each
request's X-Hpo-Signature-256 (HMAC-SHA256 of the body under the shared secret), answers 503 to
the first --fail requests (a receiver that is not ready yet), and appends each event it accepts
to --out as one JSON line, with the headers it came with. Events repeated after a crash are kept
(the test counts them). Stops on SIGTERM.

usage: webhook_receiver.py --port N --out FILE [--secret-file F] [--fail N]
"""
import argparse
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--secret-file")
    ap.add_argument("--fail", type=int, default=0)
    args = ap.parse_args()
    secret = open(args.secret_file, "rb").read().strip() if args.secret_file else None
    lock = threading.Lock()
    state = {"failed": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                if state["failed"] < args.fail:
                    state["failed"] += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                signed = self.headers.get("X-Hpo-Signature-256", "")
                good = secret is None or hmac.compare_digest(
                    signed, "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest())
                if not good:
                    self.send_response(401)
                    self.end_headers()
                    return
                event = json.loads(body)
                with open(args.out, "a") as f:
                    f.write(json.dumps({"event": event, "event_id_header": self.headers.get("X-Hpo-Event-Id")}) + "\n")
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
