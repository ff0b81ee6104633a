"""What every step is handed: the project, the options, git facts, the environment and
its seams (subprocesses, the engine, registries). Stages read the environment from here,
never from os.environ, and make registry clients with `registry`, so a test can hand
them any environment and an httpx MockTransport."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from buildkit.config import Project, Service
from buildkit.deps.envs import Envs
from buildkit.engine.client import START_HINT, Engine
from buildkit.errors import DockerError, StageFailed, ToolMissingError
from buildkit.gitinfo import GitInfo
from buildkit.model import Artifact, Outcome, Result, Step
from buildkit.options import TRUE_WORDS, Options
from buildkit.proc import Runner
from buildkit.registry.client import RegistryClient, RegistryFactory
from buildkit.registry.credentials import Credentials, resolve

StageRunner = Callable[[Step, "Context"], Outcome]


@dataclass(frozen=True)
class Context:
    project: Project
    options: Options
    git: GitInfo
    envs: Envs
    runner: Runner
    engine: Engine | None = None
    needs: Mapping[str, Result] = field(default_factory=dict)
    step_key: str = ""  # the hash of the running step's inputs ("" when not cached)
    env: Mapping[str, str] = field(default_factory=dict)  # the run's environment
    registry: RegistryFactory = RegistryClient  # registry clients: domain, credentials

    def target(self, step: Step) -> Service:
        """The service a step is about (or the claude-code image seen as one)."""
        return self.project.target(step.target)

    def credentials(self, domain: str) -> Credentials | None:
        """BUILDKIT_REGISTRY_* of this run's environment, else `docker login`'s."""
        return resolve(domain, self.env)

    @property
    def root(self) -> Path:
        return self.project.root

    @property
    def build_dir(self) -> Path:
        return self.project.root / "build"

    @property
    def dist_dir(self) -> Path:
        return self.project.root / "dist"

    @property
    def require_all(self) -> bool:
        return self.env.get("BUILDKIT_REQUIRE_ALL", "").strip().lower() in TRUE_WORDS

    def version_of(self, service: Service) -> str:
        """The service's version: the project's, `.dirty` only when its own files changed."""
        return self.git.version_for(service.path)

    def siblings(self, service: Service) -> tuple[Service, ...]:
        """The services of this repository that `service` requires, dependencies first."""
        return tuple(self.project.service(name) for name in self.project.siblings_of(service.name))

    def service_env(self, service: Service) -> Path:
        """The service's development environment, its siblings installed editable."""
        return self.envs.service_env(service, self.runner, self.siblings(service))

    def require_engine(self) -> Engine:
        if self.engine is None:
            raise DockerError("this stage needs a Docker engine", hint=START_HINT)
        return self.engine

    def artifact_of(self, step_id: str, kind: str) -> Artifact:
        """An artifact a needed step produced (the wheel for an image, the image for a push)."""
        result = self.needs.get(step_id)
        found = [a for a in result.artifacts if a.kind == kind] if result else []
        if not found:
            raise StageFailed(f"{step_id} produced no {kind}; it must run first")
        return found[0]

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
