"""`nox -s ci` (buildkit/checks): every check runs whatever the others did, one table at the
end names each with its outcome, and the exit code is 0 only if none failed. pip-audit's
verdict: a vulnerability with a fix fails the run unless accepted with a reason.

pip-audit itself asks PyPI, which tests may not reach: its JSON report (the format
pip-audit 2.x writes with `-f json`) is written here, by a stand-in on PATH that reads the
lock file it is given, and the verdict read from it."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from buildkit.checks import audit, locks
from buildkit.checks.plan import Check, Outcome, audit_check, commands_check, plan, todo_check
from buildkit.checks.run import Row, exit_code, run_checks, table
from buildkit.config import load_project
from buildkit.errors import ConfigError
from buildkit.proc import Runner
from tests.helpers import ROOT, init_repo


def pip_audit_report(*vulns: tuple[str, str, list[str]]) -> str:
    """pip-audit's JSON: one package `jinja2 3.1.2` with the given (id, alias, fixes)."""
    found = [
        {"id": vid, "aliases": [alias], "fix_versions": fixes, "description": "..."}
        for vid, alias, fixes in vulns
    ]
    dependencies = [
        {"name": "jinja2", "version": "3.1.2", "vulns": found},
        {"name": "anyio", "version": "4.16.0", "vulns": []},
    ]
    return json.dumps({"dependencies": dependencies, "fixes": []})


def test_a_vulnerability_with_a_fix_fails_the_audit() -> None:
    verdict = audit.judge(
        pip_audit_report(("GHSA-h5c8-rqwp-cp95", "CVE-2024-22195", ["3.1.3"])), ()
    )
    assert not verdict.ok
    assert "jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (fixed in 3.1.3)" in verdict.summary()


def test_a_vulnerability_without_a_fix_is_reported_but_passes() -> None:
    verdict = audit.judge(pip_audit_report(("PYSEC-2099-1", "CVE-2099-1", [])), ())
    assert verdict.ok
    assert "1 accepted: jinja2 3.1.2: PYSEC-2099-1 (no fix yet)" in verdict.summary()


def test_an_accepted_finding_passes_by_id_or_alias(tmp_path: Path) -> None:
    listed = tmp_path / "audit-ignore.toml"
    listed.write_text('[[ignore]]\nid = "CVE-2024-22195"\nreason = "templates are ours"\n')
    report = pip_audit_report(("GHSA-h5c8-rqwp-cp95", "CVE-2024-22195", ["3.1.3"]))
    assert audit.judge(report, audit.read_ignored(listed)).ok


def test_an_ignore_entry_without_a_reason_is_refused(tmp_path: Path) -> None:
    listed = tmp_path / "audit-ignore.toml"
    listed.write_text('[[ignore]]\nid = "GHSA-h5c8-rqwp-cp95"\nreason = " "\n')
    with pytest.raises(ConfigError, match="GHSA-h5c8-rqwp-cp95 is ignored without a reason") as e:
        audit.read_ignored(listed)
    assert e.value.hint is not None
    assert "reason =" in e.value.hint


def documented_example(text: str) -> str:
    """The `[[ignore]]` entry the ignore file's header shows, uncommented."""
    return "".join(line[4:] + "\n" for line in text.splitlines() if line.startswith("#   "))


def test_the_repositorys_ignore_list_and_the_entry_it_documents_are_valid() -> None:
    text = (ROOT / audit.IGNORE_FILE).read_text()
    listed = audit.read_ignored(ROOT / audit.IGNORE_FILE)  # raises on any bad entry
    example = audit.parse_ignored(text + documented_example(text), "with the example")
    assert len(example) == len(listed) + 1
    assert example[-1].id == "GHSA-xxxx-xxxx-xxxx"
    assert example[-1].reason.startswith("only the CLI")


@pytest.mark.parametrize(
    ("entry", "refusal"),
    [
        ('id = "GHSA-h5c8-rqwp-cp95"\nreason = " "', "GHSA-h5c8-rqwp-cp95 is ignored without"),
        ('id = "GHSA-h5c8-rqwp-cp95"\nreasn = "typo"', "unknown key 'reasn'"),
        ('id = "jinja2"\nreason = "a package is no advisory"', "no advisory id (got 'jinja2')"),
        ('reason = "no id"', "no advisory id (got None)"),
    ],
)
def test_a_bad_entry_added_to_the_repositorys_ignore_list_is_refused(
    entry: str, refusal: str
) -> None:
    text = (ROOT / audit.IGNORE_FILE).read_text()
    with pytest.raises(ConfigError, match=re.escape(refusal)):
        audit.parse_ignored(f"{text}\n[[ignore]]\n{entry}\n", "ci/audit-ignore.toml")


def test_an_advisory_listed_twice_is_refused() -> None:
    entry = '[[ignore]]\nid = "CVE-2024-22195"\nreason = "templates are ours"\n'
    with pytest.raises(ConfigError, match="CVE-2024-22195 is listed twice"):
        audit.parse_ignored(entry + entry, "ci/audit-ignore.toml")


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def render(rows: Sequence[Row]) -> str:
    out = io.StringIO()
    Console(width=200, file=out).print(table(rows))
    return out.getvalue()


def test_every_check_runs_and_the_table_names_each_outcome() -> None:
    def missing_tool(runner: Runner) -> Outcome:
        runner.call(["no-such-linter-here", "--check"])
        return Outcome(True, "unreachable")

    checks = [
        commands_check("passes", [python("pass")]),
        commands_check("fails", [python("raise SystemExit(3)"), python("pass")]),
        Check("tool missing", missing_tool),
        Check("a count", lambda _runner: Outcome(True, "7 TODO", informational=True)),
        commands_check("after the failures", [python("pass")]),
    ]
    rows = run_checks(checks, Runner())
    assert [row.status for row in rows] == ["ok", "FAILED", "FAILED", "info", "ok"]
    assert exit_code(rows) == 1
    text = render(rows)
    assert "failed: python -c" in text
    assert "'no-such-linter-here' is not installed" in text
    assert exit_code([rows[0], rows[3], rows[4]]) == 0


def test_an_audit_without_the_lock_file_says_how_to_write_it(tmp_path: Path) -> None:
    outcome = audit_check(tmp_path, "toolman").run(Runner())
    assert not outcome.ok
    assert outcome.summary == "locks/toolman.txt is missing: run `nox -s lock`"


# pip-audit asks PyPI, which tests may not reach: this stand-in on PATH reads the file it
# is given as pip-audit does with --no-deps and reports an advisory for jinja2 3.1.2.
FAKE_PIP_AUDIT = """#!{python}
import json, sys
args = sys.argv[1:]
assert {{"--no-deps", "--disable-pip"}} <= set(args), args
pins = [line.split(";")[0].strip().split("==") for line in open(args[args.index("-r") + 1])
        if "==" in line and not line.startswith("#")]
vulns = {{"jinja2": [{{"id": "GHSA-h5c8-rqwp-cp95", "aliases": ["CVE-2024-22195"],
                      "fix_versions": ["3.1.3"]}}]}}
dependencies = [{{"name": n, "version": v, "vulns": vulns.get(n, [])}} for n, v in pins]
open(args[args.index("-o") + 1], "w").write(json.dumps({{"dependencies": dependencies}}))
"""


def project_with_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lock: str) -> Path:
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "pip-audit").write_text(FAKE_PIP_AUDIT.format(python=sys.executable))
    (tools / "pip-audit").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    root = tmp_path / "project"
    (root / "locks").mkdir(parents=True)
    (root / "locks" / "toolman.txt").write_text(lock)
    return root


def test_the_audit_reads_the_pins_of_the_lock_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = "# uv\nanyio==4.16.0\njinja2==3.1.2\npywin32==312 ; sys_platform == 'win32'\n"
    root = project_with_lock(tmp_path, monkeypatch, lock)
    outcome = audit_check(root, "toolman").run(Runner())
    assert not outcome.ok
    assert outcome.summary == (
        "locks/toolman.txt: 3 packages, 1 fixable: jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 "
        "(fixed in 3.1.3)"
    )
    (root / "ci").mkdir()
    (root / audit.IGNORE_FILE).write_text(
        '[[ignore]]\nid = "CVE-2024-22195"\nreason = "the templates are ours"\n'
    )
    accepted = audit_check(root, "toolman").run(Runner())
    assert accepted.ok
    assert "1 accepted: jinja2 3.1.2" in accepted.summary


def test_a_clean_lock_file_passes_and_a_bad_ignore_list_fails_the_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project_with_lock(tmp_path, monkeypatch, "anyio==4.16.0\n")
    clean = audit_check(root, "toolman").run(Runner())
    assert (clean.ok, clean.summary) == (
        True,
        "locks/toolman.txt: 1 package, no known vulnerability",
    )
    (root / "ci").mkdir()
    (root / audit.IGNORE_FILE).write_text('[[ignore]]\nid = "GHSA-h5c8-rqwp-cp95"\n')
    refused = audit_check(root, "toolman").run(Runner())
    assert not refused.ok
    assert "GHSA-h5c8-rqwp-cp95 is ignored without a reason" in refused.summary


def test_the_todo_count_reads_the_files_git_sees(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    repo.write("a.py", "# TODO: one\nx = 1  # FIXME two\n# TODO three\n")
    repo.write("build/ignored.py", "# TODO not counted\n")
    repo.write(".gitignore", "build/\n")
    repo.commit("files")
    outcome = todo_check(repo.path).run(Runner())
    assert (outcome.summary, outcome.informational) == ("2 TODO, 1 FIXME", True)


def test_the_plan_audits_every_service_and_lints_what_nox_lint_does() -> None:
    project = load_project(ROOT)
    names = [check.name for check in plan(project)]
    assert [n for n in names if n.startswith("pip-audit")] == [
        f"pip-audit {service}" for service in project.service_names
    ]
    assert names[:5] == [
        "format",
        "lint: Python",
        "lint: workflows",
        "lint: scripts",
        "lint: Dockerfiles",
    ]
    assert {"wheels", "tests", "lock files", "TODO/FIXME"} <= set(names)


def test_a_missing_lock_file_fails_naming_the_command_that_writes_it(tmp_path: Path) -> None:
    """Offline: a missing lock is found before uv is asked (a stale one needs PyPI to tell)."""
    project = load_project(ROOT)
    moved = tuple(
        replace(service, path=tmp_path / "services" / service.name) for service in project.services
    )
    verdict = locks.check(Runner(), replace(project, root=tmp_path, services=moved))
    assert not verdict.ok
    assert "locks/toolman.txt is missing" in verdict.summary
    assert verdict.summary.endswith(": run `nox -s lock`")


def test_the_lock_files_are_what_the_images_install_besides_this_repository() -> None:
    """Each service's lock pins its own requirements and those of the services it requires,
    never those services themselves (they come from here, not from an index)."""
    project = load_project(ROOT)
    for service in project.service_names:
        text = locks.lock_path(ROOT, service).read_text()
        assert text.startswith("# This file was autogenerated by uv")
        assert "#    nox -s lock\n" in text
        pinned = {line.split("==")[0] for line in text.splitlines() if "==" in line}
        assert not pinned & {project.target(s).distribution for s in project.service_names}
    orchestrator = locks.lock_path(ROOT, "orchestrator").read_text()
    assert "fastapi==" in orchestrator
    assert "starlette==" in orchestrator  # toolman's requirement, toolman itself not
