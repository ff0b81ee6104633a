"""Rounds of calls, and routes measured side by side in alternating rounds.

A round keeps every client calling for a fixed time; measure() gives one route's
medians over rounds, measure_side_by_side() several routes' under the same drift
of a shared machine, with the CPU time the clients, toolman and its downstream
processes spent per call.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.toolman_clients import Call, Opener

ROUND_DEADLINE_SECONDS = 120.0  # past a round's end, for its last calls
OPEN_DEADLINE_SECONDS = 60.0  # opening a route's clients (connections, sessions)
WARM_UP_SECONDS = 0.2
SETTLE_SECONDS = 0.05  # after a round, before reading CPU: work its last answers left behind


@dataclass(frozen=True)
class Row:
    scenario: str
    route: str  # direct | toolman
    clients: int
    rounds: int
    p50_ms: float
    p99_ms: float
    calls_per_second: float


@dataclass(frozen=True)
class Route:
    """A route of the alternating rounds.

    ``pid``: its toolman process, whose CPU and its children's is read each round;
    ``instances``: how many downstream processes it must have (a pool that lost one
    would otherwise measure as a smaller pool).
    """

    scenario: str
    route: str
    opener: Opener
    pid: int | None = None
    instances: int = 1

    @property
    def name(self) -> str:
        return f"{self.scenario} {self.route}"


@dataclass(frozen=True)
class RoundSample:
    position: int  # its place in the round's order, kept so order effects can be checked
    p50_ms: float
    p99_ms: float
    calls_per_second: float
    client_cpu_us: float  # per call, this process: the clients (and RawStdio's pipes)
    toolman_cpu_us: float | None  # per call, toolman's own process; None for a direct route
    downstream_cpu_us: float | None  # per call, its downstream processes (toolman's children)


@dataclass(frozen=True)
class PairedSummary:
    """A route's calls/s over the reference route's in the same round, and CPU per call.

    Ratios are taken round by round (each against its neighbour in time)."""

    calls_ratio: float  # median
    calls_ratio_low: float
    calls_ratio_high: float
    calls_ratios: list[float]
    client_cpu_us: float
    toolman_cpu_us: float | None
    downstream_cpu_us: float | None


def process_cpu_ns(pid: int) -> int:
    """CPU time of a whole process, threads that ended included, in nanoseconds.

    Linux's clock of another process (MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED));
    /proc/<pid>/stat counts 10 ms ticks, of which a round spends 20-30 in toolman.
    """
    return time.clock_gettime_ns(((~pid) << 3) | 2)


def children_of(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@dataclass(frozen=True)
class RoundResult:
    latencies_ms: list[float]
    calls_per_second: float


async def run_round(calls: list[Call], seconds: float) -> RoundResult:
    """Every client calls in a loop until ``seconds`` have passed (at least once each).

    All clients stay busy to the end: with a fixed number of calls per client, a
    round ended with the clients served faster done and the others finishing alone
    (through a pool, least-in-flight keeps a client on the instance that just
    answered it). Calls/s counts the calls answered by the end, over its length:
    each client's call still running then is left out, so it reads low by about
    half a latency over the round's length, alike for routes of equal latency
    (1.3 % at a 26 ms p50 in 1 s rounds; 0.8 % for the pool's 16 ms).
    """
    latencies: list[float] = []
    answered = 0
    began = time.perf_counter()
    stop = began + seconds

    async def worker(call: Call) -> None:
        nonlocal answered
        while True:
            start = time.perf_counter()
            await call()
            end = time.perf_counter()
            latencies.append((end - start) * 1000)
            if end >= stop:
                return
            answered += 1

    async with asyncio.timeout(seconds + ROUND_DEADLINE_SECONDS):
        await asyncio.gather(*(worker(call) for call in calls))
    if answered == 0:  # every call outlasted the round: count them over their own time
        return RoundResult(latencies, len(latencies) / (time.perf_counter() - began))
    return RoundResult(latencies, answered / seconds)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def open_route(stack: AsyncExitStack, opener: Opener, clients: int) -> list[Call]:
    async with asyncio.timeout(OPEN_DEADLINE_SECONDS):
        calls = await opener(stack, clients)
    await run_round(calls, WARM_UP_SECONDS)  # connections, caches, first-call paths
    return calls


async def measure(
    scenario: str, route: str, clients: int, opener: Opener, *, rounds: int, seconds: float
) -> Row:
    """One route's medians over ``rounds`` rounds (a side-by-side measurement of one)."""
    rows, _samples = await measure_side_by_side(
        [Route(scenario, route, opener)], clients, rounds=rounds, seconds=seconds
    )
    return rows[0]


def round_order(count: int, round_index: int) -> list[int]:
    """A B C D, D C B A, B C D A, A D C B, ...: the order turns every two rounds and
    reverses every other one, so no route always follows the same one (measured: the
    2026 path, always right after the 2025 path on the same downstream, found it
    spending 2-4 % more CPU per call) and every route takes every place."""
    shift = (round_index // 2) % count
    order = [(shift + i) % count for i in range(count)]
    return order if round_index % 2 == 0 else order[::-1]


async def measured_round(
    route: Route, calls: list[Call], seconds: float, position: int
) -> RoundSample:
    watched: list[int] = []
    if route.pid is not None:
        downstream = children_of(route.pid)
        if len(downstream) != route.instances:
            raise SystemExit(
                f"{route.name}: {len(downstream)} downstream processes, {route.instances} expected"
            )
        watched = [route.pid, *downstream]
    client_before = time.process_time_ns()
    before = [process_cpu_ns(pid) for pid in watched]
    result = await run_round(calls, seconds)
    await asyncio.sleep(SETTLE_SECONDS)
    spent = [process_cpu_ns(pid) - was for pid, was in zip(watched, before, strict=True)]
    client = time.process_time_ns() - client_before
    per_call_us = 1e-3 / len(result.latencies_ms)
    return RoundSample(
        position,
        percentile(result.latencies_ms, 0.50),
        percentile(result.latencies_ms, 0.99),
        result.calls_per_second,
        client * per_call_us,
        spent[0] * per_call_us if spent else None,
        sum(spent[1:]) * per_call_us if spent else None,
    )


async def measure_side_by_side(
    routes: list[Route], clients: int, *, rounds: int, seconds: float
) -> tuple[list[Row], list[list[RoundSample]]]:
    """Rows for several routes measured in alternating rounds (see round_order).

    On a loaded machine the load drifts within seconds; alternating rounds puts
    every route under the same drift. Also returns every round's sample per
    route, with the CPU spent per call: unlike calls/s, CPU time hardly moves
    with what else the machine runs.
    """
    async with AsyncExitStack() as stack:
        callers = [await open_route(stack, route.opener, clients) for route in routes]
        samples: list[list[RoundSample]] = [[] for _ in routes]
        for round_index in range(rounds):
            for position, index in enumerate(round_order(len(routes), round_index)):
                sample = await measured_round(routes[index], callers[index], seconds, position)
                samples[index].append(sample)
    rows = [
        Row(
            route.scenario,
            route.route,
            clients,
            rounds,
            statistics.median(s.p50_ms for s in taken),
            statistics.median(s.p99_ms for s in taken),
            statistics.median(s.calls_per_second for s in taken),
        )
        for route, taken in zip(routes, samples, strict=True)
    ]
    return rows, samples


def _median(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def paired(samples: list[RoundSample], reference: list[RoundSample]) -> PairedSummary:
    ratios = [
        s.calls_per_second / b.calls_per_second for s, b in zip(samples, reference, strict=True)
    ]
    return PairedSummary(
        statistics.median(ratios),
        min(ratios),
        max(ratios),
        ratios,
        statistics.median(s.client_cpu_us for s in samples),
        _median([s.toolman_cpu_us for s in samples]),
        _median([s.downstream_cpu_us for s in samples]),
    )
