"""The release path, measured side by side in one run (`nox -s bench -- release`):

    buildx cold / warm     a two-platform build + push of the three images with the buildx
                           backend: cold with an empty BuildKit cache and no step record,
                           warm the same command again
    engine cold / warm     the same with the engine backend, its images removed first
    buildx, registry cache a cold rebuild of a new commit (BuildKit cache emptied) with
                           `buildx_cache = true`, its registry cache written by the run
                           before, against the same without a registry cache
    no-op --no-docker      `nox -s build_all -- --no-docker`: cold (no .nox, no build/
                           state) once, then warm five times: the everyday path

Both backends build on the engine with the containerd image store (ci/engines.sh), the
only one where buildx's `docker` driver builds two platforms; each measurement pushes to a
registry of its own (docker-registry on a free loopback port, empty storage), so "bytes
uploaded" is what that registry stored. Everything runs on a copy of the repository
(committed and tagged there) and offline (build/wheelhouse, uv's cache).

    python bench/release_bench.py [--rounds 3] [--json build/bench/release.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.build_bench import snapshot  # noqa: E402
from tests.engines import CONTAINERD_STORE_HOST  # noqa: E402
from tests.registries import private_registry  # noqa: E402

TAG = "v1.0.0"
BOTH = "linux/amd64,linux/arm64"
NOOP_ROUNDS = 5
COLD_ATTEMPTS = 3  # a cold run that fails (a flaky test of a service) is run again
NOOP_GOALS = {"warm_seconds": 2.0, "warm_ratio": 0.05}


def run(argv: list[str], copy: Path, log: Path, env: dict[str, str] | None = None) -> float:
    """Seconds `argv` took in the copy, offline; `env` adds variables ("" removes one)."""
    merged = {**os.environ, "BUILDKIT_OFFLINE": "1", "UV_OFFLINE": "1", "COLUMNS": "160"}
    merged["MCP_PEERS_DIR"] = os.environ.get("MCP_PEERS_DIR", str(ROOT / "build" / "mcp-peers"))
    merged["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{merged['PATH']}"
    merged.update(env or {})
    merged = {name: value for name, value in merged.items() if value != ""}
    started = time.monotonic()
    with log.open("a") as handle:
        handle.write(f"\n$ {' '.join(argv)}\n")
        handle.flush()
        subprocess.run(argv, cwd=copy, env=merged, stdout=handle, stderr=subprocess.STDOUT,
                       check=True, timeout=3600)  # fmt: skip
    return time.monotonic() - started


def stored_bytes(storage: Path) -> int:
    blobs = storage / "docker" / "registry" / "v2" / "blobs"
    return sum(path.stat().st_size for path in blobs.rglob("data")) if blobs.is_dir() else 0


def containerd_engine() -> dict[str, str]:
    return {"DOCKER_HOST": CONTAINERD_STORE_HOST}


def forget(copy: Path, backend: str) -> None:
    """Cold: no step record, no images of this bench, and (buildx) no BuildKit cache."""
    subprocess.run(["rm", "-rf", str(copy / "build" / "cache")], check=True)
    host = ["-H", CONTAINERD_STORE_HOST]
    listed = subprocess.run(
        ["docker", *host, "images", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    ours = [ref for ref in listed if ref.startswith("localhost:") and "/bench-" in ref]
    if ours:
        subprocess.run(["docker", *host, "rmi", "-f", *ours], capture_output=True, check=False)
    if backend == "buildx":
        subprocess.run(["docker", *host, "buildx", "prune", "-af"], capture_output=True,
                       check=True)  # fmt: skip


@contextmanager
def registry(work: Path) -> Iterator[tuple[str, Path]]:
    storage = Path(tempfile.mkdtemp(dir=work, prefix="registry-"))
    with private_registry(storage) as started:
        yield started.address.replace("127.0.0.1", "localhost"), storage / "data"


def release(copy: Path, backend: str, log: Path, *, cache: bool = False) -> dict[str, float]:
    """One cold and one warm push of the three images; seconds and bytes stored."""
    images = ["python", "-m", "buildkit", "images", "-t", TAG, "-p", "--platform", BOTH,
              "--image-backend", backend, "--offline"]  # fmt: skip
    with registry(copy.parent) as (address, storage):
        forget(copy, backend)
        target = ["-r", f"{address}/bench-{backend}"]
        cold = run([*images, *target], copy, log, containerd_engine())
        cold_bytes = stored_bytes(storage)
        warm = run([*images, *target], copy, log, containerd_engine())
        figures = {
            "cold_seconds": cold,
            "warm_seconds": warm,
            "cold_bytes": float(cold_bytes),
            "warm_bytes": float(stored_bytes(storage) - cold_bytes),
        }
        if backend == "buildx":
            figures |= cache_effect(copy, images, target, log, storage)
    return figures


def cache_effect(
    copy: Path, images: list[str], target: list[str], log: Path, storage: Path
) -> dict[str, float]:
    """A new commit rebuilt with an empty BuildKit cache, without and with the registry
    cache (written by a run before it); the other run's state is what it starts from."""
    figures = {}
    pyproject = copy / "pyproject.toml"
    original = pyproject.read_text()
    for label, enabled in (("without_registry_cache", False), ("with_registry_cache", True)):
        text = original.replace("[tool.buildkit]\n", "[tool.buildkit]\nbuildx_cache = true\n")
        pyproject.write_text(text if enabled else original)
        commit(copy, f"bench: {label}")
        run([*images, *target], copy, log, containerd_engine())  # writes the cache (if on)
        commit(copy, f"bench: {label}, a new revision")
        forget(copy, "buildx")
        before = stored_bytes(storage)
        figures[f"{label}_seconds"] = run([*images, *target], copy, log, containerd_engine())
        figures[f"{label}_bytes"] = float(stored_bytes(storage) - before)
    pyproject.write_text(original)
    commit(copy, "bench: back to the project's settings")
    return figures


def commit(copy: Path, message: str) -> None:
    for argv in (["add", "-A"], ["-c", "user.email=bench@example.invalid", "-c",
                 "user.name=bench", "commit", "-q", "--allow-empty", "-m", message]):  # fmt: skip
        subprocess.run(["git", *argv], cwd=copy, check=True)


def cold_state(copy: Path) -> None:
    """No nox environment, no dist/, nothing under build/ but the wheelhouse."""
    for name in (".nox", "dist"):
        subprocess.run(["rm", "-rf", str(copy / name)], check=True)
    for child in (copy / "build").iterdir():
        if child.name not in ("wheelhouse", "claude-code"):
            subprocess.run(["rm", "-rf", str(child)], check=True)


def noop(copy: Path, log: Path) -> dict[str, float]:
    """`nox -s build_all -- --no-docker`: cold once, then warm NOOP_ROUNDS times. A first,
    untimed run may use the network, so that uv's cache holds every package (the timed
    ones are offline)."""
    argv = ["nox", "-s", "build_all", "--", "--no-docker"]
    cold_state(copy)
    run(argv, copy, log, {"UV_OFFLINE": "", "BUILDKIT_OFFLINE": ""})
    for attempt in range(1, COLD_ATTEMPTS + 1):
        cold_state(copy)
        try:
            cold = run(argv, copy, log)
            break
        except subprocess.CalledProcessError:  # a service's own flaky test: see the log
            if attempt == COLD_ATTEMPTS:
                raise
    warm = [run(argv, copy, log) for _ in range(NOOP_ROUNDS)]
    return {"cold_seconds": cold, "cold_attempts": attempt, "warm_seconds": statistics.median(warm),
            "warm_ratio": statistics.median(warm) / cold}  # fmt: skip


def export(ref: str, target: Path) -> Path:
    """Commit `ref` of this repository, with build/wheelhouse, committed and tagged in
    `target` (as `snapshot` does for the working tree)."""
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    (target / "build").mkdir(exist_ok=True)
    subprocess.run(["cp", "-a", str(ROOT / "build" / "wheelhouse"), str(target / "build")],
                   check=True)  # fmt: skip
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=target, check=True)
    commit(target, f"bench: {ref}")
    subprocess.run(["git", "tag", "v1.0.0"], cwd=target, check=True)
    return target


def add_test_extra(copy: Path, service: str, requirement: str) -> None:
    pyproject = copy / "services" / service / "pyproject.toml"
    text = pyproject.read_text()
    start = text.index("test = [") + len("test = [")
    pyproject.write_text(f"{text[:start]}{json.dumps(requirement)}, {text[start:]}")
    commit(copy, f"bench: {requirement} in {service}'s test extras")


def median_of(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma-separated: release, noop")
    parser.add_argument(
        "--ref",
        help="measure this commit (git archive) instead of the working tree as git sees it",
    )
    parser.add_argument(
        "--test-extra",
        action="append",
        default=[],
        metavar="SERVICE=REQUIREMENT",
        help="add a requirement to a service's test extras in the copy only (to measure "
        "while a service's own checks are red for want of it); reported in the JSON",
    )
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    work = Path(tempfile.mkdtemp(prefix="release-bench-"))
    copy = export(args.ref, work / "platform") if args.ref else snapshot(work / "platform")
    log = work / "release-bench.log"
    print(f"working in {work}; log {log}", flush=True)
    results: dict[str, Any] = {"rounds": args.rounds, "copy_patches": args.test_extra}
    for patch in args.test_extra:
        add_test_extra(copy, *patch.split("=", 1))
    if "release" not in skip:
        for backend in ("buildx", "engine"):
            rounds = [release(copy, backend, log) for _ in range(args.rounds)]
            results[backend] = median_of(rounds)
        results["ratios"] = {
            "engine_cold_over_buildx_cold": results["engine"]["cold_seconds"]
            / results["buildx"]["cold_seconds"],
            "buildx_warm_over_cold": results["buildx"]["warm_seconds"]
            / results["buildx"]["cold_seconds"],
            "engine_warm_over_cold": results["engine"]["warm_seconds"]
            / results["engine"]["cold_seconds"],
            "registry_cache": results["buildx"]["with_registry_cache_seconds"]
            / results["buildx"]["without_registry_cache_seconds"],
        }
    if "noop" not in skip:
        results["noop"] = noop(copy, log)
        results["noop"]["goals_met"] = all(
            results["noop"][name] <= goal for name, goal in NOOP_GOALS.items()
        )
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
