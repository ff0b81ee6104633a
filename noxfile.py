"""Sessions of the platform's build. `nox -l` lists them; options after `--` go to buildkit.

nox -s build_all -- --tag v1.0.0 --push     everything, like build-all.sh
nox -s toolman -- --tag v1.0.0              one service's stages only
nox -s tests                                the test suite (what CI runs)
"""

from __future__ import annotations

import hashlib
import platform
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT))  # buildkit.args is stdlib-only: usable before any install
from buildkit.args import parse  # noqa: E402
from buildkit.checks import commands  # noqa: E402

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "fmt", "tests"]
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
SERVICES = ("orchestrator", "toolman", "mcp_wrapper")
NATIVE_PLATFORM = "linux/arm64" if platform.machine() in ("aarch64", "arm64") else "linux/amd64"
CHECKED = commands.CHECKED


def install_buildkit(session: nox.Session, extras: str = "dev") -> None:
    """Install buildkit into the session, skipped when nothing it depends on changed."""
    stamp_source = (ROOT / "pyproject.toml").read_bytes() + extras.encode()
    stamp = hashlib.sha256(stamp_source).hexdigest()
    location = getattr(session.virtualenv, "location", None)
    marker = Path(location) / ".buildkit-installed" if location else None
    if marker is not None and marker.is_file() and marker.read_text() == stamp:
        return
    session.install("-e", f".[{extras}]")
    if marker is not None:
        marker.write_text(stamp)


def check_args(command: str, args: list[str]) -> None:
    """Reject bad options before installing anything: usage on stderr, exit 2."""
    parse([command, *args])


def buildkit(session: nox.Session, *args: str) -> None:
    session.run("python", "-m", "buildkit", *args, external=False)


@nox.session(python=PYTHON)
def build_all(session: nox.Session) -> None:
    """Test, lint, fmt, wheel, image and push every service (build-all.sh's options)."""
    check_args("build-all", session.posargs)
    install_buildkit(session)
    buildkit(session, "build-all", *session.posargs)


def service_session(name: str) -> None:
    def run(session: nox.Session) -> None:
        if any(arg == "--services" or arg.startswith("--services=") for arg in session.posargs):
            session.error(f"the {name} session builds {name} only; use build_all for --services")
        check_args("build-all", session.posargs)
        install_buildkit(session)
        buildkit(session, "build-all", "--services", name, *session.posargs)

    run.__doc__ = f"All stages for {name} only (takes build_all's options)."
    nox.session(name=name, python=PYTHON)(run)


for _service in SERVICES:
    service_session(_service)


def fetch_claude_code(session: nox.Session, report: str) -> None:
    """Claude Code for the claude-code image, for this machine's platform only."""
    buildkit(session, "wheelhouse", "--claude-image", "--services", "mcp_wrapper",
             "--platform", NATIVE_PLATFORM, "--report", report)  # fmt: skip


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Services' tests, wheels, then buildkit's and the end-to-end tests (args go to pytest)."""
    install_buildkit(session, "dev,e2e")
    buildkit(session, "test", "--keep-going", "--report", "build/report-tests.json")
    # Wheels, proven installable, plus every image dependency for both platforms: after
    # this, nothing the tests do contacts a package index.
    buildkit(session, "wheelhouse", "--report", "build/report-wheelhouse.json")
    fetch_claude_code(session, "build/report-claude-code.json")
    session.run("pytest", *session.posargs, env={"BUILDKIT_OFFLINE": "1"})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and mypy --strict on buildkit, tests and noxfile; actionlint and zizmor on
    the workflows, shellcheck on the scripts, hadolint on the Dockerfiles; then ruff and
    mypy on each service (args go to `buildkit lint`, e.g. --services toolman)."""
    check_args("lint", session.posargs)
    install_buildkit(session, "dev,e2e")
    session.run("ruff", "check", *CHECKED)
    session.run("mypy", *CHECKED)
    for argv in commands.non_python_lint(ROOT):
        session.run(*argv)
    buildkit(
        session, "lint", "--keep-going", "--report", "build/report-lint.json", *session.posargs
    )


@nox.session(python=PYTHON)
def fmt(session: nox.Session) -> None:
    """ruff format --check everywhere; `nox -s fmt -- --fix` rewrites instead."""
    check_args("fmt", session.posargs)
    install_buildkit(session)
    fix = "--fix" in session.posargs
    session.run("ruff", "format", *([] if fix else ["--check"]), *CHECKED)
    buildkit(session, "fmt", "--keep-going", "--report", "build/report-fmt.json", *session.posargs)


@nox.session(python=PYTHON, default=False)
def ci(session: nox.Session) -> None:
    """Every check of a release candidate, like ci-checks.sh: format, lint (Python,
    workflows, scripts, Dockerfiles), wheels, tests, lock files, pip-audit of each
    service's lock file, the TODO/FIXME count; one table, one exit code (args go to pytest).
    Needs PyPI for pip-audit's vulnerability data and the lock files' resolution."""
    install_buildkit(session, "dev,e2e")
    session.install("pip-audit==2.10.1")
    session.run("python", "-m", "buildkit.checks", *session.posargs)


@nox.session(python=PYTHON, default=False)
def lock(session: nox.Session) -> None:
    """Rewrite locks/<service>.txt (uv pip compile, universal, Python 3.11; needs PyPI):
    what `nox -s ci` names when a lock file is out of date."""
    install_buildkit(session)
    session.run("python", "-m", "buildkit.checks.locks")


@nox.session(python=PYTHON, default=False)
def verify(session: nox.Session) -> None:
    """Check a pushed image: `nox -s verify -- REF --key cosign.pub` (signature, SBOM and
    provenance attestations of that digest; needs cosign on PATH)."""
    check_args("verify", session.posargs)
    install_buildkit(session)
    buildkit(session, "verify", *session.posargs)


@nox.session(python=PYTHON)
def wheels(session: nox.Session) -> None:
    """sdist + wheel per service into dist/, each proven to install and answer --version."""
    check_args("wheel", session.posargs)
    install_buildkit(session)
    buildkit(session, "wheel", *session.posargs)


BENCHES = ("build", "release", "toolman", "wrapper", "orchestrator")


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks, never part of the tests: `-- build`, `-- release`, `-- toolman`,
    `-- wrapper`, `-- orchestrator` (all)."""
    chosen = session.posargs or list(BENCHES)
    unknown = sorted(set(chosen) - set(BENCHES))
    if unknown:
        session.error(f"unknown bench {unknown}; choose from {', '.join(BENCHES)}")
    install_buildkit(session, "dev,e2e")
    Path("build/bench").mkdir(parents=True, exist_ok=True)
    if "build" in chosen:
        # Needs a Docker engine; dependencies come from build/wheelhouse (no network).
        buildkit(session, "wheelhouse", "--report", "build/bench/wheelhouse.json")
        session.run("python", "bench/build_bench.py", "--json", "build/bench/build.json")
    if "release" in chosen:
        # Both backends on the containerd-store engine (ci/engines.sh), offline.
        buildkit(session, "wheelhouse", "--report", "build/bench/wheelhouse.json")
        session.run("python", "bench/release_bench.py", "--json", "build/bench/release.json")
    if "toolman" in chosen or "wrapper" in chosen:
        # The services' environments and installed wheels the benches run from.
        buildkit(session, "wheel", "--report", "build/bench/wheels.json")
        buildkit(session, "test", "--services", "toolman", "--report", "build/bench/env.json")
    if "toolman" in chosen:
        session.run(
            "build/envs/toolman/bin/python",
            "bench/toolman_bench.py",
            "--json",
            "build/bench/toolman.json",
            external=True,
        )
    if "wrapper" in chosen:
        session.run("python", "bench/wrapper_bench.py", "--json", "build/bench/wrapper.json")
    if "orchestrator" in chosen:
        # Needs a Docker engine; the images are built from build/wheelhouse (no network).
        buildkit(session, "wheelhouse", "--report", "build/bench/wheelhouse.json")
        fetch_claude_code(session, "build/bench/claude-code.json")
        session.run(
            "python", "bench/orchestrator_bench.py", "--json", "build/bench/orchestrator.json"
        )
