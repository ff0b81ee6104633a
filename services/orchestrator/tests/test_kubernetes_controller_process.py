"""`orchestrator controller`, the process the Deployment in deploy/ runs: the installed
console script against a Kubernetes API over real HTTP (kmock's emulator, the seam
described in k8s_emulator.py), its probes, a task launched, a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import TOKEN, console_script, eventually, free_port
from k8s_emulator import NAMESPACE, cluster
from lightkube.resources.batch_v1 import Job
from lightkube.resources.coordination_v1 import Lease
from test_kubernetes_job import MODEL_KEY

from orchestrator.backends.kubernetes.api import TaskRun
from orchestrator.backends.kubernetes.lease import LEASE_NAME

pytestmark = pytest.mark.anyio
WAIT = 15.0


async def test_the_controller_process_probes_launches_and_stops_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"agent": {"secrets": MODEL_KEY}}))
    async with cluster() as k8s:
        port = free_port()
        process = subprocess.Popen(
            [console_script("orchestrator"), "controller", "--server", k8s.url,
             "--namespace", NAMESPACE, "--identity", "replica-1", "--config", str(config),
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "ORCHESTRATOR_TOKEN": TOKEN},
        )  # fmt: skip
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

                async def ready() -> bool:
                    try:
                        return (await http.get("/ready")).status_code == 200
                    except httpx.TransportError:
                        return False

                await eventually(ready, timeout=WAIT, what="the controller's /ready")
                assert (await http.get("/health")).json()["status"] == "ok"
            await k8s.submit("p1", {"prompt": "hi"})

            async def launched() -> bool:
                return (await k8s.status("p1")).get("phase") == "starting"

            await eventually(launched, timeout=WAIT, what="TaskRun p1 to be starting")
            assert await k8s.exists(Job, "p1")
            client = {
                **os.environ,
                "ORCHESTRATOR_URL": f"http://127.0.0.1:{port}",
                "ORCHESTRATOR_TOKEN": TOKEN,
            }  # the client, unchanged, on TaskRuns
            shown = await anyio.run_process(
                [console_script("orchestrator"), "task", "get", "p1", "--json"],
                env=client, check=False,
            )  # fmt: skip
            assert shown.returncode == 0, shown.stderr
            assert json.loads(shown.stdout)["phase"] == "starting"
            submitted = await anyio.run_process(
                [console_script("orchestrator"), "task", "run", "--prompt", "hello", "--json"],
                env=client, check=False,
            )  # fmt: skip
            assert submitted.returncode == 0, submitted.stderr
            new_id = json.loads(submitted.stdout)["id"]
            assert await k8s.exists(TaskRun, new_id)
        finally:
            process.send_signal(signal.SIGTERM)

            async def exited() -> bool:  # the emulator keeps answering meanwhile
                return process.poll() is not None

            try:
                await eventually(exited, timeout=WAIT, what="the controller to exit on SIGTERM")
            finally:
                if process.poll() is None:  # never left behind, whatever failed
                    process.kill()
                    process.wait(timeout=WAIT)
        output = process.stdout.read() if process.stdout else ""
        # uvicorn shuts down gracefully, then exits by the signal it caught (-SIGTERM)
        assert process.returncode in (0, -signal.SIGTERM), output
        assert "Traceback" not in output
        lease = await k8s.client.get(Lease, LEASE_NAME, namespace=NAMESPACE)
        assert lease.spec is not None
        assert lease.spec.holderIdentity == ""  # released: another replica leads now


def test_a_model_key_from_the_controllers_environment_is_refused_at_start() -> None:
    result = subprocess.run(
        [console_script("orchestrator"), "controller", "--namespace", "agents"],
        capture_output=True, text=True, check=False, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    assert result.returncode == 2
    assert "agent.secrets.ANTHROPIC_API_KEY: on Kubernetes" in result.stderr


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"tasks": {"max_running": 8}}, "tasks.max_running: not applied on Kubernetes"),
        ({"toolman": {"env": {"T": {"env": "HOST_T"}}}}, "toolman.env.T: on Kubernetes"),
    ],
)
def test_config_kubernetes_would_drop_is_refused_at_start(
    tmp_path: Path, section: dict[str, object], problem: str
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"agent": {"secrets": MODEL_KEY}, **section}))
    result = subprocess.run(
        [console_script("orchestrator"), "controller", "--namespace", "agents",
         "--config", str(config)],
        capture_output=True, text=True, check=False, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    assert result.returncode == 2
    assert problem in result.stderr


def test_a_bad_namespace_is_refused_naming_the_option() -> None:
    result = subprocess.run(
        [console_script("orchestrator"), "controller", "--namespace", "Not_A_Name"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("orchestrator: error: --namespace")
