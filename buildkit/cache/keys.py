"""Step keys: the hash of everything a step's result depends on, and nothing else. What
goes in is declared by each stage (`key_inputs` of buildkit.stages.protocol.Stage):

    test   the service's files as git sees them (tracked, and untracked-not-ignored, with
           content), its environment's exact packages, --debug, BUILDKIT_REQUIRE_ALL, and
           the files of the sibling services it requires (installed editable beside it)
    lint   the files, the environment, the siblings' files, ruff's and mypy's versions
           and their configuration
    fmt    the files, ruff's version and configuration, --fix
    wheel  the files, the service's version, uv's version, the siblings' wheels (sha256:
           its install check installs them)
    image  (engine backend) the wheel and the siblings' wheels (sha256), Dockerfile and
           .dockerignore, each platform's base image id, the labels (but `created`),
           --debug; the buildx backend keeps its own cache and is not recorded
    push   the image ids, the tags, the registry
Python's and buildkit's versions go into every key. A step without a key is never cached.
This module has the hashing and the facts several stages hash.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from buildkit import tomlcompat
from buildkit.deps.envs import env_python, uv_binary
from buildkit.proc import Runner


class Hasher:
    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def add(self, name: str, value: object) -> None:
        encoded = json.dumps(value, sort_keys=True, default=str).encode()
        self._digest.update(f"{name}={len(encoded)}:".encode() + encoded + b"\n")

    def files(self, root: Path, paths: Iterable[Path]) -> None:
        for path in sorted(paths):
            content = path.read_bytes() if path.is_file() else b"<missing>"
            self.add(
                f"file {path.relative_to(root).as_posix()}", hashlib.sha256(content).hexdigest()
            )

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


@functools.cache
def tool_version(argv: tuple[str, ...]) -> str:
    result = Runner().call(argv, timeout=60)
    return result.output.strip() if result.ok else f"unavailable ({result.returncode})"


def environment_packages(env_dir: Path) -> str:
    result = Runner().call(
        [uv_binary(), "pip", "freeze", "--python", str(env_python(env_dir))], timeout=120
    )
    return result.output if result.ok else f"unreadable ({result.returncode})"


def tool_config(root: Path, *tables: str) -> dict[str, Any]:
    with (root / "pyproject.toml").open("rb") as handle:
        tools = tomlcompat.load(handle).get("tool", {})
    return {table: tools.get(table) for table in tables}
