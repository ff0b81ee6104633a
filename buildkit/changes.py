"""Which services a set of changed files touches (for --changed-since and CI matrices).

A service is touched by a change under its own directory, to its Dockerfile or to its
lock file (locks/<service>.txt: the versions its image installs), or by a change that
touches a sibling service it requires (`requires`). A change
to what builds every service — the root pyproject.toml, the noxfile, buildkit itself,
the shared .dockerignore — touches all of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from buildkit.checks.locks import lock_path
from buildkit.config import Project, Service

SHARED_INPUTS = ("pyproject.toml", "noxfile.py", "buildkit/", "dockerfiles/.dockerignore")


def relative_to(path: Path, workdir: Path) -> str:
    try:
        return path.resolve().relative_to(workdir).as_posix()
    except ValueError:
        return path.as_posix()


def under(name: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/")
    return name == prefix or name.startswith(prefix + "/")


def touched_services(project: Project, workdir: Path, changed: Sequence[str]) -> tuple[str, ...]:
    shared = [relative_to(project.root / item, workdir) for item in SHARED_INPUTS]
    if any(under(name, prefix) for name in changed for prefix in shared):
        return project.service_names
    direct = {
        service.name
        for service in project.services
        if any(
            under(name, prefix)
            for name in changed
            for prefix in inputs_of(project, service, workdir)
        )
    }
    touched = direct | {other for name in direct for other in project.dependents_of(name)}
    return tuple(name for name in project.service_names if name in touched)


def inputs_of(project: Project, service: Service, workdir: Path) -> list[str]:
    paths = (service.path, service.dockerfile, lock_path(project.root, service.name))
    return [relative_to(path, workdir) for path in paths]


def github_matrix(project: Project, names: Sequence[str]) -> str:
    """A GitHub Actions matrix: `strategy.matrix: ${{ fromJson(...) }}`."""
    include = [
        {"service": name, "image": project.service(name).image, "session": name} for name in names
    ]
    return json.dumps({"include": include}, separators=(",", ":"))
