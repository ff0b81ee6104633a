"""The optional claude-code image (--claude-image) from a copy of this repository: the real
Claude Code binary (from build/claude-code, fetched by `python -m buildkit wheelhouse
--claude-image`, which `nox -s tests` runs), mcp-wrapper's exact wheel, the real engine
(through buildx, pinned: its bake once lost this image) and the local registry, with
toolman selected, so mcp-wrapper's wheel is there only because the claude-code image
needs it. A task cannot run here (it needs an API key and the internet);
that the binary runs and the agent answers /health is what the image promises."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from buildkit.config import load_project
from buildkit.engine.client import Engine
from tests.helpers import (
    ROOT,
    GitRepo,
    artifact_of,
    read_report,
    run_buildkit,
    snapshot_repository,
    step_result,
)
from tests.registries import manifest_digest, require_shared_registry

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def built(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> tuple[GitRepo, str]:
    require_shared_registry()
    repo = snapshot_repository(tmp_path_factory.mktemp("claude") / "platform", "claude-code")
    prefix = f"localhost:5000/a{uuid.uuid4().hex[:8]}/platform"
    result = run_buildkit(
        "images",
        "--image-backend",
        "buildx",  # the path whose bake once lost the claude-code image (KeyError)
        "--claude-image",
        "--services",
        "toolman",  # not mcp_wrapper, whose wheel the claude-code image installs
        "-t",
        "v1.2.3",
        "-r",
        prefix,
        "-p",
        "--platform",
        engine.platform(),
        "--offline",
        cwd=repo.path,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return repo, prefix


def image(built: tuple[GitRepo, str]) -> dict[str, Any]:
    return artifact_of(step_result(read_report(built[0]), "claude-code:image"), "image")


def run_in(engine: Engine, ref: str, *command: str) -> str:
    output = engine.client.containers.run(
        ref, entrypoint=list(command[:1]), command=list(command[1:]), remove=True
    )
    return bytes(output).decode().strip()


def test_the_image_is_built_smoke_tested_and_pushed(built: tuple[GitRepo, str]) -> None:
    repo, prefix = built
    report = read_report(repo)
    assert report["options"]["image_backend"] == "buildx"
    assert image(built)["backend"] == "buildx"
    baked = [a["name"] for a in step_result(report, "images:bake")["artifacts"]]
    assert "claude-code" in baked
    assert step_result(report, "mcp_wrapper:wheel")["status"] == "ok"  # planned for it
    assert "mcp_wrapper:image" not in {f"{r['service']}:{r['stage']}" for r in report["results"]}
    assert step_result(report, "claude-code:image")["summary"].endswith(
        "/health ok, HEALTHCHECK ok"
    )
    push = artifact_of(step_result(report, "claude-code:push"), "push")
    assert push["verified"] is True
    path = f"{prefix.split('/', 1)[1]}/claude-code"
    assert manifest_digest("127.0.0.1:5000", path, "v1.2.3") == push["digest"]
    version = load_project(ROOT).claude
    assert version is not None
    assert image(built)["labels"]["dev.buildkit.claude-code-version"] == version.version


def test_claude_code_and_the_wrapper_run_inside(engine: Engine, built: tuple[GitRepo, str]) -> None:
    ref = image(built)["name"]
    claude = load_project(ROOT).claude
    assert claude is not None
    assert run_in(engine, ref, "claude", "--version") == f"{claude.version} (Claude Code)"
    assert run_in(engine, ref, "mcp-wrapper", "--version") == "mcp-wrapper 1.2.3"
    config = json.loads(run_in(engine, ref, "cat", "/etc/claude-code/mcp.json"))
    assert config["mcpServers"]["toolman"]["command"] == "mcp-wrapper"
    identity = run_in(engine, ref, "sh", "-c", "id -u; echo $HOME; test -w $HOME && echo w")
    assert identity.splitlines() == ["10001", "/home/agent", "w"]
    # From the context's root-shaped trees: the agent's directories its user's, their
    # parents and what buildkit added root's, every one with the commit's time.
    paths = ["/home", "/home/agent", "/workspace", "/etc/claude-code", "/usr/local/bin/claude"]
    stats = run_in(engine, ref, "stat", "-c", "%n %u %a %Y", *paths).splitlines()
    epoch = built[0].git("log", "-1", "--format=%ct")
    assert stats == [
        f"/home 0 755 {epoch}",
        f"/home/agent 10001 755 {epoch}",
        f"/workspace 10001 755 {epoch}",
        f"/etc/claude-code 0 755 {epoch}",
        f"/usr/local/bin/claude 0 755 {epoch}",
    ]


def test_the_agent_answers_health_with_the_claude_version(
    engine: Engine, built: tuple[GitRepo, str]
) -> None:
    container = engine.run(image(built)["name"], ports={"8080/tcp": ("127.0.0.1", None)})
    try:
        deadline = time.monotonic() + 60
        answer = None
        while answer is None and time.monotonic() < deadline:
            container.reload()
            port = (container.ports.get("8080/tcp") or [{}])[0].get("HostPort")
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2) if port else None
            except httpx.TransportError:
                answer = None
            if answer is None:
                time.sleep(0.2)
        assert answer is not None
        assert answer.status_code == 200
        assert answer.json()["claude"]["version"].endswith("(Claude Code)")
    finally:
        engine.remove(container)


def test_without_the_cache_offline_says_how_to_fetch(tmp_path: Path) -> None:
    repo = snapshot_repository(tmp_path / "platform")
    result = run_buildkit(
        "images",
        "--claude-image",
        "--services",
        "mcp_wrapper",
        "--offline",
        "-r",
        "localhost:5000/nocache",
        cwd=repo.path,
        timeout=600,
    )
    assert result.returncode == 1
    # The step that builds the claude-code image says why: the image step (engine
    # backend), or the bake of every image (buildx).
    failed = [r for r in read_report(repo)["results"] if r["status"] == "failed"]
    assert [f"{r['service']}:{r['stage']}" for r in failed] in (
        ["claude-code:image"],
        ["images:bake"],
    )
    reason = failed[0]
    assert "is not in" in reason["reason"]
    assert "--offline forbids fetching it" in reason["reason"]
    assert "wheelhouse --claude-image" in reason["output_tail"]
