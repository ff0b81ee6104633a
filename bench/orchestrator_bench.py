"""Benchmark: how fast the orchestrator starts a task, how fast its API answers, its memory.

    python bench/orchestrator_bench.py [--quick] [--json PATH]

Needs a Docker engine, the MCP peers and the images (built here with buildkit, like the
end-to-end tests: tests/e2e/deployment.py); the installed wheel's orchestrator
(build/wheel-check/orchestrator) runs on 127.0.0.1. Everything is started here and
removed at the end; every wait has a deadline.

1. Submit -> agent running, one task at a time (real claude-code agent, scripted model,
   real toolman): p50/p95 and its parts as the controller logs them (prepare = workspace
   and containers created, toolman ready, agent started), without and with a stdio MCP
   server (the time server) in the task's policy. Baseline, same run: the same pair
   started directly with the docker SDK (create both, start toolman, poll /ready, start
   the agent) — what any launcher pays.
2. API latency: GET /api/v1/tasks/{id} and POST /api/v1/tasks at 1 and 16 concurrent
   clients, against an orchestrator whose engine is unreachable (tasks stay pending, so
   only the API is measured). Baseline, same server: GET /health.
3. Idle RSS of the orchestrator process after start-up and after the API rounds.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.e2e import deployment  # noqa: E402 - the deployed platform, shared with the e2e tests
from tests.e2e.images import sweep, untag, wait_until  # noqa: E402
from tests.e2e.model_api import marker  # noqa: E402

LAUNCH = (
    r"task {id} running ([\d.]+) s after submission: prepare ([\d.]+) s, toolman ready "
    r"([\d.]+) s, agent start ([\d.]+) s"
)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 2),
        "p95_ms": round(percentile(samples, 0.95) * 1000, 2),
        "n": len(samples),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for {pid}")


# -- 1. submit -> agent running --------------------------------------------------------------


def task_starts(
    orchestrator: deployment.OrchestratorProcess, rounds: int, tools: dict[str, Any]
) -> dict[str, Any]:
    parts: list[tuple[float, ...]] = []
    for n in range(rounds):
        body = deployment.task_body(marker("text", text=f"bench {n}"), tools=tools)
        task = orchestrator.api.submit(body)
        done = orchestrator.api.wait(task["id"], "succeeded", "failed", timeout=120)
        assert done["phase"] == "succeeded", done
        line = re.search(LAUNCH.format(id=task["id"]), orchestrator.logs())
        assert line is not None, f"no launch line for {task['id']}"
        parts.append(tuple(float(value) for value in line.groups()))
    names = ("submit_to_running", "prepare", "toolman_ready", "agent_start")
    return {name: summary([row[i] for row in parts]) for i, name in enumerate(names)}


def direct_starts(
    engine: docker.DockerClient, images: deployment.PlatformImages, network: str, rounds: int
) -> dict[str, Any]:
    """The same pair started straight through the docker SDK, no orchestrator."""
    samples: list[float] = []
    http = httpx.Client(timeout=2)
    for n in range(rounds):
        name = f"bench-direct-{deployment.RUN_ID}-{n}"
        began = time.monotonic()
        toolman = engine.containers.create(
            images.toolman_time,
            name=f"{name}-toolman",
            network=network,
            environment={"AGENT_NAME": "bench"},
            labels={deployment.LABEL: deployment.RUN_ID},
        )
        agent = engine.containers.create(
            images.claude.name,
            ["direct", "--task", marker("text", text="direct")],
            name=f"{name}-agent",
            network_mode=f"container:{toolman.id}",
            environment={"ANTHROPIC_BASE_URL": "http://model-api:8000", "ANTHROPIC_API_KEY": "x"},
            labels={deployment.LABEL: deployment.RUN_ID},
        )
        toolman.start()
        toolman.reload()
        address = toolman.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]

        def ready(address: str = address) -> bool:
            try:
                return http.get(f"http://{address}:3000/ready").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 60, "toolman ready", 0.05)
        agent.start()
        samples.append(time.monotonic() - began)
        agent.wait(timeout=60)
        for container in (agent, toolman):
            container.remove(force=True)
    return {"submit_to_running": summary(samples)}


# -- 2. API latency ----------------------------------------------------------------------------


def api_latency(api: deployment.Api, clients: int, requests: int) -> dict[str, Any]:
    created = api.submit(deployment.task_body("bench"))
    body = deployment.task_body("bench post")

    def timed(method: str, path: str, payload: dict[str, Any] | None = None) -> float:
        started = time.perf_counter()
        response = api.client.request(method, path, json=payload)
        elapsed = time.perf_counter() - started
        assert response.status_code < 300, response.text
        return elapsed

    calls: dict[str, Callable[[int], float]] = {
        "GET /health": lambda _: timed("GET", "/health"),
        "GET /api/v1/tasks/{id}": lambda _: timed("GET", f"/api/v1/tasks/{created['id']}"),
        "POST /api/v1/tasks": lambda _: timed("POST", "/api/v1/tasks", body),
    }
    results: dict[str, Any] = {}
    for name, call in calls.items():
        for n in range(min(50, requests)):  # warm the connections and caches
            call(n)
        with ThreadPoolExecutor(max_workers=clients) as pool:
            began = time.monotonic()
            samples = list(pool.map(call, range(requests)))
            wall = time.monotonic() - began
        results[name] = {**summary(samples), "per_second": round(requests / wall)}
    return results


# -- the run ------------------------------------------------------------------------------------


def bench(quick: bool) -> dict[str, Any]:
    engine = docker.from_env(timeout=120)
    prefix = f"localhost:5000/bench-{deployment.RUN_ID}/platform"
    rounds = 5 if quick else 20
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="orchestrator-bench-") as scratch:
        work = Path(scratch)
        try:
            images = deployment.build_platform_images(engine, prefix, work)
            with deployment.e2e_network(engine) as network:
                deployment.start_model_server(engine, network)
                config = deployment.orchestrator_config(
                    images, network, str(work / "state"), ttl_seconds=0
                )
                running = deployment.OrchestratorProcess(work).start(config)
                try:
                    result["start_no_servers"] = task_starts(running, rounds, {})
                    result["start_time_server"] = task_starts(
                        running, rounds, {"servers": ["time"]}
                    )
                finally:
                    running.stop()
                result["start_direct_baseline"] = direct_starts(engine, images, network, rounds)
            idle = deployment.OrchestratorProcess(
                work / "api", {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
            )
            (work / "api").mkdir()
            idle.start(
                deployment.orchestrator_config(images, "bridge", str(work / "api" / "state")),
                ready=False,
            )
            try:
                assert idle.process is not None
                settle = threading.Event()
                settle.wait(2)  # memory after start-up settles: not a condition to poll
                result["rss_idle_mb"] = rss_mb(idle.process.pid)
                requests = 200 if quick else 2000
                result["api_1_client"] = api_latency(idle.api, 1, requests)
                result["api_16_clients"] = api_latency(idle.api, 16, requests)
                result["rss_after_api_mb"] = rss_mb(idle.process.pid)
            finally:
                idle.stop()
        finally:
            sweep(engine, deployment.LABEL, deployment.RUN_ID)
            sweep(engine, deployment.INSTANCE_LABEL, deployment.INSTANCE)
            untag(engine, prefix)
    base = result["start_direct_baseline"]["submit_to_running"]["p50_ms"]
    for key in ("start_no_servers", "start_time_server"):
        result[key]["ratio_to_direct_p50"] = round(
            result[key]["submit_to_running"]["p50_ms"] / base, 2
        )
    for key in ("api_1_client", "api_16_clients"):
        health = result[key]["GET /health"]["p50_ms"]
        for name in ("GET /api/v1/tasks/{id}", "POST /api/v1/tasks"):
            result[key][name]["ratio_to_health_p50"] = round(
                result[key][name]["p50_ms"] / health, 2
            )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    result = bench(args.quick)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
