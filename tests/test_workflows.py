"""The workflows GitHub runs (.github/workflows/): every action pinned to a full commit SHA
with its version beside it, permissions granted per job and read-only by default, no
expression expanded inside a script, and every command they run documented in the
README's section on them — with each nox session and buildkit option it names real."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from buildkit.args import build_parser, subcommand_parser
from tests.helpers import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI_SECTION = README[
    README.index("## Continuous integration and releases") : README.index("## Configuration:")
]
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")
COMMAND = re.compile(r"(?:sudo )?(?:nox|python -m buildkit|python -m pip|bash) [^)\n#]*")
WRITE_SCOPES = {"release.yml": {"packages", "id-token"}}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def steps(path: Path) -> list[dict[str, Any]]:
    return [step for job in load(path)["jobs"].values() for step in job.get("steps", [])]


def commands(path: Path) -> list[str]:
    """Each command a workflow's `run:` scripts start, whitespace collapsed."""
    found = []
    for step in steps(path):
        for line in str(step.get("run", "")).splitlines():
            found += [" ".join(m.group(0).split()) for m in COMMAND.finditer(line)]
    return found


def test_the_ci_and_release_workflows_exist_and_the_old_copy_is_gone() -> None:
    assert {path.name for path in WORKFLOWS} == {"ci.yml", "release.yml"}
    assert not (ROOT / "ci" / "github").exists()


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version(path: Path) -> None:
    lines = [line.strip() for line in path.read_text().splitlines()]
    uses = [line.split("uses:", 1)[1].strip() for line in lines if "uses:" in line]
    assert uses, "no action used at all?"
    unpinned = [use for use in uses if not PINNED.match(use)]
    assert unpinned == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_empty_by_default_and_granted_per_job(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {}
    allowed = WRITE_SCOPES.get(path.name, set())
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"job {name} has no permissions of its own"
        writes = {scope for scope, level in job["permissions"].items() if level == "write"}
        assert writes <= allowed, f"job {name} may write {writes - allowed}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_is_expanded_inside_a_script(path: Path) -> None:
    scripts = [str(step["run"]) for step in steps(path) if "run" in step]
    assert scripts
    assert [script for script in scripts if "${{" in script] == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_checkout_keeps_no_credentials(path: Path) -> None:
    for step in steps(path):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_every_command_the_workflows_run_is_in_the_readme() -> None:
    run = [command for path in WORKFLOWS for command in commands(path)]
    assert any(command.startswith("nox -s tests") for command in run)
    missing = [command for command in run if command not in CI_SECTION]
    assert missing == []


def test_the_sessions_and_options_the_workflows_use_exist() -> None:
    sessions = set(re.findall(r"^def (\w+)\(session", (ROOT / "noxfile.py").read_text(), re.M))
    sessions |= {"orchestrator", "toolman", "mcp_wrapper"}  # made by service_session()
    options = {
        option
        for action in subcommand_parser(build_parser(), "build-all")._actions
        for option in action.option_strings
    }
    for command in (c for path in WORKFLOWS for c in commands(path)):
        words = command.split()
        if words[0] == "nox":
            named = words[2 : words.index("--")] if "--" in words else words[2:]
            assert {name for name in named if "$" not in name} <= sessions, command
        after = "--" if words[0] == "nox" else "build-all"
        if after in words and ("build-all" in words or "build_all" in words):
            rest = words[words.index(after) + 1 :]
            assert {word for word in rest if word.startswith("-")} <= options, command
