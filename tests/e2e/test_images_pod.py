"""The platform's own images, wired the way they are deployed: an agent container running
mcp-wrapper next to a toolman sidecar, the two sharing one network namespace (a pod).

What is real here, nothing faked:

- the images are built once per module by buildkit's CLI from this working tree
  (`python -m buildkit images --services toolman,mcp_wrapper --offline`) and run on the
  real Docker engine, tagged under a unique prefix on localhost:5000;
- the downstream is a real MCP server: the SDK test server of toolman's own tests
  (services/toolman/tests/peers/sdk_server.py, from the peers venv), serving Streamable
  HTTP on the host's loopback;
- toolman runs in its image with the host's network, listening on a free loopback port,
  with its config file mounted read-only at the image's default path and its agent named
  by `AGENT_NAME`;
- every wrapper container joins it with `--network container:<toolman>`, so toolman is
  on the wrapper's own `127.0.0.1`, as it is for a sidecar in a Kubernetes pod;
- the agent is the official MCP SDK's stdio client, whose server command is
  `docker run -i --rm ... <mcp-wrapper image>`.

Every container carries a label of this run and is removed by its fixture, and again by
a sweep at the end of the module, even when a test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from docker.errors import DockerException
from docker.models.containers import Container
from mcp import Client, ClientSession, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.e2e.images import Image, build_images, sweep, untag, wait_until
from tests.e2e.support import INSTALL_PEERS, PEERS, REPO, free_port, require, run, text_of
from tests.registries import SHARED_REGISTRY, answers

pytestmark = [pytest.mark.docker, pytest.mark.registry, pytest.mark.slow]

PREPARE = "run `bash ci/prepare-machine.sh`"
SDK_SERVER = REPO / "services" / "toolman" / "tests" / "peers" / "sdk_server.py"
AGENT = "e2e-agent"
LABEL = "dev.buildkit.e2e-run"
RUN_ID = uuid.uuid4().hex[:10]


@dataclass(frozen=True)
class Images:
    toolman: Image
    wrapper: Image


@dataclass(frozen=True)
class Sidecar:
    """The toolman container of one test: host network, listening on 127.0.0.1:port."""

    container: Container
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    @property
    def network(self) -> str:
        return f"container:{self.container.id}"

    def logs(self) -> str:
        return self.container.logs().decode(errors="replace")


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    require(shutil.which("docker") is not None, "the docker CLI is not on PATH", PREPARE)
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except DockerException as exc:
        require(False, f"no Docker engine answers ({exc})", PREPARE)
        raise
    try:
        yield client
    finally:
        sweep(client, LABEL, RUN_ID)
        client.close()


@pytest.fixture(scope="module", autouse=True)
def prerequisites(engine: docker.DockerClient, downstream: Downstream) -> None:
    """Every missing prerequisite skips (or fails) before a minute goes into building."""
    require(answers(SHARED_REGISTRY), f"no registry answers on {SHARED_REGISTRY}", PREPARE)


@pytest.fixture(scope="module")
def images(
    engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Images]:
    """Both images, built by buildkit's CLI exactly as a release job calls it (no push)."""
    prefix = f"localhost:5000/e2e-pod-{RUN_ID}/platform"
    try:
        found = build_images(prefix, tmp_path_factory.mktemp("images"), ["toolman", "mcp_wrapper"])
        built = Images(found["toolman"], found["mcp_wrapper"])
        for image in (built.toolman, built.wrapper):
            assert image.name.startswith(f"{prefix}/"), image
            assert engine.images.get(image.name).id == image.id, f"{image.name} is not {image.id}"
        yield built
    finally:
        sweep(engine, LABEL, RUN_ID)  # a container still using an image would keep its tag
        untag(engine, prefix)


@dataclass(frozen=True)
class Downstream:
    url: str
    pid: int


@pytest.fixture(scope="module")
def downstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Downstream]:
    """The SDK test server over Streamable HTTP on the host's loopback (a real MCP server)."""
    python = PEERS / "venv" / "bin" / "python"
    probe = [str(python), "-c", "import mcp.server"]
    ok = python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0
    require(ok, f"the MCP SDK is not installed in {PEERS}/venv", INSTALL_PEERS)
    port = free_port()
    log_path = tmp_path_factory.mktemp("downstream") / "sdk_server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(python), str(SDK_SERVER), "--http", str(port)], stdout=log, stderr=log
        )

    def listening() -> bool:
        assert process.poll() is None, log_path.read_text()
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
        except httpx.TransportError:
            return False
        return True

    try:
        wait_until(listening, 30, "the SDK test server listening")
        yield Downstream(f"http://127.0.0.1:{port}/mcp", process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def sidecar(
    engine: docker.DockerClient, images: Images, downstream: Downstream, tmp_path: Path
) -> Iterator[Sidecar]:
    """toolman in its image, fronting the SDK server; `e2e-agent` may use all but sdk_fail.

    Agents without a policy may use no server at all, so seeing any tool proves that the
    container's `AGENT_NAME` reached toolman. Docker runs the image's own HEALTHCHECK every
    second instead of every 15 s (the command is the image's).
    """
    config = tmp_path / "toolman.json"
    config.write_text(
        json.dumps(
            {
                "servers": {"sdk": {"url": downstream.url}},
                "agent_policies": {AGENT: {"blocked_tools": ["sdk_fail"]}},
                "default_policy": {"allowed_servers": []},
            }
        )
    )
    config.chmod(0o644)  # the image runs as 10001:10001
    port = free_port()
    container = engine.containers.create(
        images.toolman.name,
        name=f"e2e-toolman-{RUN_ID}-{port}",
        network_mode="host",
        environment={"TOOLMAN_HOST": "127.0.0.1", "TOOLMAN_PORT": str(port), "AGENT_NAME": AGENT},
        volumes={str(config): {"bind": "/etc/toolman/toolman.json", "mode": "ro"}},
        healthcheck={"interval": 1_000_000_000},
        labels={LABEL: RUN_ID},
    )
    try:
        container.start()
        running = Sidecar(container, port)

        def ready() -> bool:
            container.reload()
            assert container.status == "running", f"toolman stopped:\n{running.logs()}"
            try:
                return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, 60, "toolman's /ready answering 200")
        yield running
    finally:
        container.remove(force=True)


def run_wrapper(
    engine: docker.DockerClient, images: Images, toolman: Sidecar, *args: str
) -> tuple[int, str]:
    """What `docker run --rm --network container:<toolman> <wrapper> ARGS` does: status, stderr."""
    container = engine.containers.create(
        images.wrapper.name,
        list(args),
        network_mode=toolman.network,
        environment={"MCP_TOOLMAN_SERVER_URL": toolman.url, "MCP_WRAPPER_TIMEOUT": "10"},
        labels={LABEL: RUN_ID},
    )
    try:
        container.start()
        status = int(container.wait(timeout=30)["StatusCode"])
        return status, container.logs(stdout=False, stderr=True).decode(errors="replace")
    finally:
        container.remove(force=True)


@contextmanager
def agent_container(
    engine: docker.DockerClient, images: Images, toolman: Sidecar
) -> Iterator[Container]:
    """A long-lived agent container in the pod: mcp-wrapper idle on an open stdin."""
    container = engine.containers.create(
        images.wrapper.name,
        network_mode=toolman.network,
        environment={"MCP_TOOLMAN_SERVER_URL": toolman.url, "MCP_WRAPPER_TIMEOUT": "10"},
        stdin_open=True,
        labels={LABEL: RUN_ID},
    )
    try:
        container.start()
        yield container
    finally:
        container.remove(force=True)


def exec_check(container: Container) -> tuple[int, str]:
    result = container.exec_run(["mcp-wrapper", "--check"], stdout=False, stderr=True)
    assert isinstance(result.output, bytes)
    assert result.exit_code is not None
    return result.exit_code, result.output.decode(errors="replace")


def audit_lines(toolman: Sidecar) -> list[dict[str, Any]]:
    lines = (line for line in toolman.logs().splitlines() if '"toolman.audit"' in line)
    return [json.loads(line) for line in lines]


# -- the tests --------------------------------------------------------------------------


def test_agent_lists_and_calls_tools_through_the_wrapper_image_in_the_pod(
    engine: docker.DockerClient,
    images: Images,
    sidecar: Sidecar,
    downstream: Downstream,
    tmp_path: Path,
) -> None:
    """SDK stdio client → `docker run -i` mcp-wrapper → toolman container → SDK server."""
    name = f"e2e-wrapper-{RUN_ID}-{sidecar.port}"
    docker_run = ["run", "-i", "--rm", "--name", name, "--label", f"{LABEL}={RUN_ID}"]
    docker_run += ["--network", sidecar.network, "-e", f"MCP_TOOLMAN_SERVER_URL={sidecar.url}"]
    docker_run += ["-e", "MCP_WRAPPER_TIMEOUT=20", images.wrapper.name]
    env = {key: os.environ[key] for key in ("DOCKER_HOST",) if key in os.environ}
    params = StdioServerParameters(command="docker", args=docker_run, env=env)
    nonce = uuid.uuid4().hex

    async def scenario() -> None:
        # What the server offers, asked of it directly: through toolman, the same names
        # under the server's prefix, less the one the agent's policy blocks.
        async with Client(downstream.url, mode="legacy", cache=None) as direct:
            offered = {f"sdk_{tool.name}" for tool in (await direct.list_tools()).tools}
        assert {"sdk_add", "sdk_echo", "sdk_pid", "sdk_fail"} <= offered
        with (tmp_path / "wrapper.log").open("a") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                hello = await session.initialize()
                assert hello.server_info.version == images.toolman.version
                tools = {tool.name for tool in (await session.list_tools()).tools}
                assert tools == offered - {"sdk_fail"}
                added = await session.call_tool("sdk_add", {"a": 2, "b": 40})
                assert not added.is_error
                assert text_of(added) == "42"
                echoed = await session.call_tool("sdk_echo", {"text": nonce})
                assert text_of(echoed) == nonce
                # The answer comes from the very process on the host's loopback.
                assert text_of(await session.call_tool("sdk_pid", {})) == str(downstream.pid)
                with pytest.raises(MCPError) as refused:
                    await session.call_tool("sdk_fail", {"message": "must not run"})
                assert refused.value.error.code == -32602
                assert refused.value.error.message == "Unknown tool: sdk_fail"

    run(scenario)

    def audited() -> bool:
        seen = {(a["name"], a["decision"], a["outcome"]) for a in audit_lines(sidecar)}
        return {("sdk_add", "allowed", "ok"), ("sdk_fail", "blocked", "refused")} <= seen

    wait_until(audited, 10, f"toolman's audit lines for {AGENT}")
    assert {a["agent"] for a in audit_lines(sidecar)} == {AGENT}

    def removed() -> bool:
        return not engine.containers.list(all=True, filters={"name": name})

    wait_until(removed, 20, f"the wrapper container {name} exiting and being removed (--rm)")


def test_check_passes_in_the_pod_and_gives_one_line_once_toolman_is_stopped(
    engine: docker.DockerClient, images: Images, sidecar: Sidecar
) -> None:
    """`--check` as a probe: a fresh `docker run` in the pod, then inside a running agent
    container before and after the sidecar stops. (The engine refuses a new container in
    the namespace of a stopped one, so the agent container is started beforehand, as in a
    pod whose sidecar dies.)"""
    status, stderr = run_wrapper(engine, images, sidecar, "--check")
    assert status == 0, stderr
    ok_line = stderr.strip().splitlines()[-1]
    assert ok_line.startswith(f"mcp-wrapper: ok: toolman {images.toolman.version} at "), stderr
    assert sidecar.url in ok_line

    with agent_container(engine, images, sidecar) as agent:
        status, stderr = exec_check(agent)
        assert status == 0, stderr
        sidecar.container.stop(timeout=15)
        sidecar.container.reload()
        assert sidecar.container.attrs["State"]["ExitCode"] == 0, sidecar.logs()  # clean SIGTERM
        status, stderr = exec_check(agent)
        assert status == 1, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, stderr
        assert lines[0].startswith(
            f"mcp-wrapper: check failed: cannot connect to toolman at {sidecar.url}"
        ), stderr
        agent.reload()
        assert agent.status == "running"  # the agent outlives its sidecar


def test_toolman_image_healthcheck_passes_and_health_answers(
    engine: docker.DockerClient, images: Images, sidecar: Sidecar
) -> None:
    """The image's own HEALTHCHECK command, executed in the running sidecar, and the
    engine's verdict from running it on its own schedule."""
    test = engine.images.get(images.toolman.id).attrs["Config"]["Healthcheck"]["Test"]
    assert test[0] in ("CMD", "CMD-SHELL"), test
    command = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
    result = sidecar.container.exec_run(command)
    assert result.exit_code == 0, result.output

    health = httpx.get(f"http://127.0.0.1:{sidecar.port}/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["version"] == images.toolman.version

    def healthy() -> bool:
        sidecar.container.reload()
        state = sidecar.container.attrs["State"]
        assert state.get("Health", {}).get("Status") != "unhealthy", state
        return bool(state.get("Health", {}).get("Status") == "healthy")

    wait_until(healthy, 30, "the engine reporting toolman healthy")
