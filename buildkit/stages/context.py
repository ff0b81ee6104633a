"""What every stage is handed: the project, the options, git facts and its seams."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from buildkit.config import Project
from buildkit.envs import Envs
from buildkit.errors import ToolMissingError
from buildkit.gitinfo import GitInfo
from buildkit.options import Options
from buildkit.proc import Runner


@dataclass(frozen=True)
class Context:
    project: Project
    options: Options
    git: GitInfo
    envs: Envs
    runner: Runner

    @property
    def root(self) -> Path:
        return self.project.root

    @property
    def build_dir(self) -> Path:
        return self.project.root / "build"

    @property
    def dist_dir(self) -> Path:
        return self.project.root / "dist"

    def relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


def tool(name: str) -> str:
    """A developer tool (ruff, mypy): next to this interpreter first, then on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise ToolMissingError(
            f"{name} is not installed",
            hint="install buildkit's dev tools: pip install -e '.[dev]' (nox sessions do this)",
        )
    return found
