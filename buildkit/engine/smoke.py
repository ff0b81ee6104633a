"""What build.sh did after a build, but failing instead of warning: start the image and
see it work. HTTP services must answer their health endpoint from the host, and the
image's own HEALTHCHECK command must pass inside it; other images must answer --version.
The container is always removed."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from docker.errors import APIError
from docker.models.containers import Container

from buildkit.config import Service
from buildkit.engine.client import Engine
from buildkit.errors import StageFailed

POLL_SECONDS = 0.2


class SmokeFailed(StageFailed):
    pass


def smoke_test(
    engine: Engine,
    service: Service,
    image: str,
    *,
    version: str,
    timeout: float,
    platform: str | None = None,
    on_line: Callable[[str], None] = lambda _line: None,
) -> str:
    """Run the image; return a one-line summary, or raise SmokeFailed with its logs."""
    if service.port is None:
        return smoke_version(
            engine, service, image, version=version, timeout=timeout, platform=platform
        )
    container = engine.run(
        image, ports={f"{service.port}/tcp": ("127.0.0.1", None)}, platform=platform
    )
    try:
        url = wait_for_health(container, service, timeout)
        on_line(f"smoke: {url} answered 200")
        healthcheck = engine.image(image)
        command = list(healthcheck.healthcheck if healthcheck else ())
        if command[:1] == ["CMD"]:
            exit_code, output = container.exec_run(command[1:])
            if exit_code != 0:
                text = output.decode(errors="replace") if isinstance(output, bytes) else ""
                raise SmokeFailed(
                    f"the image's HEALTHCHECK failed (exit {exit_code}) although {url} answered",
                    output=text,
                )
            on_line("smoke: HEALTHCHECK command passed inside the container")
        return f"{service.health_path} ok, HEALTHCHECK ok"
    except SmokeFailed as exc:
        exc.output = (exc.output + "\n" + container_logs(container)).strip()
        raise
    finally:
        engine.remove(container)


def wait_for_health(container: Container, service: Service, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            container.reload()
            if container.status in ("exited", "dead"):
                code = container.attrs.get("State", {}).get("ExitCode")
                raise SmokeFailed(
                    f"the container exited (code {code}) before {service.health_path} answered"
                )
            binding = (container.ports.get(f"{service.port}/tcp") or [{}])[0]
            if binding.get("HostPort"):
                url = f"http://127.0.0.1:{binding['HostPort']}{service.health_path}"
                try:
                    response = client.get(url)
                    if response.status_code == 200:
                        return url
                    last_error = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    last_error = f"{exc.__class__.__name__}"
            time.sleep(POLL_SECONDS)
    raise SmokeFailed(
        f"{service.health_path} did not answer 200 within {timeout:.0f}s ({last_error})"
    )


def smoke_version(
    engine: Engine, service: Service, image: str, *, version: str, timeout: float,
    platform: str | None,
) -> str:  # fmt: skip
    container = engine.run(image, command=["--version"], platform=platform)
    try:
        try:
            exit_code = int(container.wait(timeout=timeout)["StatusCode"])
        except (APIError, OSError) as exc:  # the wait timed out or the engine refused
            raise SmokeFailed(
                f"`{service.script} --version` did not finish within {timeout:.0f}s: {exc}"
            ) from exc
        output = container_logs(container)
        if exit_code != 0 or version not in output:
            raise SmokeFailed(
                f"`{service.script} --version` in the image exited {exit_code} "
                f"without reporting {version}",
                output=output,
            )
        return f"--version ok ({output.strip().splitlines()[-1]})"
    finally:
        engine.remove(container)


def container_logs(container: Container) -> str:
    try:
        return bytes(container.logs(tail=40)).decode(errors="replace")
    except APIError:
        return ""
