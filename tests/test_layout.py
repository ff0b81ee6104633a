"""The package's shape: subpackages by seam, and no import circle between its modules.

The import graph is read from the source (every `import buildkit...` and `from buildkit...
import`, including those inside functions, which is where a circle likes to hide), so
the check is exact and needs no import machinery; each module is also imported alone in a
fresh interpreter, as a user's `python -m` or a test would."""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "buildkit"
SEAMS = {
    "cache": {"keys", "store"},
    "engine": {"client", "build", "smoke", "buildx"},
    "registry": {"client", "reference", "credentials", "manifests", "blobs", "oci_export"},
    "deps": {"envs", "wheelhouse", "claude_code"},
    "stages/image": {"inputs", "artifacts", "backend", "engine", "buildx"},
    "checks": {"commands", "plan", "audit", "run"},
    "supplychain": {
        "cosign",
        "statements",
        "sbom",
        "image_contents",
        "publish",
        "signing",
        "verify",
    },
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The buildkit modules `path` imports (a name imported from a package that is itself
    a module counts as that module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in known}


def test_the_layout_shows_the_seams() -> None:
    for package, members in SEAMS.items():
        present = {path.stem for path in (PACKAGE / package).glob("*.py")} - {"__init__"}
        assert members <= present, f"buildkit/{package} lacks {members - present}"
    flat = {path.stem for path in PACKAGE.glob("*.py")}
    moved = {"docker_engine", "engine_build", "registry", "blobs", "keys", "cache", "envs"}
    assert not flat & moved, f"still at the top level: {flat & moved}"


def test_no_module_imports_itself_through_others() -> None:
    known = modules()
    graph = {name: imports_of(path, set(known)) - {name} for name, path in known.items()}
    # A package imports its parent package implicitly; that is not a circle of ours.
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise AssertionError(f"import circle: {' -> '.join(exc.args[1])}") from None


def test_every_module_imports_on_its_own() -> None:
    names = [name for name in modules() if not name.endswith("__main__")]
    script = (
        "import importlib, subprocess, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    done = subprocess.run([sys.executable, '-c', f'import {name}'],"
        " capture_output=True, text=True)\n"
        "    if done.returncode: failed.append(f'{name}: {done.stderr.strip()[-300:]}')\n"
        "print('\\n'.join(failed))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *names],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
