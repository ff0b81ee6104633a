"""The pair of one task: the toolman container that owns the network namespace and the
agent container that joins it (`network_mode=container:<toolman>`), both created with
the task's workspace volume and hardened alike; what each needs is written into it
through the engine's archive API; then toolman's `/ready` is awaited on its address.

The volume is created empty and mounted first where the agent image has `/workspace`,
so it takes that directory's owner; the toolman config goes in root-owned and 0444
(toolman reads it and cannot change it), the prompt owned by the agent's user and 0400.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import suppress
from typing import Any, BinaryIO

import docker
import httpx
from docker.errors import APIError, ImageNotFound
from docker.models.containers import Container

from orchestrator.backends import workspace
from orchestrator.backends.base import (
    PROMPT_PATH,
    TOOLMAN_PORT,
    TOOLMAN_URL,
    WORKSPACE,
    Launch,
    LaunchCancelled,
    LaunchError,
)
from orchestrator.backends.docker.engine import Engine, engine_down, explain
from orchestrator.backends.docker.options import DockerOptions

TOOLMAN_CONFIG_DIR = "/etc/toolman"


def create_pair(
    client: docker.DockerClient, options: DockerOptions, launch: Launch, files: BinaryIO
) -> tuple[Container, Container]:
    for image in (options.toolman_image, options.agent_image):
        try:
            client.images.get(image)
        except ImageNotFound:
            raise LaunchError(
                f"image {image} is not on the Docker engine; build it "
                "(`nox -s build_all -- --claude-image`) or pull it, or set "
                "agent.image / toolman.image in the orchestrator's config"
            ) from None
    volume = options.name(launch.task_id, "workspace")
    client.volumes.create(volume, labels=options.labels(launch, "workspace"))
    mounts = {volume: {"bind": WORKSPACE, "mode": "rw"}}
    hardening: dict[str, Any] = {
        "user": options.user,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "pids_limit": options.pids_limit,
    }
    try:
        toolman = client.containers.create(
            options.toolman_image,
            name=options.name(launch.task_id, "toolman"),
            environment={**options.toolman_env, "AGENT_NAME": launch.agent_name},
            labels=options.labels(launch, "toolman"),
            network=options.network,
            volumes=mounts,
            **limits(options.toolman_cpu, options.toolman_memory_bytes),
            **hardening,
        )
        env = {
            **launch.env,
            "MCP_TOOLMAN_SERVER_URL": TOOLMAN_URL,
            "TASK_ID": launch.task_id,
            "AGENT_NAME": launch.agent_name,
        }
        agent = client.containers.create(
            options.agent_image,
            command=["direct", "--task-file", PROMPT_PATH, "--", *launch.agent_args],
            name=options.name(launch.task_id, "agent"),
            environment=env,
            labels=options.labels(launch, "agent"),
            network_mode=f"container:{toolman.id}",
            volumes=mounts,
            working_dir=WORKSPACE,
            **limits(launch.cpu, launch.memory_bytes),
            **hardening,
        )
        config = json.dumps(launch.toolman_config, indent=2).encode()
        toolman.put_archive(
            TOOLMAN_CONFIG_DIR.rsplit("/", 1)[0],
            workspace.single_file(
                "toolman/toolman.json", config, uid=0, dir_mode=0o755, file_mode=0o444
            ),
        )
        agent.put_archive(WORKSPACE, files)
        agent.put_archive(
            "/",
            workspace.single_file(
                PROMPT_PATH.lstrip("/"),
                launch.prompt.encode(),
                uid=options.uid,
                dir_mode=0o700,
                file_mode=0o400,
            ),
        )
    except APIError as exc:
        if exc.status_code is not None and exc.status_code >= 500 and engine_down(exc):
            raise
        raise LaunchError(f"the task's containers could not be created: {explain(exc)}") from exc
    return toolman, agent


async def until_ready(
    engine: Engine,
    http: httpx.AsyncClient,
    options: DockerOptions,
    toolman: Container,
    cancel: asyncio.Event,
) -> None:
    """Poll toolman's /ready on its address; fail fast (with its log) if it exits."""
    deadline = time.monotonic() + options.ready_timeout_seconds
    address = ""
    checked = 0.0
    while True:
        if cancel.is_set():
            raise LaunchCancelled("cancelled before the agent started")
        now = time.monotonic()
        if not address or now - checked > 0.5:
            await engine.call(toolman.reload)
            checked = now
            if toolman.status not in ("running", "created"):
                tail = await engine.call(toolman.logs, tail=20)
                raise LaunchError(
                    f"toolman exited before it was ready (exit code "
                    f"{toolman.attrs['State'].get('ExitCode')}); its last lines:\n"
                    + tail.decode(errors="replace").strip()
                )
            networks = toolman.attrs["NetworkSettings"].get("Networks") or {}
            address = (networks.get(options.network) or {}).get("IPAddress", "")
        if address:
            with suppress(httpx.HTTPError):
                response = await http.get(f"http://{address}:{TOOLMAN_PORT}/ready", timeout=2.0)
                if response.status_code == 200:
                    return
        if now > deadline:
            raise LaunchError(
                f"toolman was not ready within {options.ready_timeout_seconds:g} s "
                f"(toolman.ready_timeout_seconds); "
                + ("it has no address" if not address else f"polled http://{address}:3000")
                + f" on network {options.network!r} — the orchestrator must be "
                "able to reach that network"
            )
        await asyncio.sleep(0.05)


def limits(cpu: float | None, memory: int | None) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    if cpu is not None:
        limits["nano_cpus"] = int(cpu * 1e9)
    if memory is not None:
        limits["mem_limit"] = memory
        limits["memswap_limit"] = memory  # no swap beyond the limit, as in Kubernetes
    return limits
