"""What buildkit builds: `[tool.buildkit]` in pyproject.toml, as frozen dataclasses.

Precedence, lowest first: built-in defaults, `[tool.buildkit]`, `BUILDKIT_*`
environment variables, command-line options (applied in `options.py`).
Unknown keys are errors with a "did you mean" so a typo never silently does nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildkit import tomlcompat
from buildkit.deps.image_root import check_user_dir
from buildkit.errors import ConfigError
from buildkit.schema import (
    CLAUDE_KEYS,
    IMAGE_TAG_KEYS,
    MAX_TEST_WORKERS,
    PROJECT_KEYS,
    SERVICE_KEYS,
    check_requires,
    check_table,
    parse_backend,
    parse_platform_list,
    suggest,
)
from buildkit.tags import TagRules

DEFAULT_REGISTRY = "ghcr.io/5dlabs/platform"
DEFAULT_TAG = "latest"
DEFAULT_BASE_IMAGE = "python:3.11-slim"
DEFAULT_SMOKE_TIMEOUT = 60
CLAUDE_TARGET = "claude-code"
DEFAULT_PUSH_PLATFORMS = ("linux/amd64", "linux/arm64")
SERVICE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Service:
    name: str
    path: Path
    package: str
    distribution: str
    script: str
    image: str
    dockerfile: Path
    description: str = ""
    port: int | None = None
    health_path: str = "/health"
    test_workers: int = 1  # > 1: pytest-xdist processes for the suite (`pytest -n`)
    wheel_of: str = ""  # the service whose wheel this image installs ("" = its own)
    # Other services of this repository it depends on: always installed from here (editable
    # in its environment, their wheel files in its wheel check and image), never from an
    # index, where an unrelated project may own the same name.
    requires: tuple[str, ...] = ()
    # Directories the image's user owns (below /, no leading slash here): made empty in the
    # build context's user-owned.tar, with the commit's time (buildkit.deps.image_root).
    user_dirs: tuple[str, ...] = ()

    @property
    def wheel_owner(self) -> str:
        return self.wheel_of or self.name

    @property
    def src_package_dir(self) -> Path:
        return self.path / "src" / self.package

    @property
    def tests_dir(self) -> Path:
        return self.path / "tests"


@dataclass(frozen=True)
class ClaudeImage:
    """The optional claude-code image: Claude Code (from npm) with a service's wheel."""

    image: str
    dockerfile: Path
    service: str
    npm_package: str
    version: str
    port: int = 8080
    description: str = ""
    user_dirs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Project:
    root: Path
    registry: str
    tag: str
    source_url: str
    licenses: str
    services: tuple[Service, ...]
    url: str = ""
    base_image: str = DEFAULT_BASE_IMAGE
    tag_rules: TagRules = field(default_factory=TagRules)
    smoke_timeout: int = DEFAULT_SMOKE_TIMEOUT
    push_platforms: tuple[str, ...] = DEFAULT_PUSH_PLATFORMS
    image_backend: str = "auto"
    builder: str = ""
    buildx_cache: bool = False
    claude: ClaudeImage | None = None

    def target(self, name: str) -> Service:
        """A service, or the claude-code image seen as one (built from its service's wheel)."""
        if self.claude is not None and name == CLAUDE_TARGET:
            owner = self.service(self.claude.service)
            return Service(
                name=CLAUDE_TARGET,
                path=owner.path,
                package=owner.package,
                distribution=owner.distribution,
                script="claude-agent",
                image=self.claude.image,
                dockerfile=self.claude.dockerfile,
                description=self.claude.description,
                port=self.claude.port,
                wheel_of=owner.name,
                requires=owner.requires,
                user_dirs=self.claude.user_dirs,
            )
        return self.service(name)

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise ConfigError(
            f"unknown service {name!r}",
            hint=f"choose from {', '.join(self.service_names)}{suggest(name, self.service_names)}",
        )

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(service.name for service in self.services)

    def siblings_of(self, name: str) -> tuple[str, ...]:
        """The services `name` requires, directly or through another, dependencies first."""
        order: list[str] = []

        def visit(current: str) -> None:
            for required in self.target(current).requires:
                if required not in order:
                    visit(required)
                    order.append(required)

        visit(name)
        return tuple(order)

    def dependents_of(self, name: str) -> tuple[str, ...]:
        """The services that require `name`, directly or through another."""
        return tuple(s.name for s in self.services if name in self.siblings_of(s.name))


def find_project_root(start: Path) -> Path:
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file() and "[tool.buildkit" in candidate.read_text(encoding="utf-8"):
            return directory
    raise ConfigError(
        f"no pyproject.toml with a [tool.buildkit] table in {start} or its parents",
        hint="run buildkit from inside the project (where noxfile.py lives)",
    )


def load_project(root: Path) -> Project:
    pyproject = root / "pyproject.toml"
    try:
        with pyproject.open("rb") as handle:
            data = tomlcompat.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{pyproject} does not exist") from None
    except tomlcompat.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject} is not valid TOML: {exc}") from exc
    table = data.get("tool", {}).get("buildkit")
    if not isinstance(table, dict):
        raise ConfigError(f"{pyproject} has no [tool.buildkit] table")
    return parse_project(root, table)


def parse_project(root: Path, table: Mapping[str, Any]) -> Project:
    check_table(table, PROJECT_KEYS, "tool.buildkit")
    services_table: Mapping[str, Any] = table["services"]
    if not services_table:
        raise ConfigError("tool.buildkit.services is empty", hint="declare at least one service")
    services = tuple(parse_service(root, name, spec) for name, spec in services_table.items())
    check_requires({service.name: service.requires for service in services})
    image_tags: Mapping[str, Any] = table.get("image_tags", {})
    check_table(image_tags, IMAGE_TAG_KEYS, "tool.buildkit.image_tags")
    smoke_timeout = table.get("smoke_timeout", DEFAULT_SMOKE_TIMEOUT)
    if not 0 < smoke_timeout <= 3600:
        raise ConfigError(f"tool.buildkit.smoke_timeout = {smoke_timeout} must be 1-3600 seconds")
    return Project(
        root=root,
        registry=table.get("registry", DEFAULT_REGISTRY),
        tag=table.get("tag", DEFAULT_TAG),
        source_url=table.get("source_url", ""),
        licenses=table.get("licenses", ""),
        services=services,
        url=table.get("url", table.get("source_url", "")),
        base_image=table.get("base_image", DEFAULT_BASE_IMAGE),
        tag_rules=TagRules(
            semver=image_tags.get("semver", False), sha=image_tags.get("sha", False)
        ),
        smoke_timeout=smoke_timeout,
        push_platforms=parse_platform_list(table.get("push_platforms", DEFAULT_PUSH_PLATFORMS)),
        image_backend=parse_backend(
            table.get("image_backend", "auto"), "tool.buildkit.image_backend"
        ),
        builder=table.get("builder", ""),
        buildx_cache=table.get("buildx_cache", False),
        claude=parse_claude(root, table.get("claude_image"), services),
    )


def config_table(target: str) -> str:
    """Where a target's settings are in pyproject.toml, as error messages name it."""
    if target == CLAUDE_TARGET:
        return "tool.buildkit.claude_image"
    return f"tool.buildkit.services.{target}"


def parse_claude(
    root: Path, table: Mapping[str, Any] | None, services: tuple[Service, ...]
) -> ClaudeImage | None:
    if table is None:
        return None
    where = config_table(CLAUDE_TARGET)
    check_table(table, CLAUDE_KEYS, where)
    names = tuple(service.name for service in services)
    if table["service"] not in names:
        raise ConfigError(
            f"{where}.service = {table['service']!r} is not a service"
            f"{suggest(table['service'], names)}"
        )
    return ClaudeImage(
        image=table["image"],
        dockerfile=root / table["dockerfile"],
        service=table["service"],
        npm_package=table["npm_package"],
        version=table["version"],
        port=table.get("port", 8080),
        description=table.get("description", ""),
        user_dirs=parse_user_dirs(table, where),
    )


def parse_service(root: Path, name: str, spec: object) -> Service:
    where = config_table(name)
    if not SERVICE_NAME.match(name):
        raise ConfigError(f"service name {name!r} must match {SERVICE_NAME.pattern}")
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a table")
    check_table(spec, SERVICE_KEYS, where)
    path = root / spec["path"]
    if not (path / "pyproject.toml").is_file():
        raise ConfigError(f"{where}.path = {spec['path']!r} has no pyproject.toml")
    port = spec.get("port")
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"{where}.port = {port} is out of range 1-65535")
    requires = spec.get("requires", [])
    if not all(isinstance(item, str) for item in requires):
        raise ConfigError(
            f"{where}.requires must be a list of service names, got {requires!r}",
            hint='e.g. requires = ["toolman"]',
        )
    workers = spec.get("test_workers", 1)
    if not 1 <= workers <= MAX_TEST_WORKERS:
        raise ConfigError(
            f"{where}.test_workers = {workers} is out of range 1-{MAX_TEST_WORKERS}",
            hint="1 runs the suite in one process; more need pytest-xdist in its test extras",
        )
    return Service(
        name=name,
        path=path,
        package=spec["package"],
        distribution=spec["distribution"],
        script=spec["script"],
        image=spec["image"],
        dockerfile=root / spec["dockerfile"],
        description=spec.get("description", ""),
        port=port,
        health_path=spec.get("health_path", "/health"),
        test_workers=workers,
        requires=tuple(dict.fromkeys(requires)),
        user_dirs=parse_user_dirs(spec, where),
    )


def parse_user_dirs(table: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """`user_dirs`: absolute paths, each a directory the image's user is to own."""
    values = table.get("user_dirs", [])
    if not all(isinstance(value, str) for value in values):
        raise ConfigError(
            f"{where}.user_dirs must be a list of absolute paths, got {values!r}",
            hint='e.g. user_dirs = ["/var/lib/orchestrator"]',
        )
    return tuple(dict.fromkeys(check_user_dir(v, f"{where}.user_dirs") for v in values))
