from __future__ import annotations

from pathlib import Path

import pytest

from buildkit.config import find_project_root, load_project, parse_project
from buildkit.deps.envs import Envs
from buildkit.errors import ConfigError
from buildkit.gitinfo import GitInfo
from buildkit.options import Options, env_flag
from buildkit.proc import Runner
from buildkit.stages.context import Context
from tests.helpers import ROOT, require


def service_table(**overrides: object) -> dict[str, object]:
    table: dict[str, object] = {
        "path": "services/toolman",
        "package": "toolman",
        "distribution": "toolman",
        "script": "toolman",
        "image": "toolman",
        "dockerfile": "dockerfiles/toolman.Dockerfile",
    }
    table.update(overrides)
    return table


def test_the_repository_config_declares_three_services() -> None:
    project = load_project(ROOT)
    assert project.service_names == ("orchestrator", "toolman", "mcp_wrapper")
    assert project.registry == "ghcr.io/5dlabs/platform"
    assert project.tag == "latest"
    toolman = project.service("toolman")
    assert toolman.port == 3000
    assert toolman.script == "toolman"
    assert toolman.src_package_dir == ROOT / "services/toolman/src/toolman"


def test_unknown_top_level_key_names_the_key_and_suggests() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_project(ROOT, {"registy": "x", "services": {"toolman": service_table()}})
    assert "tool.buildkit.registy" in str(caught.value)
    assert "did you mean 'registry'" in str(caught.value)


def test_unknown_service_key_suggests_the_right_one() -> None:
    with pytest.raises(
        ConfigError, match=r"services\.toolman\.dockerfle.*did you mean 'dockerfile'"
    ):
        parse_project(ROOT, {"services": {"toolman": {**service_table(), "dockerfle": "x"}}})


def test_wrong_type_names_key_and_type() -> None:
    with pytest.raises(ConfigError, match=r"toolman\.port must be a int, got str '3000'"):
        parse_project(ROOT, {"services": {"toolman": service_table(port="3000")}})
    with pytest.raises(ConfigError, match="port must be a int, got bool"):
        parse_project(ROOT, {"services": {"toolman": service_table(port=True)}})


def test_missing_required_key() -> None:
    table = service_table()
    del table["script"]
    with pytest.raises(ConfigError, match=r"services\.toolman\.script is required"):
        parse_project(ROOT, {"services": {"toolman": table}})


def test_service_path_must_hold_a_pyproject() -> None:
    with pytest.raises(ConfigError, match=r"'services/nowhere' has no pyproject\.toml"):
        parse_project(ROOT, {"services": {"toolman": service_table(path="services/nowhere")}})


def test_unknown_service_lookup_suggests() -> None:
    project = load_project(ROOT)
    with pytest.raises(ConfigError, match="did you mean 'toolman'"):
        project.service("toolmann")


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.buildkit\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_project(tmp_path)


def test_project_root_is_found_from_a_subdirectory() -> None:
    assert find_project_root(ROOT / "services" / "toolman" / "src") == ROOT


def test_no_project_root_says_where_to_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no pyproject.toml with a \[tool.buildkit\] table"):
        find_project_root(tmp_path)


def test_claude_image_table_is_checked() -> None:
    table = {
        "services": {"toolman": service_table()},
        "claude_image": {
            "image": "claude-code",
            "dockerfile": "d",
            "service": "toolmann",
            "npm_package": "@anthropic-ai/claude-code",
            "version": "1.0.0",
        },
    }
    with pytest.raises(ConfigError, match=r"claude_image\.service = 'toolmann'.*did you mean"):
        parse_project(ROOT, table)
    table["claude_image"]["service"] = "toolman"  # type: ignore[index]
    table["claude_image"]["versoin"] = "2"  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"unknown key tool\.buildkit\.claude_image\.versoin"):
        parse_project(ROOT, table)


@pytest.mark.parametrize("workers", [0, -1, 65])
def test_test_workers_out_of_range_names_the_key(workers: int) -> None:
    with pytest.raises(ConfigError, match=rf"services\.toolman\.test_workers = {workers} is out"):
        parse_project(ROOT, {"services": {"toolman": service_table(test_workers=workers)}})


def test_test_workers_default_to_one_process() -> None:
    project = parse_project(ROOT, {"services": {"toolman": service_table()}})
    assert project.service("toolman").test_workers == 1
    assert load_project(ROOT).service("mcp_wrapper").test_workers > 1


@pytest.mark.parametrize(
    ("value", "meant"),
    [("1", True), ("on", True), (" Yes ", True), ("TRUE", True), ("0", False), ("off", False),
     ("", False)],
)  # fmt: skip
def test_every_yes_no_variable_reads_the_same_words(
    value: str, meant: bool, tmp_path: Path
) -> None:
    """BUILDKIT_OFFLINE (options) and BUILDKIT_REQUIRE_ALL (the step context, the tests'
    `require`) accept the same words: `on` once made one of them true and the other not."""
    assert env_flag({"BUILDKIT_OFFLINE": value}, "BUILDKIT_OFFLINE") is meant
    options = Options(tag="latest", registry="r", report=tmp_path / "r.json")
    git = GitInfo(commit="a" * 40, dirty=False, tag="", distance=0, version="0.0.0")
    env = {"BUILDKIT_REQUIRE_ALL": value}
    ctx = Context(load_project(ROOT), options, git, Envs(tmp_path), Runner(), env=env)
    assert ctx.require_all is meant
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BUILDKIT_REQUIRE_ALL", value)
        if meant:
            with pytest.raises(pytest.fail.Exception, match="BUILDKIT_REQUIRE_ALL"):
                require(False, "a prerequisite")
        else:
            with pytest.raises(pytest.skip.Exception):
                require(False, "a prerequisite")
