"""The platform's images, built by buildkit's CLI from this working tree for end-to-end
tests, as a release job calls it (`python -m buildkit images ... --offline`),
and swept away afterwards: containers by label, tags by prefix (layers kept, they are
the build cache of the next run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, NotFound

from tests.e2e.support import REPO

BUILD_TIMEOUT = 1200  # seconds; a cold build of the images takes a minute or two


@dataclass(frozen=True)
class Image:
    """One `image` artifact of buildkit's JSON report."""

    name: str
    id: str
    version: str


def build_images(
    prefix: str, out: Path, services: Sequence[str], *, claude_image: bool = False
) -> dict[str, Image]:
    """Build the services' images (and the claude-code image) tagged `pod` under `prefix`;
    the result maps a service (or `claude-code`) to its image."""
    report_path, log_path = out / "report.json", out / "build.log"
    command = [sys.executable, "-m", "buildkit", "images", "--services", ",".join(services)]
    command += ["-t", "pod", "-r", prefix, "--offline", "--report", str(report_path)]
    # The engine backend: images for this engine only, whether or not buildx is installed
    # (the buildx backend has tests of its own).
    command += ["--image-backend", "engine"]
    command += ["--claude-image"] if claude_image else []
    with log_path.open("w") as log:
        done = subprocess.run(
            command,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ | {"BUILDKIT_OFFLINE": "1", "COLUMNS": "160"},
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
    assert done.returncode == 0, f"`{' '.join(command[1:])}` exited {done.returncode}:\n{tail}"
    report = json.loads(report_path.read_text())
    wanted = [*services, *(["claude-code"] if claude_image else [])]
    return {service: image_of(report, service) for service in wanted}


def image_of(report: dict[str, Any], service: str) -> Image:
    result = next(r for r in report["results"] if (r["service"], r["stage"]) == (service, "image"))
    assert result["status"] in ("ok", "cached"), result  # cached: built earlier, same inputs
    artifact = next(a for a in result["artifacts"] if a["kind"] == "image")
    assert artifact["name"] in artifact["tags"], artifact
    version = artifact.get("labels", {}).get("org.opencontainers.image.version", "")
    return Image(artifact["name"], artifact["id"], version)


def untag(client: docker.DockerClient, prefix: str) -> None:
    """Drop every tag under `prefix` (per-platform ones too), keeping the layers."""
    for image in client.images.list():
        for tag in image.tags:
            if tag.startswith(f"{prefix}/"):
                with suppress(APIError):
                    client.images.remove(tag, noprune=True)


def sweep(client: docker.DockerClient, label: str, value: str) -> None:
    """Remove every container (and volume) carrying `label=value`, running or not."""
    selector: dict[str, str | list[str] | bool] = {"label": f"{label}={value}"}
    for container in client.containers.list(all=True, filters=selector):
        with suppress(NotFound):
            container.remove(force=True, v=True)
    for volume in client.volumes.list(filters=selector):
        with suppress(NotFound, APIError):
            volume.remove(force=True)


def wait_until(ready: Callable[[], bool], timeout: float, what: str, step: float = 0.1) -> None:
    """Poll `ready` until it is true; AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(step)
