"""The command line as users run it: `python -m buildkit` in a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from buildkit.args import parse
from buildkit.cli import resolve_options
from buildkit.errors import UsageError
from tests.helpers import ROOT, require, run_buildkit

BUILD_ALL_OPTIONS = (
    "-h, --help",
    "-t, --tag TAG",
    "-r, --registry REG",
    "-p, --push",
    "--debug",
    "--no-docker",
    "--skip-tests",
    "--claude-image",
    "--no-cache",
    "--services A,B",
    "--keep-going",
    "--report PATH",
)


def test_unknown_option_prints_usage_and_exits_2() -> None:
    result = run_buildkit("build-all", "--bogus", cwd=ROOT)
    assert result.returncode == 2
    assert "usage: python -m buildkit build-all [OPTIONS]" in result.stderr
    assert "unrecognized arguments: --bogus" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("session", ["build_all", "fmt", "lint"])
def test_nox_session_rejects_unknown_option_with_exit_2(session: str) -> None:
    nox = shutil.which("nox")
    require(nox is not None, "nox is not on PATH (it is in every nox session)")
    assert nox is not None
    result = subprocess.run(
        [nox, "-s", session, "--", "--bogus"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2
    assert "unrecognized arguments: --bogus" in result.stderr


def test_help_lists_every_option_of_build_all_sh() -> None:
    result = run_buildkit("build-all", "--help", cwd=ROOT)
    assert result.returncode == 0
    for option in BUILD_ALL_OPTIONS:
        assert option in result.stdout, option
    text = " ".join(result.stdout.split())
    assert "default: latest" in text
    assert "default: ghcr.io/5dlabs/platform" in text
    assert "Changes exactly this: pytest runs with -vv --showlocals" in text
    assert "images get PYTHONDEVMODE=1" in text


def test_defaults_match_build_all_sh() -> None:
    options, _ = resolve_options(parse(["build-all"]), ROOT)
    assert options.tag == "latest"
    assert options.registry == "ghcr.io/5dlabs/platform"
    assert options.report == ROOT / "build" / "report.json"
    assert options.services == ("orchestrator", "toolman", "mcp_wrapper")
    flags = (options.push, options.no_docker, options.skip_tests, options.keep_going)
    assert flags == (False, False, False, False)


def test_short_options_and_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUILDKIT_TAG", "from-env")
    monkeypatch.setenv("BUILDKIT_REGISTRY", "env.example/reg")
    options, _ = resolve_options(parse(["build-all"]), ROOT)
    assert (options.tag, options.registry) == ("from-env", "env.example/reg")
    options, _ = resolve_options(parse(["build-all", "-t", "v1.0.0", "-r", "cli/reg", "-p"]), ROOT)
    assert (options.tag, options.registry, options.push) == ("v1.0.0", "cli/reg", True)


def test_services_option_validates_names() -> None:
    options, _ = resolve_options(parse(["build-all", "--services", "toolman,mcp_wrapper"]), ROOT)
    assert options.services == ("toolman", "mcp_wrapper")
    with pytest.raises(UsageError, match=r"unknown service 'toolmen'.*did you mean 'toolman'"):
        resolve_options(parse(["build-all", "--services", "toolmen"]), ROOT)


def test_unknown_service_exits_2_naming_it() -> None:
    result = run_buildkit("build-all", "--services", "toolmen", cwd=ROOT)
    assert result.returncode == 2
    assert "unknown service 'toolmen'" in result.stderr
    assert "usage:" in result.stderr


def test_push_with_no_docker_is_an_error_not_a_false_success(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = run_buildkit("build-all", "-p", "--no-docker", "--report", str(report), cwd=ROOT)
    assert result.returncode == 2
    assert "--push with --no-docker would push nothing" in result.stderr
    assert not report.exists()


def test_misspelt_environment_variable_is_warned_about(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUILDKIT_REGSTRY", "x")
    _, warnings = resolve_options(parse(["build-all"]), ROOT)
    assert any("BUILDKIT_REGSTRY" in w and "BUILDKIT_REGISTRY" in w for w in warnings)


def test_bad_boolean_environment_value_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUILDKIT_OFFLINE", "maybe")
    with pytest.raises(UsageError, match="BUILDKIT_OFFLINE='maybe'"):
        resolve_options(parse(["build-all"]), ROOT)


def test_outside_a_project_the_error_says_where_to_run(tmp_path: Path) -> None:
    result = run_buildkit("build-all", cwd=tmp_path)
    assert result.returncode == 3
    assert "no pyproject.toml with a [tool.buildkit] table" in result.stderr


def test_version_command_prints_the_git_version() -> None:
    result = run_buildkit("version", "--json", cwd=ROOT)
    assert result.returncode == 0
    info = json.loads(result.stdout)
    assert len(info["commit"]) == 40
    assert info["version"]


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["-t", ""], {}, "--tag is empty"),
        (["-r", ""], {}, "--registry is empty"),
        (["--platform", " "], {}, "--platform is empty"),
        ([], {"BUILDKIT_TAG": "bad tag"}, "BUILDKIT_TAG 'bad tag' is not a valid image tag"),
        (["-r", "https://ghcr.io/org"], {}, "starts with a URL scheme"),
        (["-r", "ghcr.io:abc/org"], {}, "port 'abc' in 'ghcr.io:abc' is not a port number"),
        ([], {"BUILDKIT_BASE_IMAGE": "Bad Image"}, "BUILDKIT_BASE_IMAGE 'Bad Image'"),
        ([], {"BUILDKIT_BASE_IMAGE": "python:"}, "BUILDKIT_BASE_IMAGE 'python:': tag ''"),
        (["-p"], {"BUILDKIT_REGISTRY_USERNAME": "bob"}, "BUILDKIT_REGISTRY_PASSWORD is not set"),
    ],
)
def test_bad_values_are_named_by_their_source_before_anything_runs(
    tmp_path: Path, args: list[str], env: dict[str, str], named: str
) -> None:
    """Each bad value exits 2 naming where it came from, before a step runs (no report)."""
    report = tmp_path / "report.json"
    result = run_buildkit(
        "images", "--services", "orchestrator", "--report", str(report), *args, cwd=ROOT, env=env
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert not report.exists()


def test_an_unusable_report_path_is_refused_up_front(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for report, why in ((tmp_path, "is a directory"), (a_file / "r.json", "not a writable")):
        result = run_buildkit("fmt", "--services", "orchestrator", f"--report={report}", cwd=ROOT)
        assert result.returncode == 2, result.stderr
        assert f"--report {report}" in result.stderr
        assert why in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # no stray temp files


def test_a_malformed_docker_host_is_an_engine_error_not_a_traceback(tmp_path: Path) -> None:
    result = run_buildkit(
        "images",
        "--services",
        "orchestrator",
        "--report",
        str(tmp_path / "r.json"),
        cwd=ROOT,
        env={"DOCKER_HOST": "tcp://bogus:xx", "BUILDKIT_OFFLINE": "1"},
    )
    assert result.returncode == 6, result.stdout + result.stderr
    assert "DOCKER_HOST=tcp://bogus:xx" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
