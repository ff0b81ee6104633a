"""`claude-agent`: the entrypoint of the claude-code image (Claude Code + mcp-wrapper).

    claude-agent serve                             answer /health and wait (the default)
    claude-agent direct --task TEXT [-- ARGS...]   run `claude -p TEXT` once, with toolman's
                                                   tools through mcp-wrapper (--task-file F:
                                                   the task is in file F)
    claude-agent subprocess [--api-key KEY] [-- ARGS...]
                                                   run `claude ARGS` on this terminal
    claude-agent shell                             a shell in the agent's workspace

While it runs, GET /health on CLAUDE_AGENT_PORT (default 8080) answers 200 with the
agent's state, or 503 when the Claude Code binary does not run. CLAUDE_API_KEY (the old
platform's variable) is passed to Claude Code as ANTHROPIC_API_KEY.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import BinaryIO, ClassVar

DEFAULT_PORT = 8080
DEFAULT_MCP_CONFIG = "/etc/claude-code/mcp.json"
VERSION_TIMEOUT = 20.0


@dataclass
class AgentState:
    mode: str
    claude_version: str | None = None
    error: str | None = None
    child: subprocess.Popen[bytes] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def health(self) -> tuple[int, dict[str, object]]:
        with self.lock:
            claude: dict[str, object] = {"version": self.claude_version}
            if self.child is not None:
                claude["running"] = self.child.poll() is None
                claude["exit_code"] = self.child.returncode
            if self.error:
                return 503, {"status": "error", "mode": self.mode, "error": self.error}
            return 200, {"status": "ok", "mode": self.mode, "claude": claude}


class HealthHandler(BaseHTTPRequestHandler):
    state: ClassVar[AgentState]

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/health":
            self.send_error(404)
            return
        status, body = self.state.health()
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        return  # health probes every few seconds would drown the agent's own output


def claude_binary() -> str:
    return os.environ.get("CLAUDE_BINARY", "claude")


def probe_claude(state: AgentState) -> None:
    """Ask the binary for its version once: it proves Claude Code runs on this platform."""
    binary = shutil.which(claude_binary())
    if binary is None:
        state.error = f"Claude Code ({claude_binary()!r}) is not installed or not on PATH"
        return
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True,
                              timeout=VERSION_TIMEOUT, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        state.error = f"`{binary} --version` failed: {exc}"
        return
    if done.returncode != 0:
        state.error = f"`{binary} --version` exited {done.returncode}: {done.stderr.strip()[:200]}"
        return
    state.claude_version = done.stdout.strip() or None


def serve_health(state: AgentState, port: int) -> ThreadingHTTPServer:
    handler = type("Handler", (HealthHandler,), {"state": state})
    server = ThreadingHTTPServer(("0.0.0.0", port), handler)  # noqa: S104 - a container's port
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server


def child_environment(api_key: str | None) -> dict[str, str]:
    env = dict(os.environ)
    key = api_key or env.get("CLAUDE_API_KEY")
    if key and (api_key or not env.get("ANTHROPIC_API_KEY")):
        env["ANTHROPIC_API_KEY"] = key
    return env


def run_claude(
    state: AgentState, argv: list[str], env: dict[str, str], stdin: BinaryIO | None = None
) -> int:
    if state.error:
        print(f"claude-agent: {state.error}", file=sys.stderr)
        return 127
    with state.lock:
        state.child = subprocess.Popen([claude_binary(), *argv], env=env, stdin=stdin)
    child = state.child

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    return child.wait()


def wait_for_stop() -> int:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    stop.wait()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="claude-agent",
        description="Run Claude Code in the agent container, with toolman's tools through "
        "mcp-wrapper and a health endpoint.",
        epilog="Environment: CLAUDE_AGENT_PORT (8080), CLAUDE_AGENT_MCP_CONFIG "
        f"({DEFAULT_MCP_CONFIG}), CLAUDE_API_KEY or ANTHROPIC_API_KEY, "
        "MCP_TOOLMAN_SERVER_URL (for mcp-wrapper).",
    )
    modes = parser.add_subparsers(dest="mode", metavar="MODE")
    modes.add_parser("serve", help="answer /health until stopped (the default)")
    direct = modes.add_parser("direct", help="run one task: claude -p TASK")
    task = direct.add_mutually_exclusive_group(required=True)
    task.add_argument("--task", help="the task for Claude Code")
    task.add_argument(
        "--task-file", help="a file holding the task (the orchestrator writes long prompts so)"
    )
    direct.add_argument("args", nargs="*", help="more arguments for claude (after --)")
    sub = modes.add_parser("subprocess", help="run claude ARGS attached to this terminal")
    sub.add_argument("--api-key", help="the Anthropic API key (default: CLAUDE_API_KEY)")
    sub.add_argument("args", nargs="*", help="arguments for claude (after --)")
    modes.add_parser("shell", help="a login shell in the workspace")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    mode = args.mode or "serve"
    if mode == "shell":
        shell = shutil.which("bash") or "/bin/sh"
        os.execv(shell, [shell, "-l"])  # noqa: S606 - replacing this process is the point
    try:
        port = int(os.environ.get("CLAUDE_AGENT_PORT", DEFAULT_PORT))
    except ValueError:
        print(
            f"claude-agent: CLAUDE_AGENT_PORT={os.environ['CLAUDE_AGENT_PORT']!r} is not "
            "a port number",
            file=sys.stderr,
        )
        return 2
    state = AgentState(mode)
    probe_claude(state)
    server = serve_health(state, port)
    try:
        if mode == "serve":
            return wait_for_stop()
        mcp_config = os.environ.get("CLAUDE_AGENT_MCP_CONFIG", DEFAULT_MCP_CONFIG)
        if mode == "direct" and args.task_file is not None:
            # On stdin: a prompt of any length (one argument may hold only 128 KiB).
            try:
                stdin = open(args.task_file, "rb")  # noqa: SIM115 - the child reads it
            except OSError as exc:
                print(f"claude-agent: cannot read --task-file {args.task_file}: {exc}",
                      file=sys.stderr)  # fmt: skip
                return 2
            with stdin:
                argv = ["-p", "--mcp-config", mcp_config, *args.args]
                return run_claude(state, argv, child_environment(None), stdin=stdin)
        if mode == "direct":
            argv = ["-p", args.task, "--mcp-config", mcp_config, *args.args]
            return run_claude(state, argv, child_environment(None))
        return run_claude(state, list(args.args), child_environment(args.api_key))
    finally:
        server.shutdown()
