"""What users see in CI logs: plain lines, GitHub log groups, annotations, step summary."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from buildkit.gitinfo import GitInfo
from buildkit.model import Artifact, Result, Status, Step
from buildkit.options import Options
from buildkit.report import Report
from buildkit.ui import TerminalUI, human_size

STEP = Step("toolman", "test")
FAILED = Result(
    "toolman",
    "test",
    Status.FAILED,
    2.5,
    reason="tests failed: 1 failed",
    command="python -m pytest",
    output_tail="E   assert 4 == 5",
)
WHEEL = Result(
    "toolman",
    "wheel",
    Status.OK,
    1.0,
    summary="toolman.whl",
    artifacts=(Artifact("wheel", "dist/toolman.whl", size=2048),),
)


def report(results: tuple[Result, ...]) -> Report:
    return Report(
        started=datetime.now(UTC),
        duration=3.5,
        exit_code=1,
        git=GitInfo("a" * 40, False, "v1.0.0", 0, "1.0.0"),
        options=Options(tag="latest", registry="r", report=Path("build/report.json")),
        results=results,
    )


def test_plain_mode_prints_one_line_per_step_and_the_failure_tail() -> None:
    out = io.StringIO()
    ui = TerminalUI(stream=out, env={})
    ui.planned([STEP])
    ui.started(STEP)
    ui.command(STEP, "python -m pytest")
    ui.output(STEP, "collected 2 items")
    ui.finished(STEP, FAILED)
    text = out.getvalue()
    assert "[toolman:test] ✗ failed 2.5s  tests failed: 1 failed" in text
    assert "command: python -m pytest" in text
    assert "E   assert 4 == 5" in text
    assert "collected 2 items" not in text  # whole output is in the log, not the terminal


def test_github_mode_groups_output_annotates_and_writes_the_step_summary(tmp_path: Path) -> None:
    out = io.StringIO()
    summary = tmp_path / "summary.md"
    ui = TerminalUI(stream=out, env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    ui.planned([STEP])
    ui.started(STEP)
    ui.output(STEP, "collected 2 items")
    ui.finished(STEP, FAILED)
    ui.summary(report((FAILED, WHEEL)), Path("build/report.json"))
    text = out.getvalue()
    assert "::group::toolman:test (failed, 2.5s)\ncollected 2 items\n::endgroup::" in text
    assert "::error title=buildkit toolman:test failed::tests failed: 1 failed" in text
    assert "failed: toolman (test)" in text
    markdown = summary.read_text()
    assert "| toolman | test | failed | 2.5s |  |  | tests failed: 1 failed |" in markdown
    assert "| toolman | wheel | ok | 1.0s | dist/toolman.whl | 2.0 KiB | toolman.whl |" in markdown


def test_summary_table_shows_artifact_and_size() -> None:
    out = io.StringIO()
    ui = TerminalUI(stream=out, env={"COLUMNS": "200"})
    ui.summary(report((WHEEL,)), Path("build/report.json"))
    line = next(line for line in out.getvalue().splitlines() if "wheel" in line)
    assert "dist/toolman.whl" in line
    assert "2.0 KiB" in line


def test_human_size() -> None:
    assert human_size(None) == ""
    assert human_size(512) == "512 B"
    assert human_size(5 * 1024 * 1024) == "5.0 MiB"
