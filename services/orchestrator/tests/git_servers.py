"""Real git servers on loopback for the clone's tests: repositories made with the git CLI,
served by `git daemon` (git://) and by dulwich's smart HTTP server behind basic auth; a
server that accepts a connection and never answers (a stuck host); and a look in /proc
for the clone processes still alive."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from conftest import free_port, wait_until

USER, PASSWORD = "reader", "pw-5f2c-never-in-argv"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def make_repo(path: Path, files: dict[str, bytes]) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "tests@example.invalid")
    git(path, "config", "user.name", "clone tests")
    for name, data in files.items():
        (path / name).write_bytes(data)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "first")
    (path / ".git" / "git-daemon-export-ok").touch()
    return path


@dataclass
class Served:
    git: str  # git://127.0.0.1:PORT (git daemon; repositories /project.git, /big.git)
    http: str  # http://127.0.0.1:PORT (dulwich.web; basic auth USER / PASSWORD)
    first: str  # project.git: main has `first` then `second`; `feature` branches off first
    main: str
    tree: str  # the tree of `first`: an object that is not a commit


def basic_auth(app: WSGIApplication) -> WSGIApplication:
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    def guarded(environ: WSGIEnvironment, start: StartResponse) -> Iterable[bytes]:
        if environ.get("HTTP_AUTHORIZATION") != expected:
            start("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"')])
            return [b""]
        return app(environ, start)

    return guarded


class Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_repositories(root: Path) -> Iterator[Served]:
    """`project.git` and `big.git` (3 MiB of noise) made in `root` and served."""
    from dulwich.repo import Repo
    from dulwich.server import BackendRepo, DictBackend
    from dulwich.web import make_wsgi_chain

    project = make_repo(root / "project.git", {"README.md": b"first\n"})
    first, tree = git(project, "rev-parse", "HEAD"), git(project, "rev-parse", "HEAD^{tree}")
    git(project, "checkout", "-q", "-b", "feature")
    (project / "feature.txt").write_text("feature\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "feature")
    git(project, "checkout", "-q", "main")
    (project / "only-later.txt").write_text("later\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "second")
    make_repo(root / "big.git", {"noise.bin": os.urandom(3 << 20)})  # incompressible

    port = free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--listen=127.0.0.1", f"--port={port}",
         f"--base-path={root}", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    repos: dict[str, BackendRepo] = {"/project.git": Repo(str(project))}
    backend = DictBackend(repos)
    http = make_server("127.0.0.1", 0, basic_auth(make_wsgi_chain(backend)), WSGIServer, Quiet)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    url = f"git://127.0.0.1:{port}"

    def serving() -> bool:
        assert daemon.poll() is None, "git daemon exited"
        probe = ["git", "ls-remote", f"{url}/project.git"]
        return subprocess.run(probe, capture_output=True, check=False).returncode == 0

    try:
        wait_until(serving, timeout=30, what="git daemon serving the repositories")
        main = git(project, "rev-parse", "main")
        yield Served(url, f"http://127.0.0.1:{http.server_port}", first, main, tree)
    finally:
        http.shutdown()
        http.server_close()
        daemon.terminate()
        daemon.wait(timeout=10)


@dataclass
class SilentServer:
    """Accepts one connection on loopback and never answers; keeps what it was sent."""

    sock: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0)))
    connected: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)
    received: bytearray = field(default_factory=bytearray)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return  # closed by the test
        self.connected.set()
        with conn:
            try:
                while chunk := conn.recv(65536):
                    self.received += chunk
            except OSError:
                pass
        self.closed.set()


@contextmanager
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    threading.Thread(target=server.serve, daemon=True).start()
    try:
        yield server
    finally:
        server.sock.close()


def clone_processes(marker: str) -> list[int]:
    """The pids of clone processes whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
        except OSError:
            continue
        if b"orchestrator.backends.clone" in cmdline and marker.encode() in cmdline:
            found.append(int(entry.name))
    return found
