"""Prometheus metrics of one orchestrator: tasks by phase, start latency and its parts,
durations. One registry per app (tests build several apps in one process)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from orchestrator.tasks.model import Phase

START_BUCKETS = (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 120, 300)
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PhaseCollector(Collector):
    def __init__(self, counts: Callable[[], Mapping[Phase, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "orchestrator_tasks", "Tasks known to the orchestrator, by phase", labels=["phase"]
        )
        for phase, count in self.counts().items():
            family.add_metric([phase.value], count)
        yield family


class Metrics:
    def __init__(self, counts: Callable[[], Mapping[Phase, int]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(PhaseCollector(counts))
        self.start_seconds = Histogram(
            "orchestrator_task_start_seconds",
            "From submission to the agent container running",
            buckets=START_BUCKETS,
            registry=self.registry,
        )
        self.launch_seconds = Histogram(
            "orchestrator_task_launch_seconds",
            "Parts of a launch: prepare (workspace, containers), toolman_ready, agent_start",
            ["part"],
            buckets=START_BUCKETS,
            registry=self.registry,
        )
        self.duration_seconds = Histogram(
            "orchestrator_task_duration_seconds",
            "From the agent running to the task's end, by final phase",
            ["phase"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.backend_up = Gauge(
            "orchestrator_backend_up",
            "1 when the execution backend answered its last check",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
