"""The real Docker engine for the conformance suite, and the two stand-in images its
tasks run: built in the test session from `python:3.11-slim` (on these machines the
engine takes it from the local registry mirror; nothing else is pulled) with the scripts
in stand_ins/ as their entry points. Everything made here carries `RUN_LABEL=RUN_ID`
(images) or the orchestrator's instance label of the test (containers, volumes) and is
removed by the test that made it; the base image's layers stay (the next run's cache).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import docker
from conftest import TESTS, require
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from orchestrator.backends.docker.options import LABEL_INSTANCE

BASE_IMAGE = "python:3.11-slim"
RUN_ID = uuid.uuid4().hex[:8]
RUN_LABEL = "dev.orchestrator.tests.run"
PREPARE = "run `bash ci/prepare-machine.sh` (it starts the engine and the registry mirror)"
STAND_INS = TESTS / "stand_ins"
UID = "10001:10001"  # the orchestrator's default docker.user
DOCKERFILE = """\
FROM {base}
COPY --chown={uid} workspace/ /workspace/
COPY {script} /{script}
ENTRYPOINT ["python3", "-u", "/{script}"]
"""


@dataclass(frozen=True)
class StandIns:
    """The engine's address (for the orchestrator's config) and the two images' tags."""

    host: str
    agent: str
    toolman: str


def engine_host() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


@contextmanager
def engine() -> Iterator[docker.DockerClient]:
    """A client of the real engine; `require` when none answers."""
    try:
        client = docker.DockerClient(base_url=engine_host(), timeout=120)
        client.ping()
    except (DockerException, OSError) as exc:
        require(False, f"no Docker engine answers at {engine_host()} ({exc}); {PREPARE}")
        raise
    try:
        yield client
    finally:
        client.close()


def base_image(client: docker.DockerClient) -> None:
    try:
        client.images.get(BASE_IMAGE)
    except ImageNotFound:
        try:
            client.images.pull(BASE_IMAGE)
        except APIError as exc:
            require(False, f"the base image {BASE_IMAGE} is not on the engine ({exc}); {PREPARE}")


def build(client: docker.DockerClient, script: str, context: Path) -> str:
    """An image running stand_ins/`script`, tagged for this run."""
    role = script.removesuffix(".py")
    directory = context / role
    (directory / "workspace").mkdir(parents=True)
    shutil.copy(STAND_INS / script, directory / script)
    dockerfile = DOCKERFILE.format(base=BASE_IMAGE, uid=UID, script=script)
    (directory / "Dockerfile").write_text(dockerfile)
    tag = f"orchestrator-conformance/{role}:{RUN_ID}"
    client.images.build(path=str(directory), tag=tag, rm=True, labels={RUN_LABEL: RUN_ID})
    return tag


@contextmanager
def stand_in_images(context: Path) -> Iterator[StandIns]:
    """Both images on the real engine for as long as the block runs."""
    with engine() as client:
        base_image(client)
        tags = [build(client, script, context) for script in ("agent.py", "toolman.py")]
        try:
            yield StandIns(engine_host(), *tags)
        finally:
            for tag in tags:
                with suppress(NotFound, APIError):
                    client.images.remove(tag, force=True)


def sweep(instance: str) -> None:
    """Remove the containers and volumes of the orchestrator instance `instance`."""
    with engine() as client:
        selector: dict[str, str | list[str] | bool] = {"label": f"{LABEL_INSTANCE}={instance}"}
        for container in client.containers.list(all=True, filters=selector):
            with suppress(NotFound, APIError):
                container.remove(force=True, v=True)
        for volume in client.volumes.list(filters=selector):
            with suppress(NotFound, APIError):
                volume.remove(force=True)


def signal_agent(task_id: str, signal: str) -> None:
    """Send `signal` to the task's agent container (the orchestrator's default names)."""
    with engine() as client:
        client.containers.get(f"orchestrator-{task_id}-agent").kill(signal=signal)
