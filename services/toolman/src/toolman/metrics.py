"""Prometheus text exposition, hand-rolled: a few counters, gauges and one histogram.

Small on purpose: toolman needs a handful of series, and avoiding a client
library keeps the sidecar's memory and start-up time down.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable

Labels = tuple[tuple[str, str], ...]
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{key}="{_escape(value)}"' for key, value in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Counter:
    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self.values: dict[Labels, float] = defaultdict(float)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self.values[tuple(sorted(labels.items()))] += amount

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(labels)} {value:g}"


class Histogram:
    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self.counts: dict[Labels, list[int]] = {}
        self.sums: dict[Labels, float] = defaultdict(float)

    def observe(self, seconds: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        counts = self.counts.get(key)
        if counts is None:
            counts = self.counts[key] = [0] * (len(BUCKETS) + 1)
        counts[bisect_left(BUCKETS, seconds)] += 1
        self.sums[key] += seconds

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        for labels, counts in sorted(self.counts.items()):
            running = 0
            for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                bucket_labels = _labels(labels, 'le="' + le + '"')
                yield f"{self.name}_bucket{bucket_labels} {running}"
            yield f"{self.name}_sum{_labels(labels)} {self.sums[labels]:.6f}"
            yield f"{self.name}_count{_labels(labels)} {running}"


class Gauge:
    """A value read at scrape time."""

    def __init__(
        self,
        name: str,
        help_text: str,
        read: Callable[[], Iterable[tuple[Labels, float]]],
        kind: str = "gauge",  # "counter" for totals kept elsewhere (e.g. restarts)
    ) -> None:
        self.name, self.help, self.read, self.kind = name, help_text, read, kind

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        for labels, value in self.read():
            yield f"{self.name}{_labels(labels)} {value:g}"


class Metrics:
    def __init__(self) -> None:
        self.requests = Counter("toolman_mcp_requests_total", "MCP requests by method and outcome.")
        self.http_errors = Counter(
            "toolman_http_rejections_total", "HTTP requests refused, by status."
        )
        self.tool_calls = Counter("toolman_tool_calls_total", "tools/call by server and outcome.")
        self.tool_seconds = Histogram(
            "toolman_tool_call_duration_seconds", "tools/call duration through toolman, by server."
        )
        self.gauges: list[Gauge] = []

    def render(self) -> str:
        lines: list[str] = []
        for metric in (self.requests, self.http_errors, self.tool_calls, self.tool_seconds):
            lines.extend(metric.render())
        for gauge in self.gauges:
            lines.extend(gauge.render())
        return "\n".join(lines) + "\n"
