"""The stand-in toolman of the conformance suite: the sidecar the Docker backend waits for,
reduced to what the backend needs of it: `/ready` answering 200 on port 3000 of the
task's network namespace (the agent's `localhost`). The real toolman has its own tests
(services/toolman) and runs in the images' end-to-end tests (tests/e2e)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Ready(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/ready" else 404
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


if __name__ == "__main__":
    print("stand-in toolman serving on :3000", flush=True)
    ThreadingHTTPServer(("0.0.0.0", 3000), Ready).serve_forever()
