"""Build speed, measured in one run on one machine (`nox -s bench -- build`):

    cold       `nox -s build_all` (images included) with no .nox, no build/ state, and none
               of its images in the engine (uv's cache and build/wheelhouse stay: no network)
    warm       the same command again, nothing changed
    touched    again, after one file of one service changed (each service in turn)
    baseline   bench/sequential-build.sh: the same commands one after another, no skipping,
               as build-all.sh did (same starting state as cold)

It works on a copy of the repository (the working tree as git sees it, committed and tagged
in the copy), prints medians over --rounds and the ratios, and writes them as JSON.

    python bench/build_bench.py [--rounds 3] [--touch orchestrator,toolman,mcp_wrapper]
                                [--json build/bench/build.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from buildkit.gitinfo import source_files  # noqa: E402

PREFIX = "localhost:5000/bench"
TAG = "bench"
GOALS = {"warm_seconds": 5.0, "warm_ratio": 0.10, "touched_ratio": 0.40, "cold_ratio": 0.70}


def snapshot(target: Path) -> Path:
    for source in source_files(ROOT, ROOT):
        if source.is_file():
            destination = target / source.relative_to(ROOT)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    shutil.copytree(ROOT / "build" / "wheelhouse", target / "build" / "wheelhouse")
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.email=bench@example.invalid", "-c", "user.name=bench", "commit",
                  "-q", "-m", "bench snapshot"], ["tag", "v1.0.0"]):  # fmt: skip
        subprocess.run(["git", *argv], cwd=target, check=True)
    return target


def reset(copy: Path) -> None:
    """The cold state: no nox environments, no buildkit state, no images of this bench."""
    for name in (".nox", "dist"):
        shutil.rmtree(copy / name, ignore_errors=True)
    for child in (copy / "build").iterdir():
        if child.name != "wheelhouse":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    client = docker.from_env()
    ours = {
        str(image.id)
        for image in client.images.list()
        if any(tag.startswith(PREFIX + "/") for tag in image.tags)
    }
    for container in client.containers.list(all=True):
        if container.attrs.get("Image") in ours:
            container.remove(force=True)
    for image_id in ours:
        client.images.remove(image_id, force=True)
    client.close()


def timed(argv: list[str], copy: Path, log: Path) -> float:
    env = {
        **os.environ,
        "BUILDKIT_OFFLINE": "1",
        "UV_OFFLINE": "1",
        "COLUMNS": "160",
        # the services' tests talk to the real MCP servers ci/install-mcp-peers.sh made
        "MCP_PEERS_DIR": os.environ.get("MCP_PEERS_DIR", str(ROOT / "build" / "mcp-peers")),
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    started = time.monotonic()
    with log.open("a") as handle:
        handle.write(f"\n$ {' '.join(argv)}\n")
        handle.flush()
        subprocess.run(
            argv,
            cwd=copy,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=3600,
        )
    return time.monotonic() - started


def touch(copy: Path, service: str, round_number: int) -> None:
    target = copy / "services" / service / "src" / service / "__init__.py"
    # Two blank lines keep ruff format content after a top-level function or class.
    target.write_text(target.read_text() + f"\n\n# touched by the bench, round {round_number}\n")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--touch",
        default="orchestrator,toolman,mcp_wrapper",
        help="the services whose file changes, one rerun each",
    )
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    build_all = ["nox", "-s", "build_all", "--", "-r", PREFIX, "-t", TAG]
    touched = [name.strip() for name in args.touch.split(",") if name.strip()]
    times: dict[str, list[float]] = {"baseline": [], "cold": [], "warm": []}
    times.update({f"touched {name}": [] for name in touched})
    with tempfile.TemporaryDirectory(prefix="buildkit-bench-") as scratch:
        copy = snapshot(Path(scratch) / "platform")
        log = Path(scratch) / "bench.log"
        try:
            for number in range(1, args.rounds + 1):
                reset(copy)
                times["baseline"].append(
                    timed(["bash", "bench/sequential-build.sh", PREFIX, TAG], copy, log)
                )
                reset(copy)
                times["cold"].append(timed(build_all, copy, log))
                times["warm"].append(timed(build_all, copy, log))
                for name in touched:
                    touch(copy, name, number)
                    times[f"touched {name}"].append(timed(build_all, copy, log))
                print(
                    f"round {number}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items()),
                    flush=True,
                )
                subprocess.run(["git", "checkout", "-q", "--", "."], cwd=copy, check=True)
        except subprocess.CalledProcessError:
            print(log.read_text()[-4000:], file=sys.stderr)
            raise
        finally:
            reset(copy)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratios = {
        "cold / baseline": (medians["cold"] / medians["baseline"], GOALS["cold_ratio"]),
        "warm / cold": (medians["warm"] / medians["cold"], GOALS["warm_ratio"]),
        **{
            f"{name} / cold": (medians[name] / medians["cold"], GOALS["touched_ratio"])
            for name in times
            if name.startswith("touched")
        },
    }
    figures = {
        "rounds": args.rounds,
        "seconds": times,
        "median_seconds": medians,
        "ratios": {name: value for name, (value, _) in ratios.items()},
    }
    print(f"\nmedians over {args.rounds} rounds (seconds):")
    for name, values in times.items():
        runs = " ".join(f"{value:.1f}" for value in values)
        print(f"  {name:<22} {medians[name]:7.1f}   runs: {runs}")
    print("ratios (goal):")
    for name, (value, goal) in ratios.items():
        print(f"  {name:<29} {value:6.3f}  (<= {goal}: {'met' if value <= goal else 'NOT met'})")
    warm_ok = "met" if medians["warm"] <= GOALS["warm_seconds"] else "NOT met"
    print(f"  {'warm seconds':<29} {medians['warm']:6.2f}  (<= {GOALS['warm_seconds']}: {warm_ok})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
