"""The platform as it is deployed, for the orchestrator's end-to-end tests.

Real, all of it: the images buildkit builds from this tree (orchestrator, toolman,
mcp-wrapper, claude-code with the real Claude Code binary) on the real Docker engine; a
toolman image with the reference time server (`mcp-server-time`, from the MCP peers'
venv) added, as an operator makes one; a network of the test's own; the orchestrator
either as its image (the Docker socket mounted) or as the installed wheel's console
script. The one fake is the model: no model API can be reached from these machines, so
Claude Code's `ANTHROPIC_BASE_URL` points at the scripted Messages API of
`model_api.py`, run in a container on the test's network (`http://model-api:8000`)
from the base image, its control port published on loopback.

Everything the tests start carries the label `LABEL=RUN_ID` (task containers carry the
orchestrator's instance label `e2e-RUN_ID`) and is swept at the end of the session.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx
from docker.errors import APIError, ImageNotFound, NotFound
from docker.models.containers import Container

from tests.e2e.images import Image, build_images, sweep, wait_until
from tests.e2e.support import INSTALL_PEERS, PEERS, REPO, WHEEL_CHECK, free_port, require

RUN_ID = uuid.uuid4().hex[:8]
LABEL = "dev.buildkit.e2e-run"
INSTANCE = f"e2e-{RUN_ID}"
INSTANCE_LABEL = "io.5dlabs.orchestrator.instance"
TOKEN = "e2e-orchestrator-token-4d2c"
MODEL_KEY_ENV = "E2E_ANTHROPIC_KEY"
MODEL_API = REPO / "tests" / "e2e" / "model_api.py"
BASE_IMAGE = "python:3.11-slim"
PREPARE = "run `bash ci/prepare-machine.sh`"


@dataclass(frozen=True)
class PlatformImages:
    orchestrator: Image
    toolman: Image
    wrapper: Image
    claude: Image
    toolman_time: str  # toolman + mcp-server-time, built by the test


def build_platform_images(engine: docker.DockerClient, prefix: str, out: Path) -> PlatformImages:
    built = build_images(prefix, out, ["orchestrator", "toolman", "mcp_wrapper"], claude_image=True)
    toolman = built["toolman"]
    return PlatformImages(
        orchestrator=built["orchestrator"],
        toolman=toolman,
        wrapper=built["mcp_wrapper"],
        claude=built["claude-code"],
        toolman_time=toolman_with_time_server(engine, toolman, f"{prefix}/toolman-time:pod"),
    )


def toolman_with_time_server(engine: docker.DockerClient, toolman: Image, tag: str) -> str:
    """toolman's image with the reference time server in /opt/mcp (its own site-packages,
    so its pins never meet toolman's): what an operator builds to give tasks a server."""
    site = next((PEERS / "venv" / "lib").glob("python3*/site-packages"), None)
    require(
        site is not None and (site / "mcp_server_time").is_dir(),
        f"mcp-server-time is not installed in {PEERS}/venv",
        INSTALL_PEERS,
    )
    assert site is not None
    with tempfile.TemporaryDirectory(prefix="toolman-time-") as context:
        shutil.copytree(site, Path(context) / "site-packages", symlinks=True)
        (Path(context) / "Dockerfile").write_text(
            f"FROM {toolman.id}\nCOPY site-packages /opt/mcp/site-packages\n"
        )
        engine.images.build(path=context, tag=tag, rm=True, labels={LABEL: RUN_ID})
    return tag


TIME_SERVER = {
    "command": "python3",
    "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
    "env": {"PYTHONPATH": "/opt/mcp/site-packages"},
}


def orchestrator_config(
    images: PlatformImages, network: str, state_dir: str, **tasks: Any
) -> dict[str, Any]:
    """The orchestrator's config file for these tests: agents reach the model API by its
    network alias with the scripted model's key (the operator's, as `agent.secrets`), and
    tasks may use the time server."""
    return {
        "state_dir": state_dir,
        "agent": {
            "image": images.claude.name,
            "env": {
                "ANTHROPIC_BASE_URL": "http://model-api:8000",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "ENABLE_TOOL_SEARCH": "false",
            },
            "secrets": {"ANTHROPIC_API_KEY": {"env": MODEL_KEY_ENV}},
        },
        "toolman": {
            "image": images.toolman_time,
            "config": {"servers": {"time": TIME_SERVER}},
        },
        "docker": {"network": network, "instance": INSTANCE},
        "tasks": {"ttl_seconds": 3600, "stop_grace_seconds": 3, **tasks},
        "task_secrets": {"env": [MODEL_KEY_ENV]},
    }


# -- the scripted model --------------------------------------------------------------------


@dataclass
class ModelServer:
    """model_api.py in a container on the test's network; its control API on loopback."""

    container: Container
    control: str

    def requests(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.control}/_control/requests", timeout=10)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found

    def holding(self) -> list[str]:
        held: list[str] = httpx.get(f"{self.control}/_control/holds", timeout=10).json()
        return held

    def release(self, key: str) -> None:
        httpx.post(f"{self.control}/_control/release/{key}", timeout=10).raise_for_status()

    def wait_holding(self, key: str, timeout: float = 120) -> None:
        wait_until(lambda: key in self.holding(), timeout, f"the model holding {key!r}", 0.2)

    def main_requests(self, key: str) -> list[dict[str, Any]]:
        return [r for r in self.requests() if r.get("main") and r.get("key") == key]


def start_model_server(engine: docker.DockerClient, network: str) -> ModelServer:
    try:
        engine.images.get(BASE_IMAGE)
    except ImageNotFound:
        try:
            engine.images.pull(BASE_IMAGE)
        except APIError as exc:
            require(False, f"the base image {BASE_IMAGE} cannot be pulled ({exc})", PREPARE)
    port = free_port()
    container = engine.containers.run(
        BASE_IMAGE,
        ["python3", "/model_api.py", "--host", "0.0.0.0", "--port", "8000"],
        name=f"e2e-model-api-{RUN_ID}",
        detach=True,
        network=network,
        ports={"8000/tcp": ("127.0.0.1", port)},
        volumes={str(MODEL_API): {"bind": "/model_api.py", "mode": "ro"}},
        labels={LABEL: RUN_ID},
    )
    engine.networks.get(network).disconnect(container)
    engine.networks.get(network).connect(container, aliases=["model-api"])
    server = ModelServer(container, f"http://127.0.0.1:{port}")

    def answers() -> bool:
        container.reload()
        assert container.status == "running", container.logs().decode(errors="replace")
        try:
            server.requests()
        except httpx.HTTPError:
            return False
        return True

    wait_until(answers, 30, "the scripted model API answering")
    return server


# -- the orchestrator ----------------------------------------------------------------------


@dataclass
class Api:
    """The task API over HTTP, as any client speaks it."""

    base_url: str
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def submit(self, body: dict[str, Any], **headers: str) -> dict[str, Any]:
        response = self.client.post("/api/v1/tasks", json=body, headers=headers)
        assert response.status_code == 201, response.text
        assert response.headers["Location"] == f"/api/v1/tasks/{response.json()['id']}"
        task: dict[str, Any] = response.json()
        return task

    def get(self, task_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        return task

    def wait(self, task_id: str, *phases: str, timeout: float = 180) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def reached() -> bool:
            seen.update(self.get(task_id))
            return seen["phase"] in phases

        wait_until(reached, timeout, f"task {task_id} reaching {phases} (last: {seen})", 0.1)
        return seen

    def logs(self, task_id: str, stream: str = "agent") -> str:
        response = self.client.get(f"/api/v1/tasks/{task_id}/logs", params={"stream": stream})
        assert response.status_code == 200, response.text
        return response.text

    def ready(self) -> int:
        try:
            return self.client.get("/ready", timeout=5).status_code
        except httpx.TransportError:
            return 0

    def close(self) -> None:
        self.client.close()


def task_body(prompt: str, **fields: Any) -> dict[str, Any]:
    """A task; its agent talks to the scripted model with the operator's key."""
    return {"prompt": prompt, **fields}


class OrchestratorContainer:
    """The orchestrator image, as the README runs it: the engine's socket mounted, its
    state on a volume owned by the image's user, its config read-only."""

    def __init__(
        self, engine: docker.DockerClient, image: str, network: str, workdir: Path
    ) -> None:
        self.engine, self.image, self.network = engine, image, network
        # A named volume, as in the README: it takes its owner from the image.
        self.state = engine.volumes.create(
            f"e2e-orchestrator-state-{RUN_ID}-{uuid.uuid4().hex[:6]}", labels={LABEL: RUN_ID}
        ).name
        self.config_path = workdir / "config.json"
        self.port = free_port()
        self.container: Container | None = None
        self.api = Api(f"http://127.0.0.1:{self.port}")

    def start(self, config: dict[str, Any]) -> OrchestratorContainer:
        self.config_path.write_text(json.dumps(config))
        self.config_path.chmod(0o644)
        socket = engine_socket()
        self.container = self.engine.containers.run(
            self.image,
            ["serve"],
            name=f"e2e-orchestrator-{RUN_ID}-{self.port}-{int(time.monotonic() * 1000)}",
            detach=True,
            network=self.network,
            ports={"8080/tcp": ("127.0.0.1", self.port)},
            group_add=[str(os.stat(socket).st_gid)],
            environment={"ORCHESTRATOR_TOKEN": TOKEN, MODEL_KEY_ENV: "sk-e2e-scripted"},
            volumes={
                socket: {"bind": "/var/run/docker.sock", "mode": "rw"},
                str(self.state): {"bind": "/var/lib/orchestrator", "mode": "rw"},
                str(self.config_path): {"bind": "/etc/orchestrator/config.json", "mode": "ro"},
            },
            labels={LABEL: RUN_ID},
        )
        wait_until(self._ready, 60, "the orchestrator container answering /ready", 0.1)
        return self

    def _ready(self) -> bool:
        assert self.container is not None
        self.container.reload()
        assert self.container.status == "running", self.logs()
        return self.api.ready() == 200

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would end it."""
        assert self.container is not None
        self.container.kill(signal="SIGKILL")
        self.container.wait(timeout=30)

    def logs(self) -> str:
        return "" if self.container is None else self.container.logs().decode(errors="replace")

    def client(self, *args: str) -> tuple[int, str, str]:
        """`docker exec <orchestrator> orchestrator task ARGS`: status, stdout, stderr."""
        assert self.container is not None
        done = subprocess.run(
            ["docker", "exec", str(self.container.name), "orchestrator", "task", *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return done.returncode, done.stdout, done.stderr

    def remove(self) -> None:
        if self.container is not None:
            with suppress(NotFound):
                self.container.remove(force=True)


class OrchestratorProcess:
    """The installed wheel's console script (build/wheel-check/orchestrator), on loopback."""

    def __init__(self, workdir: Path, environment: dict[str, str] | None = None) -> None:
        script = WHEEL_CHECK / "orchestrator" / "bin" / "orchestrator"
        require(
            os.access(script, os.X_OK),
            f"{script.relative_to(REPO)} is not installed",
            "build the wheels (`nox -s wheels`)",
        )
        self.script = script
        self.workdir = workdir
        self.port = free_port()
        self.env = os.environ | {"ORCHESTRATOR_TOKEN": TOKEN, MODEL_KEY_ENV: "sk-e2e-scripted"}
        self.env |= environment or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.api = Api(f"http://127.0.0.1:{self.port}")
        self.log_path = workdir / "orchestrator.log"

    def start(self, config: dict[str, Any], *, ready: bool = True) -> OrchestratorProcess:
        path = self.workdir / "config.json"
        path.write_text(json.dumps(config))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.script),
                    "serve",
                    "--config",
                    str(path),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )

        def answering() -> bool:
            assert self.process is not None
            assert self.process.poll() is None, self.logs()
            status = self.api.ready()
            return status == 200 if ready else status in (200, 503)

        wait_until(answering, 60, "the orchestrator answering /ready")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def engine_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    require(host.startswith("unix://"), f"DOCKER_HOST={host} is not a unix socket", PREPARE)
    return host.removeprefix("unix://")


def task_containers(engine: docker.DockerClient, task_id: str) -> list[Container]:
    return engine.containers.list(
        all=True, filters={"label": [f"io.5dlabs.orchestrator.task={task_id}"]}
    )


def task_leftovers(engine: docker.DockerClient, task_id: str) -> list[str]:
    """Names of the containers and volumes the task still has in the engine."""
    selector: dict[str, str | list[str] | bool] = {
        "label": [f"io.5dlabs.orchestrator.task={task_id}"]
    }
    found = engine.containers.list(all=True, filters=selector)
    containers = [str(c.name or c.id) for c in found]
    volumes = [v.name for v in engine.volumes.list(filters=selector)]
    return [*containers, *(v for v in volumes if v)]


@contextmanager
def e2e_network(engine: docker.DockerClient) -> Iterator[str]:
    name = f"e2e-tasks-{RUN_ID}"
    network = engine.networks.create(name, labels={LABEL: RUN_ID})
    try:
        yield name
    finally:
        sweep(engine, INSTANCE_LABEL, INSTANCE)
        sweep(engine, LABEL, RUN_ID)
        with suppress(NotFound):
            network.remove()
