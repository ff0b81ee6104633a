"""The platform's own three images, built from a copy of this repository exactly as
`nox -s build_all -- -t v1.2.3 -r localhost:5000/platform -p` builds them (two platforms,
amd64 and arm64, the default when pushing): real engine, QEMU for the arm64 smoke tests,
real local registry, smoke tests, push, and the registry's own API as the judge.

Dependencies come from build/wheelhouse/ (filled by `python -m buildkit wheelhouse`, which
the `tests` session runs first), so no package index is contacted."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.utils import canonicalize_name

from buildkit.engine.client import Engine
from tests.helpers import GitRepo, run_buildkit, snapshot_repository, step_result
from tests.registries import config_labels, manifest_digest, require_shared_registry

pytestmark = [pytest.mark.docker, pytest.mark.slow]
IMAGES = {"orchestrator": "orchestrator", "toolman": "toolman", "mcp_wrapper": "mcp-wrapper"}


@pytest.fixture(scope="module")
def pushed(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> tuple[GitRepo, str, list[dict[str, Any]]]:
    address = require_shared_registry()
    repo = snapshot_repository(tmp_path_factory.mktemp("repo") / "platform")
    prefix = f"localhost:5000/r{uuid.uuid4().hex[:8]}/platform"
    runs = []
    for name in ("first.json", "second.json"):  # the second run must reuse the layer cache
        result = run_buildkit(
            "images",
            "-t",
            "v1.2.3",
            "-r",
            prefix,
            "-p",
            "--offline",
            "--report",
            str(repo.path / "build" / name),
            cwd=repo.path,
            timeout=1200,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        runs.append(json.loads((repo.path / "build" / name).read_text()))
    assert address
    return repo, prefix, runs


def test_three_images_are_pushed_and_resolve_to_their_digests(
    pushed: tuple[GitRepo, str, list[dict[str, Any]]],
) -> None:
    repo, prefix, (report, _) = pushed
    commit = repo.git("rev-parse", "HEAD")
    for service, image_name in IMAGES.items():
        image = step_result(report, f"{service}:image")["artifacts"][0]
        push = step_result(report, f"{service}:push")["artifacts"][0]
        assert image["tags"][0] == f"{prefix}/{image_name}:v1.2.3"
        assert {tag.rsplit(":", 1)[1] for tag in image["tags"]} == {
            "v1.2.3",
            "1.2.3",
            "1.2",
            "1",
            "latest",
            f"sha-{commit[:7]}",
        }
        assert image["id"].startswith("sha256:")
        assert image["size"] > 0
        path = f"{prefix.split('/', 1)[1]}/{image_name}"
        for tag in image["tags"]:
            assert manifest_digest("127.0.0.1:5000", path, tag.rsplit(":", 1)[1]) == push["digest"]
        labels = config_labels("127.0.0.1:5000", path, "v1.2.3")
        assert labels["org.opencontainers.image.revision"] == commit
        assert labels["org.opencontainers.image.version"] == "1.2.3"
        assert labels["org.opencontainers.image.source"] == "https://github.com/5dlabs/platform"


def locked_versions(lock: Path) -> dict[str, str]:
    """name -> version of each `name==version` line of a lock file (markers aside)."""
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        requirement = line.split(";", 1)[0].strip()
        if "==" in requirement and not requirement.startswith("#"):
            name, version = requirement.split("==", 1)
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_each_image_installs_its_dependencies_at_the_versions_its_lock_pins(
    pushed: tuple[GitRepo, str, list[dict[str, Any]]],
) -> None:
    """What pip-audit audits (locks/<service>.txt) is what the image ships: every package
    in the install tree the image copies, besides this repository's own, at its pin."""
    repo, _, _ = pushed
    own = {canonicalize_name(name) for name in IMAGES.values()}
    for service, image_name in IMAGES.items():
        pins = locked_versions(repo.path / "locks" / f"{service}.txt")
        trees = sorted(
            (repo.path / "build" / "image-context" / service).glob(
                f"trees-*/linux-*/opt/{image_name}"
            )
        )
        assert trees, service  # what the last build of the image left (any backend)
        for tree in trees:
            shipped = {
                canonicalize_name(name): version
                for name, version in (
                    path.name.removesuffix(".dist-info").rsplit("-", 1)
                    for path in tree.glob("*.dist-info")
                )
            }
            third_party = {name: version for name, version in shipped.items() if name not in own}
            assert bool(third_party) == bool(pins), tree  # mcp-wrapper needs none
            assert {name: pins.get(name) for name in third_party} == third_party, tree


def test_http_services_pass_health_and_healthcheck_and_the_wrapper_answers_version(
    pushed: tuple[GitRepo, str, list[dict[str, Any]]],
) -> None:
    _, _, (report, _) = pushed
    for service in ("orchestrator", "toolman"):
        assert "/health ok, HEALTHCHECK ok" in step_result(report, f"{service}:image")["summary"]
    assert "--version ok (mcp-wrapper 1.2.3)" in step_result(report, "mcp_wrapper:image")["summary"]


def test_images_run_as_non_root_with_the_service_entrypoint(
    engine: Engine,
    pushed: tuple[GitRepo, str, list[dict[str, Any]]],
) -> None:
    _, _, (report, _) = pushed
    for service, script in (
        ("orchestrator", "orchestrator"),
        ("toolman", "toolman"),
        ("mcp_wrapper", "mcp-wrapper"),
    ):
        image_id = step_result(report, f"{service}:image")["artifacts"][0]["id"]
        config = engine.client.api.inspect_image(image_id)["Config"]  # type: ignore[no-untyped-call]
        assert config["User"] == "10001:10001"
        assert config["Entrypoint"] == [script]


def test_an_unchanged_second_run_builds_nothing_and_pushes_the_same_digests(
    pushed: tuple[GitRepo, str, list[dict[str, Any]]],
) -> None:
    _, _, (first, second) = pushed
    for service in IMAGES:
        assert step_result(second, f"{service}:image")["status"] == "cached"
        one = step_result(first, f"{service}:image")["artifacts"][0]
        two = step_result(second, f"{service}:image")["artifacts"][0]
        assert one["id"] == two["id"]
        assert (
            step_result(second, f"{service}:push")["artifacts"][0]["digest"]
            == step_result(first, f"{service}:push")["artifacts"][0]["digest"]
        )


def test_a_rebuild_with_new_labels_reuses_the_engines_layer_cache(
    pushed: tuple[GitRepo, str, list[dict[str, Any]]],
) -> None:
    repo, prefix, _ = pushed
    # Another tag changes the labels (so the step key), not the installed files.
    result = run_buildkit(
        "images",
        "--image-backend",
        "engine",  # the engine's own layer cache (the fixture's two platforms took it too)
        "-t",
        "v1.2.3-rebuild",
        "-r",
        prefix,
        "--offline",
        "--services",
        "toolman",
        "--report",
        str(repo.path / "build" / "r.json"),
        cwd=repo.path,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout
    log = (repo.path / "build" / "logs" / "toolman-image.log").read_text()
    copy_step = log.split("COPY ", 1)[1].split("Step ", 1)[0]
    assert "Using cache" in copy_step


def test_every_tag_is_an_index_of_amd64_and_arm64(
    pushed: tuple[GitRepo, str, list[dict[str, Any]]],
) -> None:
    _, _, (report, _) = pushed
    for service in IMAGES:
        push = step_result(report, f"{service}:push")["artifacts"][0]
        assert sorted(push["platforms"]) == ["linux/amd64", "linux/arm64"]
        assert push["verified"] is True


def test_an_arm64_toolman_answers_health_under_emulation(
    engine: Engine,
    pushed: tuple[GitRepo, str, list[dict[str, Any]]],
) -> None:
    _, prefix, _ = pushed
    container = engine.run(
        f"{prefix}/toolman:v1.2.3", platform="linux/arm64", ports={"3000/tcp": ("127.0.0.1", None)}
    )
    try:
        deadline = time.monotonic() + 120
        answer = None
        while time.monotonic() < deadline and answer is None:
            container.reload()
            assert container.status not in ("exited", "dead"), container.logs().decode()
            port = (container.ports.get("3000/tcp") or [{}])[0].get("HostPort")
            if port:
                try:
                    answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                except httpx.HTTPError:
                    time.sleep(0.5)
        assert answer is not None, "no /health answer within 120 s"
        assert answer.status_code == 200
        info = engine.image(f"{prefix}/toolman:v1.2.3")
        assert info is not None
        assert info.architecture == "arm64"
        code, output = container.exec_run(
            ["python3", "-c", "import platform; print(platform.machine())"]
        )
        assert code == 0
        assert isinstance(output, bytes)
        assert output.decode().strip() == "aarch64"
    finally:
        engine.remove(container)


def test_the_orchestrator_image_holds_the_repositorys_toolman(
    engine: Engine,
    pushed: tuple[GitRepo, str, list[dict[str, Any]]],
) -> None:
    """orchestrator requires toolman (`requires` in [tool.buildkit]); PyPI's unrelated
    `toolman` must not be what the image got."""
    _, prefix, _ = pushed
    probe = "import toolman.config, importlib.metadata as m; print(m.version('toolman'))"
    output = engine.client.containers.run(
        f"{prefix}/orchestrator:v1.2.3", entrypoint=["python3", "-c", probe], remove=True
    )
    assert bytes(output).decode().strip() == "1.2.3"
