"""A unix socket in front of the real Docker engine's, which a test can cut and restore.

"The engine stopped" cannot be made by stopping the machine's dockerd: every other test
uses it. Between the orchestrator and the engine, this proxy forwards bytes both ways
while it is up; cut, it closes every connection and answers each new one by closing it
at once, which is what a client sees of a dead daemon (EOF / connection reset). It
counts those refused connections, so a test can wait for the orchestrator to have tried
and failed N times instead of sleeping.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress
from pathlib import Path

CHUNK = 65536


class EngineProxy:
    def __init__(self, engine_socket: str, path: Path) -> None:
        self.engine_socket = engine_socket
        self.path = path
        self._up = threading.Event()
        self._up.set()
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._refused = 0
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(64)
        self._closed = False
        threading.Thread(target=self._accept, name="engine-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    @property
    def refused(self) -> int:
        with self._lock:
            return self._refused

    def cut(self) -> None:
        """The engine is gone: drop every connection, refuse new ones."""
        self._up.clear()
        with self._lock:
            live, self._live = self._live, set()
        for conn in live:
            _close(conn)

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)
        with suppress(FileNotFoundError):
            self.path.unlink()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                with self._lock:
                    self._refused += 1
                _close(client)
                continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.engine_socket)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._live |= {client, upstream}
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (source, target):
                _close(conn)
            with self._lock:
                self._live -= {source, target}


def _close(conn: socket.socket) -> None:
    with suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        conn.close()
