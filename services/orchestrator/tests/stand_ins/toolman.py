"""The stand-in toolman of the conformance suite: the sidecar the Docker backend waits for,
reduced to what the backend needs of it: `/ready` answering 200 on port 3000 of the
task's network namespace (the agent's `localhost`), and an audit line on stderr for each
tool call, in toolman's own format (logger `toolman.audit`), for the call the stand-in
agent reports with `POST /audit`. The real toolman has its own tests (services/toolman)
and runs in the images' end-to-end tests (tests/e2e)."""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Toolman(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/ready" else 404
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        call = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        audit = {"logger": "toolman.audit", "agent": os.environ["AGENT_NAME"], "kind": "tool"}
        sys.stderr.write(json.dumps(audit | call) + "\n")
        sys.stderr.flush()
        self.send_response(204 if self.path == "/audit" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # only the audit lines on stderr


if __name__ == "__main__":
    print("stand-in toolman serving on :3000", flush=True)
    ThreadingHTTPServer(("0.0.0.0", 3000), Toolman).serve_forever()
