"""Options of one run: the project's config overlaid with BUILDKIT_* and the command line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from buildkit.config import CLAUDE_TARGET, DEFAULT_BASE_IMAGE, Project
from buildkit.errors import UsageError
from buildkit.model import BUILD_ALL_STAGES
from buildkit.schema import PLATFORM, PLATFORM_HINT, suggest

# How every yes/no BUILDKIT_* variable is read (tests/helpers.py reads the same words).
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")

# Every BUILDKIT_* variable buildkit reads; anything else with the prefix is a typo.
ENV_VARS = {
    "BUILDKIT_REGISTRY": "registry prefix (like -r)",
    "BUILDKIT_TAG": "image tag (like -t)",
    "BUILDKIT_OFFLINE": "1 to install only from caches (no package index)",
    "BUILDKIT_BASE_IMAGE": "base image of every service image (build arg BASE_IMAGE)",
    "BUILDKIT_REGISTRY_USERNAME": "registry user for --push",
    "BUILDKIT_REGISTRY_PASSWORD": "registry password or token for --push",
    "BUILDKIT_REQUIRE_ALL": "1 makes tests fail instead of skip when a prerequisite is missing",
    "BUILDKIT_SIGN_KEY": "cosign private key for --sign: a file or env://VAR (like --sign-key)",
}


@dataclass(frozen=True)
class Options:
    tag: str
    registry: str
    report: Path
    base_image: str = DEFAULT_BASE_IMAGE
    push: bool = False
    debug: bool = False
    no_docker: bool = False
    skip_tests: bool = False
    claude_image: bool = False
    no_cache: bool = False
    keep_going: bool = False
    fix: bool = False
    offline: bool = False
    services: tuple[str, ...] = ()
    stages: tuple[str, ...] = BUILD_ALL_STAGES
    platforms: tuple[str, ...] = ()  # empty: the engine's own platform
    image_backend: str = "engine"  # resolved: buildx or engine
    builder: str = ""
    jobs: int = 1
    sign_key: str = ""  # --sign: the cosign key (a file or env://VAR); "" signs nothing

    @property
    def builds_images(self) -> bool:
        """Images are planned (every command with a push stage has an image stage too)."""
        return "image" in self.stages and not self.no_docker

    def to_json(self) -> dict[str, object]:
        return {
            "tag": self.tag,
            "registry": self.registry,
            "base_image": self.base_image,
            "push": self.push,
            "debug": self.debug,
            "no_docker": self.no_docker,
            "skip_tests": self.skip_tests,
            "claude_image": self.claude_image,
            "no_cache": self.no_cache,
            "keep_going": self.keep_going,
            "offline": self.offline,
            "services": list(self.services),
            "stages": list(self.stages),
            "platforms": list(self.platforms),
            "image_backend": self.image_backend,
            "builder": self.builder,
            "jobs": self.jobs,
            "sign": bool(self.sign_key),
        }


def service_targets(project: Project, options: Options) -> tuple[str, ...]:
    """The services a run is about: the selected ones, or every one when none is."""
    return options.services or project.service_names


def image_targets(project: Project, options: Options) -> tuple[str, ...]:
    """Every image a run builds and pushes: its services', and with --claude-image the
    claude-code image's. The plan's image steps and the buildx bake both come from here."""
    claude = (CLAUDE_TARGET,) if options.claude_image and project.claude is not None else ()
    return (*service_targets(project, options), *claude)


def env_flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    raise UsageError(f"{name}={env[name]!r} is not a yes/no value; use 1 or 0")


def unknown_env_vars(env: Mapping[str, str]) -> list[str]:
    """Warnings for BUILDKIT_* variables that buildkit does not read (likely typos)."""
    return [
        f"{name} is not a buildkit setting and is ignored{suggest(name, list(ENV_VARS))}"
        for name in sorted(env)
        if name.startswith("BUILDKIT_") and name not in ENV_VARS
    ]


def select_services(project: Project, raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return project.service_names
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    if not names:
        raise UsageError("--services is empty", hint=f"e.g. --services {project.service_names[0]}")
    for name in names:
        if name not in project.service_names:
            raise UsageError(
                f"--services: unknown service {name!r}{suggest(name, project.service_names)}",
                hint=f"choose from {', '.join(project.service_names)}",
            )
    return tuple(dict.fromkeys(names))


def parse_platforms(raw: str) -> tuple[str, ...]:
    """`linux/amd64,linux/arm64` -> a tuple; an unknown platform names the valid form."""
    platforms = tuple(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))
    if raw and not platforms:
        raise UsageError(f"--platform {raw!r} names no platform", hint=PLATFORM_HINT)
    for platform in platforms:
        if not PLATFORM.match(platform):
            raise UsageError(
                f"--platform: {platform!r} is not a supported platform", hint=PLATFORM_HINT
            )
    return platforms


def choose(
    given: str | None,
    flag: str,
    *,
    env: Mapping[str, str],
    variable: str,
    configured: str,
    key: str,
) -> tuple[str, str]:
    """The value and where it came from: the option, else the variable, else the project."""
    if given is not None:
        if not given.strip():
            raise UsageError(
                f"{flag} is empty",
                hint=f"give a value, or leave {flag} out to use {variable} or "
                f"[tool.buildkit] {key}",
            )
        return given, flag
    if env.get(variable, "").strip():
        return env[variable].strip(), variable
    return configured, f"[tool.buildkit] {key}"


def check_report_path(path: Path) -> None:
    """Fail before the build, not after it, when the report cannot be written there."""
    if path.is_dir():
        raise UsageError(
            f"--report {path}: is a directory", hint="give a file path, e.g. build/report.json"
        )
    existing = next((parent for parent in path.parents if parent.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(
            f"--report {path}: {existing} is not a writable directory",
            hint="give a path in a directory you can write, e.g. build/report.json",
        )


def default_report(project: Project) -> Path:
    return project.root / "build" / "report.json"


def environment() -> Mapping[str, str]:
    return os.environ
