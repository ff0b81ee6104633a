"""The toolman benchmark's report: the table of added latency, and the side-by-side figures.

Works on the JSON-ready result of toolman_bench.bench(), so a saved result can
be printed again.
"""

from __future__ import annotations

from typing import Any


def summarise(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = {(r["scenario"], r["route"], r["clients"]): r for r in result["rows"]}
    table = []
    for scenario in ("stdio/raw", "stdio/2026", "stdio/pool", "http/raw", "stdio/sdk", "http/sdk"):
        baseline = "stdio/raw" if scenario in ("stdio/2026", "stdio/pool") else scenario
        for clients in (1, 8, 32):
            direct, via = rows[(baseline, "direct", clients)], rows[(scenario, "toolman", clients)]
            table.append(
                {
                    "scenario": scenario,
                    "clients": clients,
                    "direct_p50_ms": direct["p50_ms"],
                    "toolman_p50_ms": via["p50_ms"],
                    "added_p50_ms": via["p50_ms"] - direct["p50_ms"],
                    "direct_p99_ms": direct["p99_ms"],
                    "toolman_p99_ms": via["p99_ms"],
                    "added_p99_ms": via["p99_ms"] - direct["p99_ms"],
                    "direct_calls_per_second": direct["calls_per_second"],
                    "toolman_calls_per_second": via["calls_per_second"],
                    "p50_ratio": via["p50_ms"] / direct["p50_ms"],
                }
            )
    return table


def print_table(table: list[dict[str, Any]], result: dict[str, Any]) -> None:
    header = (
        "scenario",
        "clients",
        "p50 direct",
        "p50 toolman",
        "p50 added",
        "p99 direct",
        "p99 toolman",
        "p99 added",
        "calls/s direct",
        "calls/s toolman",
        "p50 ratio",
    )
    print(" ".join(f"{h:>15}" if i > 1 else f"{h:<10}" for i, h in enumerate(header)))
    for line in table:
        figures = [
            f"{line[key]:>15.3f}"
            for key in (
                *("direct_p50_ms", "toolman_p50_ms", "added_p50_ms"),
                *("direct_p99_ms", "toolman_p99_ms", "added_p99_ms"),
            )
        ]
        figures += [f"{line['direct_calls_per_second']:>15.0f}"]
        figures += [f"{line['toolman_calls_per_second']:>15.0f}", f"{line['p50_ratio']:>15.2f}"]
        print(f"{line['scenario']:<10} {line['clients']:<10} " + " ".join(figures))
    rows = {(r["scenario"], r["route"], r["clients"]): r for r in result["rows"]}
    size = result["pool_instances"]
    print(
        "\nthrough toolman, side by side: median calls/s and p50 ms over the rounds "
        "(x: ratio of the medians)"
    )
    for clients in (1, 8, 32):
        legacy, modern = (
            rows[("stdio/raw", "toolman", clients)],
            rows[("stdio/2026", "toolman", clients)],
        )
        pool = rows[("stdio/pool", "toolman", clients)]
        print(
            f"{clients:>3} clients: "
            f"2025 {legacy['calls_per_second']:>6.0f}/s {legacy['p50_ms']:.3f}"
            f" | 2026 {modern['calls_per_second']:>6.0f}/s {modern['p50_ms']:.3f}"
            f" (x{modern['calls_per_second'] / legacy['calls_per_second']:.2f})"
            f" | pool of {size} {pool['calls_per_second']:>6.0f}/s {pool['p50_ms']:.3f}"
            f" (x{pool['calls_per_second'] / legacy['calls_per_second']:.2f})"
        )
    print(
        "\ncalls/s over the 2025 path's in the same round: median (lowest-highest) over "
        f"{result['alternating_rounds']} rounds"
    )

    def ratio(figures: dict[str, Any]) -> str:
        low, high = figures["calls_ratio_low"], figures["calls_ratio_high"]
        return f"x{figures['calls_ratio']:.2f} ({low:.2f}-{high:.2f})"

    for clients, ratios in result["paired_ratios"].items():
        print(
            f"{clients:>3} clients: 2026 {ratio(ratios['stdio/2026 toolman'])}"
            f" | pool of {size} {ratio(ratios['stdio/pool toolman'])}"
            f" | direct, no toolman {ratio(ratios['stdio/raw direct'])}"
        )
    print(
        "\nCPU per call in us (medians): toolman's own process / its downstream processes;"
        " the bench's clients"
    )
    for clients, ratios in result["paired_ratios"].items():
        legacy, modern, pool = (
            ratios["stdio/raw toolman"],
            ratios["stdio/2026 toolman"],
            ratios["stdio/pool toolman"],
        )
        print(
            f"{clients:>3} clients: 2025 {legacy['toolman_cpu_us']:.0f} / "
            f"{legacy['downstream_cpu_us']:.0f}"
            f" | 2026 {modern['toolman_cpu_us']:.0f} / {modern['downstream_cpu_us']:.0f}"
            f" (toolman x{modern['toolman_cpu_us'] / legacy['toolman_cpu_us']:.2f})"
            f" | pool of {size} {pool['toolman_cpu_us']:.0f} / "
            f"{pool['downstream_cpu_us']:.0f}"
            f"; clients {legacy['client_cpu_us']:.0f} / {modern['client_cpu_us']:.0f}"
            f" / {pool['client_cpu_us']:.0f}"
        )
    idle, load = result["memory"]["idle_rss_mb"], result["memory"]["load_rss_mb"]
    print(
        f"\ntoolman RSS (MB): idle {idle['stdio']:.1f} (stdio downstream), "
        f"{idle['http']:.1f} (http); peak under load {load['stdio']:.1f} / {load['http']:.1f}"
    )
    print(
        f"latencies in ms, medians over rounds of {result['round_seconds']:g} s: "
        f"{result['alternating_rounds']} for stdio/raw, stdio/2026 and stdio/pool, "
        f"{result['rounds']} for the others; goal: added p50 <= 1 ms, p99 <= 5 ms, "
        "idle RSS <= 60 MB"
    )
