"""Virtual environments buildkit makes with uv: one per service for tests and type checks,
and a throw-away one per wheel to prove the wheel installs and its script runs.

A service environment is rebuilt only when what it was made from changes (the service's
pyproject.toml, the interpreter, the extras): warm runs install nothing.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from buildkit.config import Service
from buildkit.errors import StageFailed, ToolMissingError
from buildkit.proc import CallResult, Runner

STAMP = ".buildkit-stamp"


@functools.cache
def uv_binary() -> str:
    """Found once: uv's finder reads sysconfig, whose first use is not thread-safe."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise ToolMissingError(
        "uv is not installed; buildkit makes its environments with it",
        hint="pip install uv (it is a dependency of buildkit: pip install -e .)",
    )


def env_python(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def env_script(env_dir: Path, script: str) -> Path:
    return env_dir / "bin" / script


@dataclass
class Envs:
    """Makes and reuses environments under `build/`; safe to call from several threads."""

    build_dir: Path
    offline: bool = False
    _locks: dict[Path, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def uv(self, *args: str | Path) -> list[str]:
        argv = [uv_binary(), *map(str, args)]
        if self.offline:
            argv.append("--offline")
        return argv

    def service_env(
        self, service: Service, runner: Runner, siblings: Sequence[Service] = ()
    ) -> Path:
        """`build/envs/<service>`: the service installed editable with its `test` extra, and
        the sibling services it requires installed editable on the same command line, so
        their names are never looked up in an index."""
        env_dir = self.build_dir / "envs" / service.name
        stamp = self._stamp(
            [service.path / "pyproject.toml", *(s.path / "pyproject.toml" for s in siblings)],
            "test",
        )
        with self._lock(env_dir):
            stamp_file = env_dir / STAMP
            fresh = stamp_file.is_file() and stamp_file.read_text() == stamp
            if fresh and env_python(env_dir).exists():
                return env_dir
            self._create(env_dir, runner)
            editable = [arg for sibling in siblings for arg in ("-e", str(sibling.path))]
            self._check(
                runner.call(
                    self.uv(
                        "pip",
                        "install",
                        "--python",
                        env_python(env_dir),
                        *editable,
                        "-e",
                        f"{service.path}[test]",
                    ),
                ),
                f"installing {service.name} into {env_dir}",
            )
            (env_dir / STAMP).write_text(stamp)
        return env_dir

    def fresh_env(self, env_dir: Path, requirements: Sequence[str | Path], runner: Runner) -> Path:
        """A new, empty environment with only `requirements` installed."""
        with self._lock(env_dir):
            self._create(env_dir, runner)
            self._check(
                runner.call(
                    self.uv("pip", "install", "--python", env_python(env_dir), *requirements),
                ),
                f"installing {' '.join(map(str, requirements))} into {env_dir}",
            )
        return env_dir

    def _create(self, env_dir: Path, runner: Runner) -> None:
        if env_dir.exists():
            shutil.rmtree(env_dir)
        env_dir.parent.mkdir(parents=True, exist_ok=True)
        self._check(
            runner.call(self.uv("venv", "--quiet", "--python", sys.executable, env_dir)),
            f"creating {env_dir}",
        )

    def _lock(self, env_dir: Path) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(env_dir, threading.Lock())

    @staticmethod
    def _stamp(pyprojects: Sequence[Path], extras: str) -> str:
        digest = hashlib.sha256()
        for pyproject in pyprojects:
            digest.update(pyproject.read_bytes())
        digest.update(f"{sys.version}|{sys.executable}|{extras}".encode())
        return digest.hexdigest()

    @staticmethod
    def _check(result: CallResult, what: str) -> None:
        if not result.ok:
            raise StageFailed(
                f"{what} failed (exit {result.returncode})",
                command=result.command,
                output=result.tail(),
            )
