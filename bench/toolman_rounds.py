"""Rounds of calls, and routes measured side by side in alternating rounds.

A round keeps every client calling for a fixed time; measure() gives one route's
medians over rounds, measure_side_by_side() several routes' under the same drift
of a shared machine, with the CPU time their processes spent per call (/proc).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.toolman_clients import Call, Opener

ROUND_DEADLINE_SECONDS = 120.0  # past a round's end, for its last calls
WARM_UP_SECONDS = 0.2


@dataclass
class Row:
    scenario: str
    route: str  # direct | toolman
    clients: int
    p50_ms: float
    p99_ms: float
    calls_per_second: float


def thread_cpu(pid: int) -> dict[int, int]:
    """Time on a CPU of each thread of a process, in nanoseconds.

    /proc/<pid>/stat counts clock ticks (10 ms): a round spends only 20-30 of
    them in toolman. schedstat's first field is a thread's time in ns.
    """
    times = {}
    for thread in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            times[int(thread.name)] = int((thread / "schedstat").read_text().split()[0])
    return times


def cpu_spent(before: dict[int, int], after: dict[int, int]) -> float:
    """Seconds spent between two readings; a thread gone by the second (an idle worker
    thread the server ended) counts for nothing, one new since the first for all of it."""
    return sum(ns - before.get(tid, 0) for tid, ns in after.items()) / 1e9


def children_of(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@dataclass(frozen=True)
class Route:
    """A route of the alternating rounds; ``pid``: its toolman process, whose CPU is read."""

    scenario: str
    route: str
    opener: Opener
    pid: int | None = None


@dataclass(frozen=True)
class RoundSample:
    p50_ms: float
    p99_ms: float
    calls_per_second: float
    toolman_cpu_us: float  # per call, toolman's own process; nan for a direct route
    downstream_cpu_us: float  # per call, the downstream processes (toolman's children)


async def run_round(calls: list[Call], seconds: float) -> tuple[list[float], float]:
    """Every client calls in a loop until ``seconds`` have passed; returns the latencies
    (ms) and the round's wall time, up to the last call's answer.

    All clients stay busy to the end. With a fixed number of calls per client, a
    round ended with the clients served faster done and the others finishing alone:
    through a pool, whose least-in-flight choice keeps a client on the instance
    that just answered it, the first client was done at 89 % of the round.
    """
    latencies: list[float] = []
    began = time.perf_counter()
    stop = began + seconds

    async def worker(call: Call) -> None:
        while (start := time.perf_counter()) < stop:
            await call()
            latencies.append((time.perf_counter() - start) * 1000)

    async with asyncio.timeout(seconds + ROUND_DEADLINE_SECONDS):
        await asyncio.gather(*(worker(call) for call in calls))
    return latencies, time.perf_counter() - began


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(
    scenario: str, route: str, clients: int, opener: Opener, *, rounds: int, seconds: float
) -> Row:
    async with AsyncExitStack() as stack:
        callers = await opener(stack, clients)
        await run_round(callers, WARM_UP_SECONDS)  # connections, caches, first-call paths
        p50s, p99s, rates = [], [], []
        for _ in range(rounds):
            latencies, wall = await run_round(callers, seconds)
            p50s.append(percentile(latencies, 0.50))
            p99s.append(percentile(latencies, 0.99))
            rates.append(len(latencies) / wall)
    return Row(
        scenario,
        route,
        clients,
        statistics.median(p50s),
        statistics.median(p99s),
        statistics.median(rates),
    )


async def measure_side_by_side(
    routes: list[Route], clients: int, *, rounds: int, seconds: float
) -> tuple[list[Row], dict[str, list[RoundSample]]]:
    """Rows for several routes measured in alternating rounds (A B C C B A A B C ...).

    On a loaded machine the load drifts within seconds; alternating rounds puts
    every route under the same drift. Also returns every round's sample per
    route, with the CPU its toolman and downstream processes spent per call:
    unlike calls/s, CPU time hardly moves with what else the machine runs.
    """
    async with AsyncExitStack() as stack:
        callers = [await route.opener(stack, clients) for route in routes]
        for calls_of in callers:
            await run_round(calls_of, WARM_UP_SECONDS)
        samples: dict[str, list[RoundSample]] = {f"{r.scenario} {r.route}": [] for r in routes}
        in_turn = list(zip(routes, callers, strict=True))
        for round_index in range(rounds):
            # A B C, then C B A: a route that always followed another inherited its
            # after-effects (measured: the 2026 path's downstream spent 2-4 % more CPU
            # per call when it always came right after the 2025 path; level in ABBA order).
            for route, calls_of in in_turn if round_index % 2 == 0 else in_turn[::-1]:
                watched = [] if route.pid is None else [route.pid, *children_of(route.pid)]
                before = [thread_cpu(pid) for pid in watched]
                latencies, wall = await run_round(calls_of, seconds)
                spent = [
                    cpu_spent(was, thread_cpu(pid))
                    for pid, was in zip(watched, before, strict=True)
                ]
                per_call = 1e6 / len(latencies)
                samples[f"{route.scenario} {route.route}"].append(
                    RoundSample(
                        percentile(latencies, 0.50),
                        percentile(latencies, 0.99),
                        len(latencies) / wall,
                        spent[0] * per_call if spent else math.nan,
                        sum(spent[1:]) * per_call if spent else math.nan,
                    )
                )
    rows = [
        Row(
            route.scenario,
            route.route,
            clients,
            statistics.median(s.p50_ms for s in taken),
            statistics.median(s.p99_ms for s in taken),
            statistics.median(s.calls_per_second for s in taken),
        )
        for route, taken in zip(routes, samples.values(), strict=True)
    ]
    return rows, samples


def paired(samples: dict[str, list[RoundSample]], reference: str) -> dict[str, dict[str, Any]]:
    """Per route: calls/s over the reference route's in the same round, and CPU per call.

    Ratios are taken round by round (each against its neighbour in time), then
    summarised by median, lowest and highest.
    """
    base = samples[reference]
    summary: dict[str, dict[str, Any]] = {}
    for name, taken in samples.items():
        ratios = [s.calls_per_second / b.calls_per_second for s, b in zip(taken, base, strict=True)]
        summary[name] = {
            "calls_ratio": statistics.median(ratios),
            "calls_ratio_range": [min(ratios), max(ratios)],
            "calls_ratios": ratios,
            "toolman_cpu_us": statistics.median(s.toolman_cpu_us for s in taken),
            "downstream_cpu_us": statistics.median(s.downstream_cpu_us for s in taken),
        }
    return summary
