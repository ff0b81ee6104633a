"""Sibling services (`requires`): a service that depends on another service of this
repository gets that sibling from the repository everywhere buildkit installs it — never
from a package index, where an unrelated project may own the name (PyPI has a `toolman`).

The configuration and planning tests are pure. The rest run buildkit for real on the
fixture project with beta made to require alpha, offline: had any install asked an index
for `mini-alpha`, the offline run would have failed."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from buildkit import pipeline
from buildkit.changes import touched_services
from buildkit.config import load_project, parse_project
from buildkit.deps.envs import Envs, env_python
from buildkit.engine.client import Engine
from buildkit.errors import ConfigError
from buildkit.gitinfo import read_git_info
from buildkit.model import Step
from buildkit.options import Options
from buildkit.proc import Runner
from buildkit.stages import step_key
from buildkit.stages.context import Context
from tests.helpers import (
    ROOT,
    GitRepo,
    artifact_of,
    copy_fixture,
    read_report,
    run_buildkit,
    statuses,
    step_result,
)

OFFLINE = {"BUILDKIT_OFFLINE": "1"}


def service(name: str, **extra: object) -> dict[str, object]:
    return {
        "path": f"services/{name}",
        "package": name,
        "distribution": name,
        "script": name,
        "image": name,
        "dockerfile": f"dockerfiles/{name}.Dockerfile",
        **extra,
    }


def services(**tables: dict[str, object]) -> dict[str, object]:
    return {"services": tables}


def test_the_orchestrator_requires_toolman() -> None:
    project = load_project(ROOT)
    assert project.service("orchestrator").requires == ("toolman",)
    assert project.siblings_of("orchestrator") == ("toolman",)
    assert project.dependents_of("toolman") == ("orchestrator",)
    assert project.siblings_of("mcp_wrapper") == ()


def test_an_unknown_sibling_is_named_with_a_suggestion() -> None:
    table = services(
        orchestrator=service("orchestrator", requires=["toolmen"]), toolman=service("toolman")
    )
    with pytest.raises(ConfigError) as caught:
        parse_project(ROOT, table)
    message = str(caught.value)
    assert "tool.buildkit.services.orchestrator.requires: 'toolmen' is not a service" in message
    assert "did you mean 'toolman'" in message


def test_requires_must_be_a_list_of_names_and_not_the_service_itself() -> None:
    with pytest.raises(ConfigError, match="requires must be a list, got str 'toolman'"):
        parse_project(ROOT, services(orchestrator=service("orchestrator", requires="toolman")))
    with pytest.raises(ConfigError, match="requires must be a list of service names"):
        parse_project(ROOT, services(orchestrator=service("orchestrator", requires=[1])))
    with pytest.raises(ConfigError, match="'toolman' cannot require itself"):
        parse_project(ROOT, services(toolman=service("toolman", requires=["toolman"])))


def test_a_cycle_of_requires_is_refused_and_shown() -> None:
    table = services(
        orchestrator=service("orchestrator", requires=["toolman"]),
        toolman=service("toolman", requires=["mcp_wrapper"]),
        mcp_wrapper=service("mcp_wrapper", requires=["orchestrator"]),
    )
    with pytest.raises(ConfigError, match="requires form a cycle") as caught:
        parse_project(ROOT, table)
    cycle = str(caught.value).split("cycle: ", 1)[1].splitlines()[0]
    names = cycle.split(" -> ")
    assert names[0] == names[-1]
    assert sorted(names[:-1]) == ["mcp_wrapper", "orchestrator", "toolman"]


def plan_of(tmp_path: Path, **overrides: object) -> dict[str, Step]:
    fields: dict[str, object] = {"tag": "v1", "registry": "r", "report": tmp_path / "r.json"}
    fields.update(overrides)
    steps = pipeline.plan(load_project(ROOT), Options(**fields))  # type: ignore[arg-type]
    return {step.id: step for step in steps}


def test_the_orchestrator_waits_for_toolmans_wheel(tmp_path: Path) -> None:
    steps = plan_of(tmp_path, push=True)
    assert "toolman:wheel" in steps["orchestrator:wheel"].needs
    assert "toolman:wheel" in steps["orchestrator:image"].needs
    assert steps["toolman:wheel"].needs == ()


def test_selecting_the_orchestrator_alone_still_builds_toolmans_wheel(tmp_path: Path) -> None:
    steps = plan_of(tmp_path, push=True, services=("orchestrator",))
    assert [step for step in steps if step.startswith("toolman:")] == ["toolman:wheel"]
    assert steps["orchestrator:wheel"].needs == ("toolman:wheel",)
    wheelhouse = plan_of(tmp_path, services=("orchestrator",), stages=("wheel", "wheelhouse"))
    assert wheelhouse["orchestrator:wheelhouse"].needs == ("orchestrator:wheel", "toolman:wheel")
    tests_only = plan_of(tmp_path, services=("orchestrator",), stages=("test",))
    assert list(tests_only) == ["orchestrator:test"]  # its env installs toolman editable


def test_a_change_to_toolman_selects_the_orchestrator_too() -> None:
    project = load_project(ROOT)
    changed = ["services/toolman/src/toolman/config.py"]
    assert touched_services(project, ROOT, changed) == ("orchestrator", "toolman")
    orchestrator_only = ["services/orchestrator/src/orchestrator/app.py"]
    assert touched_services(project, ROOT, orchestrator_only) == ("orchestrator",)


def test_a_change_to_a_lock_file_alone_selects_its_service_and_its_dependents() -> None:
    """A pin moved for a security fix changes what the image ships: it must be rebuilt."""
    project = load_project(ROOT)
    assert touched_services(project, ROOT, ["locks/orchestrator.txt"]) == ("orchestrator",)
    assert touched_services(project, ROOT, ["locks/toolman.txt"]) == ("orchestrator", "toolman")


def test_the_orchestrator_environment_imports_the_repositorys_toolman(tmp_path: Path) -> None:
    """The real environment the orchestrator's tests and type checks run in (offline:
    every package comes from uv's cache, toolman from services/toolman)."""
    project = load_project(ROOT)
    orchestrator = project.service("orchestrator")
    envs = Envs(tmp_path / "build", offline=True)
    env = envs.service_env(orchestrator, Runner(), [project.service("toolman")])
    probe = "import toolman, toolman.config; print(toolman.__file__); print(toolman.config.parse)"
    answer = subprocess.run(
        [str(env_python(env)), "-c", probe], capture_output=True, text=True, check=False
    )
    assert answer.returncode == 0, answer.stderr
    where, parse = answer.stdout.splitlines()
    assert Path(where).resolve().is_relative_to(ROOT / "services" / "toolman" / "src")
    assert parse.startswith("<function parse")


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> GitRepo:
    """The fixture project where beta requires alpha (and calls it), built once."""
    repo = copy_fixture("miniproject", tmp_path_factory.mktemp("linked") / "mini")
    pyproject = repo.path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'dockerfile = "dockerfiles/beta.Dockerfile"',
            'dockerfile = "dockerfiles/beta.Dockerfile"\nrequires = ["alpha"]',
        )
    )
    beta = repo.path / "services/beta/pyproject.toml"
    beta.write_text(beta.read_text().replace("dependencies = []", 'dependencies = ["mini-alpha"]'))
    code = repo.path / "services/beta/src/beta/__init__.py"
    code.write_text(
        code.read_text()
        .replace(
            "from importlib.metadata import version\n",
            "from importlib.metadata import version\n\nfrom alpha import add as alpha_add\n",
        )
        .replace("return left + right", "return alpha_add(left, right)")
    )
    repo.commit("beta requires alpha")
    repo.tag("v4.5.6")
    result = run_buildkit("build-all", "--no-docker", cwd=repo.path, env=OFFLINE)
    assert result.returncode == 0, result.stdout + result.stderr
    return repo


def test_checks_and_the_wheel_check_use_the_sibling_from_the_repository(linked: GitRepo) -> None:
    report = read_report(linked)
    assert {k: v for k, v in statuses(report).items() if k.startswith("beta:")} == {
        "beta:test": "ok",
        "beta:lint": "ok",
        "beta:fmt": "ok",
        "beta:wheel": "ok",
        "beta:image": "skipped",
    }
    probe = "import alpha, importlib.metadata as m; print(alpha.__file__, m.version('mini-alpha'))"

    def ask(env: str) -> list[str]:
        python = str(env_python(linked.path / "build" / env))
        answer = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
        assert answer.returncode == 0, answer.stderr
        return answer.stdout.split()

    where, _ = ask("envs/beta")
    assert Path(where).is_relative_to(linked.path / "services/alpha/src")  # editable
    assert ask("wheel-check/beta")[1] == "4.5.6"
    alpha_wheel = artifact_of(step_result(report, "alpha:wheel"), "wheel")["name"]
    assert alpha_wheel.endswith("mini_alpha-4.5.6-py3-none-any.whl")


def context_for(repo: GitRepo) -> Context:
    project = load_project(repo.path)
    options = Options(tag="latest", registry="r", report=repo.path / "r.json", offline=True)
    envs = Envs(repo.path / "build", offline=True)
    return Context(project, options, read_git_info(repo.path), envs, Runner())


def test_a_change_to_the_sibling_moves_the_dependents_check_keys(linked: GitRepo) -> None:
    def beta_keys() -> dict[str, str | None]:
        ctx = context_for(linked)
        return {stage: step_key(Step("beta", stage), ctx) for stage in ("test", "lint")}

    before = beta_keys()
    source = linked.path / "services/alpha/src/alpha/__init__.py"
    original = source.read_text()
    source.write_text(original + "\n# edited\n")
    try:
        after = beta_keys()
        assert after["test"] != before["test"]
        assert after["lint"] != before["lint"]
        matrix = run_buildkit(
            "build-all", "--changed-since", "HEAD", "--print-matrix", cwd=linked.path
        )
        assert '"service":"beta"' in matrix.stdout
    finally:
        source.write_text(original)
    assert beta_keys() == before


@pytest.mark.docker
@pytest.mark.slow
def test_the_dependents_image_holds_the_siblings_exact_wheel(
    engine: Engine, linked: GitRepo
) -> None:
    result = run_buildkit(
        "images",
        "--services",
        "beta",
        "-t",
        "v4.5.6",
        "-r",
        f"localhost:5000/s{uuid.uuid4().hex[:8]}",
        cwd=linked.path,
        env=OFFLINE,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = read_report(linked)
    assert {"alpha:wheel", "beta:wheel", "beta:image"} <= set(statuses(report))
    assert not any(step.startswith("alpha:image") for step in statuses(report))
    assert statuses(report)["beta:image"] == "ok"
    image = artifact_of(step_result(report, "beta:image"), "image")
    probe = (
        "import importlib.metadata as m, beta; "
        "print(m.version('mini-alpha'), beta.add(2, 3), m.distribution('mini-alpha').files[0])"
    )
    output = engine.client.containers.run(
        image["name"], entrypoint=["python3", "-c", probe], remove=True
    )
    version, total, _ = bytes(output).decode().split()
    assert (version, total) == ("4.5.6", "5")
    wheelhouse = linked.path / "build" / "wheelhouse"
    assert not list(wheelhouse.rglob("mini_alpha-*.whl"))  # the repository's own: not cached
