"""Presenting a run: the table on stdout, the JSON document and the PNG chart."""

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from rich.console import Console
from rich.table import Table

Row = tuple[str, str, str, str, str, str, bool | None]

NOISY_CORES = 0.25


def _get(document: dict[str, Any] | None, *keys: str) -> Any:
    value: Any = document
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _num(value: Any, digits: int = 0, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}{unit}"


def _ratio(value: Any) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _meets(value: Any, low: float | None = None, high: float | None = None) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if low is not None and value < low:
        return False
    return not (high is not None and value > high)


def _e2e_met(e: dict[str, Any] | None) -> bool | None:
    """Not judged when most deliveries arrived before their 202 (a negative p50): then the
    API, not the delivery path, is slow, and arrival - 202 says little (see the ingest row)."""
    p50 = None if e is None else e["latency"]["p50_ms"]
    if e is None or p50 is None or math.isnan(p50) or p50 < 0:
        return None
    return bool(_meets(p50, high=15) and _meets(e["latency"]["p99_ms"], high=50))


def rows(results: dict[str, Any]) -> list[Row]:
    s = results["scenarios"]
    out: list[Row] = []
    c = s.get("ceiling")
    out.append(
        (
            "0",
            "ceiling: bare aiohttp",
            f"req/s at {_get(c, 'concurrency') or '?'} in flight"
            + (
                f" (median of {len(_get(c, 'rounds_requests_per_s'))})"
                if len(_get(c, "rounds_requests_per_s") or []) > 1
                else ""
            ),
            _num(_get(c, "requests_per_s"), 0, "/s"),
            "1.00x" if c else "—",
            "",
            None,
        )
    )
    if c:
        out.append(
            (
                "",
                "  receiver headroom",
                "receiver capacity (CPU-based)",
                _num(_get(c, "receiver_capacity_per_s"), 0, "/s"),
                "",
                "> 15,000/s",
                _meets(_get(c, "receiver_capacity_per_s"), 15_000),
            )
        )
    b = s.get("backlog")
    if b is not None or "backlog" in results["errors"]:
        ratio = _get(b, "ratio_to_ceiling")
        out.append(
            (
                "1",
                f"backlog of {_num(_get(b, 'deliveries'))}"
                + (
                    f" over {_num(_get(b, 'endpoints'))} endpoints"
                    if (_get(b, "endpoints") or 1) > 1
                    else ""
                ),
                "deliveries/s, first→last arrival"
                + (
                    f" (median of {len(_get(b, 'rounds'))})"
                    if len(_get(b, "rounds") or []) > 1
                    else ""
                ),
                _num(_get(b, "deliveries_per_s"), 0, "/s"),
                _ratio(ratio),
                "≥ 0.50x ceiling",
                _meets(ratio, 0.5),
            )
        )
    one = _get(b, "single_endpoint")
    if one is not None:
        cap = _get(results, "settings", "endpoint_max_in_flight")
        out.append(
            (
                "",
                "  one endpoint alone",
                f"{_num(_get(one, 'deliveries'))} on one endpoint"
                + (f", cap {cap} in flight" if cap else ""),
                f"{_num(_get(one, 'deliveries_per_s'), 0, '/s')}"
                f" ({_ratio(_get(one, 'ratio_to_backlog_throughput'))})",
                _ratio(_get(one, "ratio_to_ceiling")),
                "(value: x row 1)",
                None,
            )
        )
    if b is not None and len(b.get("rounds") or []) > 1:
        out.append(
            (
                "",
                "  rounds",
                "ratio to the ceiling, each round",
                ", ".join(f"{r['ratio_to_ceiling']:.2f}" for r in _get(b, "rounds") or []) or "—",
                "",
                "median above",
                None,
            )
        )
    if b is not None or "backlog" in results["errors"]:
        out.append(
            (
                "",
                "  correctness",
                "all succeeded / attempts logged / dups",
                f"{_get(b, 'all_succeeded')} / {_num(_get(b, 'attempts_logged'))}"
                f" / {_num(_get(b, 'duplicates'))}",
                "",
                "True / = count / 0",
                None
                if b is None
                else bool(
                    b["all_succeeded"]
                    and b["attempts_logged"] == b["deliveries"]
                    and b["duplicates"] == 0
                ),
            )
        )
    i = s.get("ingest")
    if i is not None or "ingest" in results["errors"]:
        out.append(
            (
                "2",
                f"ingest, {_get(i, 'clients') or '?'} clients",
                "accepted events/s",
                _num(_get(i, "accepted_per_s"), 0, "/s"),
                _ratio(_get(i, "ratio_to_ceiling")),
                "≥ 1,500/s",
                _meets(_get(i, "accepted_per_s"), 1500),
            )
        )
        out.append(
            (
                "",
                "  latency (closed loop)",
                "p50 / p99",
                f"{_num(_get(i, 'latency', 'p50_ms'), 1)} / "
                f"{_num(_get(i, 'latency', 'p99_ms'), 1)} ms",
                "",
                "",
                None,
            )
        )
    e = s.get("e2e")
    if e is not None or "e2e" in results["errors"]:
        p50, p99 = _get(e, "latency", "p50_ms"), _get(e, "latency", "p99_ms")
        out.append(
            (
                "3",
                f"end-to-end at {_num(_get(e, 'rate_per_s'))}/s",
                "202 → receiver p50 / p95 / p99",
                f"{_num(p50, 1)} / {_num(_get(e, 'latency', 'p95_ms'), 1)} / {_num(p99, 1)} ms",
                "",
                "p50 ≤ 15, p99 ≤ 50 ms",
                _e2e_met(e),
            )
        )
        out.append(
            (
                "",
                "  from the POST",
                "POST sent → receiver p50 / p99",
                f"{_num(_get(e, 'latency_from_send', 'p50_ms'), 1)} / "
                f"{_num(_get(e, 'latency_from_send', 'p99_ms'), 1)} ms",
                "",
                f"({_num(_get(e, 'negative_latencies'))} arrived before their 202)",
                None,
            )
        )
        out.append(
            (
                "",
                "  loss",
                "events without a delivery",
                _num(_get(e, "lost")),
                "",
                "0",
                None if e is None else e["lost"] == 0,
            )
        )
        out.append(
            (
                "",
                "  ingest at that rate",
                "POST → 202 p50 / p99",
                f"{_num(_get(e, 'ingest_latency', 'p50_ms'), 1)} / "
                f"{_num(_get(e, 'ingest_latency', 'p99_ms'), 1)} ms",
                "",
                "p99 ≤ 50 ms",
                _meets(_get(e, "ingest_latency", "p99_ms"), high=50),
            )
        )
        out.append(
            (
                "",
                "  API warm-up (excluded)",
                f"first {_num(_get(e, 'warmup_events'))} events: p50 / p99",
                f"{_num(_get(e, 'warmup_ingest_latency', 'p50_ms'), 1)} / "
                f"{_num(_get(e, 'warmup_ingest_latency', 'p99_ms'), 1)} ms",
                "",
                "",
                None,
            )
        )
    f = s.get("fan_out")
    if f is not None or "fan_out" in results["errors"]:
        out.append(
            (
                "4",
                f"fan-out to {_num(_get(f, 'endpoints'))}",
                "accept time (median)",
                _num(_get(f, "accept_ms"), 1, " ms"),
                "",
                "≤ 250 ms",
                _meets(_get(f, "accept_ms"), high=250),
            )
        )
        out.append(
            (
                "",
                "  delivery",
                "202 → last arrival; deliveries/s",
                f"{_num(_get(f, 'last_arrival_after_202_ms'), 0, ' ms')}; "
                f"{_num(_get(f, 'deliveries_per_s'), 0, '/s')}",
                _ratio(_get(f, "ratio_to_ceiling")),
                "",
                None,
            )
        )
    sl = s.get("slow")
    if sl is not None or "slow" in results["errors"]:
        keep = _get(sl, "ratio_to_backlog_throughput")
        out.append(
            (
                "5",
                (
                    f"{_get(sl, 'fast_endpoints')} fast beside {_get(sl, 'slow_endpoints')} slow"
                    if _get(sl, "fast_endpoints")
                    else "fast beside slow"
                )
                + " (1 s)",
                "fast deliveries/s (x scenario 1)",
                f"{_num(_get(sl, 'fast_deliveries_per_s'), 0, '/s')} ({_ratio(keep)})",
                _ratio(_get(sl, "ratio_to_ceiling")),
                "≥ 0.90x scenario 1",
                _meets(keep, 0.9),
            )
        )
    if b is not None:
        peaks = [v for v in _get(b, "rss", "peak_kib").values() if v is not None]
        out.append(
            (
                "6",
                "worker memory during 1",
                "peak RSS (VmHWM) per worker",
                ", ".join(_num(v / 1024, 0, " MiB") for v in peaks) or "—",
                "",
                "flat",
                None,
            )
        )
    for name, error in results["errors"].items():
        out.append(("!", name, "failed", error[:80], "", "", False))
    return out


def print_table(results: dict[str, Any], console: Console) -> None:
    machine = results["machine"]
    table = Table(
        title=f"Herald benchmark ({results['mode']}, {results['settings']['workers']} worker(s),"
        f" {results['settings']['api_workers']} API process(es),"
        f" {machine['cpu_count']} CPUs, load {machine['loadavg_start'][0]:.2f}"
        f"→{machine['loadavg_end'][0]:.2f})",
        title_justify="left",
    )
    for column in ("#", "scenario", "figure", "value", "x ceiling", "target", "met"):
        table.add_column(column, justify="right" if column in ("value", "x ceiling") else "left")
    for number, scenario, figure, value, ratio, target, met in rows(results):
        mark = "" if met is None else ("[green]yes[/]" if met else "[red]no[/]")
        table.add_row(number, scenario, figure, value, ratio, target, mark)
    console.print(table)
    noise = [
        f"{name} {cores['others_cores']:.2f}"
        + (
            " (" + ", ".join(f"{who} {used:.2f}" for who, used in top) + ")"
            if (top := figures.get("other_processes")) and cores["others_cores"] >= 0.05
            else ""
        )
        for name, figures in results["scenarios"].items()
        if isinstance(figures, dict)
        and isinstance(cores := figures.get("cpu_cores"), dict)
        and "others_cores" in cores
    ]
    if noise:
        console.print(
            "CPU cores used by processes outside the benchmark (noise; "
            f"{results['machine']['cpu_count']} in all): " + ", ".join(noise),
            highlight=False,
        )
    for process, counts in (results.get("herald_log_warnings") or {}).items():
        for message, count in sorted(counts.items(), key=lambda item: -item[1])[:5]:
            console.print(f"[yellow]{process} logged {count:,}x:[/] {message}", highlight=False)
    noisy = [
        name
        for name, figures in results["scenarios"].items()
        if isinstance(figures, dict)
        and isinstance(cores := figures.get("cpu_cores"), dict)
        and cores.get("others_cores", 0) + cores.get("steal_cores", 0) > NOISY_CORES
    ]
    if noisy:
        console.print(
            f"[yellow]warning:[/] other load took more than {NOISY_CORES} core during "
            f"{', '.join(noisy)}: those figures understate Herald; run again on a quiet machine"
        )


def _plain(value: Any) -> Any:
    """JSON has no NaN or infinity: those become null ("not measured")."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def write_json(results: dict[str, Any], path: Path) -> None:
    text = json.dumps(_plain(results), indent=2, default=str, allow_nan=False)
    path.write_text(text + "\n")


def write_chart(results: dict[str, Any], path: Path) -> None:
    s = results["scenarios"]
    figure, (latency_ax, throughput_ax, memory_ax) = plt.subplots(
        1, 3, figsize=(17, 5.2), gridspec_kw={"width_ratios": [1.1, 1.2, 1]}
    )
    figure.suptitle(
        f"Herald benchmark {results['timestamp']} ({results['mode']},"
        f" {results['settings']['workers']} worker(s), {results['machine']['cpu_count']} CPUs)"
    )

    percentiles = ("p50_ms", "p95_ms", "p99_ms")
    series = [
        ("ingest, closed loop (2)", _get(s.get("ingest"), "latency")),
        ("ingest at 200/s (3)", _get(s.get("e2e"), "ingest_latency")),
        ("202 → receiver at 200/s (3)", _get(s.get("e2e"), "latency")),
    ]
    series = [(label, values) for label, values in series if values]
    width = 0.8 / max(len(series), 1)
    for n, (label, values) in enumerate(series):
        xs = [k + n * width for k in range(len(percentiles))]
        heights = [values.get(p) or 0 for p in percentiles]
        bars = latency_ax.bar(xs, heights, width, label=label)
        latency_ax.bar_label(bars, fmt="%.1f", fontsize=7)
    latency_ax.set_xticks([k + width * (len(series) - 1) / 2 for k in range(len(percentiles))])
    latency_ax.set_xticklabels(["p50", "p95", "p99"])
    latency_ax.axhline(50, color="red", linestyle="--", linewidth=1, label="p99 target 50 ms")
    latency_ax.axhline(15, color="orange", linestyle=":", linewidth=1, label="e2e p50 target 15 ms")
    # Good runs sit at a few ms and overloaded ones at seconds (and below zero when the 202
    # came after the delivery): a scale that is linear near zero and logarithmic beyond.
    latency_ax.set_yscale("symlog", linthresh=10)
    latency_ax.set_ylabel("milliseconds (symlog)")
    latency_ax.set_title("Latency percentiles")
    latency_ax.legend(fontsize=7)

    ceiling = _get(s.get("ceiling"), "requests_per_s")
    bars_data = [
        ("ceiling\n(bare aiohttp)", ceiling),
        ("backlog\ndrain (1)", _get(s.get("backlog"), "deliveries_per_s")),
        ("fast beside\nslow (5)", _get(s.get("slow"), "fast_deliveries_per_s")),
        ("fan-out\n1,000 (4)", _get(s.get("fan_out"), "deliveries_per_s")),
        ("ingest\naccepted (2)", _get(s.get("ingest"), "accepted_per_s")),
    ]
    bars_data = [(label, value) for label, value in bars_data if value]
    labels = [label for label, _ in bars_data]
    values = [float(value) for _, value in bars_data]
    colors = ["grey"] + ["tab:blue"] * (len(values) - 1) if ceiling else ["tab:blue"] * len(values)
    bars = throughput_ax.bar(labels, values, color=colors)
    if ceiling:
        throughput_ax.bar_label(
            bars, labels=[f"{v:,.0f}\n{v / ceiling:.2f}x" for v in values], fontsize=7
        )
        throughput_ax.axhline(
            ceiling / 2, color="red", linestyle="--", linewidth=1, label="50 % of ceiling"
        )
        throughput_ax.legend(fontsize=7)
    if values:
        throughput_ax.set_ylim(0, max(values) * 1.15)
    throughput_ax.set_ylabel("per second")
    throughput_ax.set_title("Throughput vs the bare-client ceiling")
    throughput_ax.tick_params(axis="x", labelsize=8)

    samples = _get(s.get("backlog"), "rss", "samples_kib") or []
    if samples:
        times = [t for t, _ in samples]
        workers = max(len(rss) for _, rss in samples)
        for w in range(workers):
            memory_ax.plot(
                times,
                [rss[w] / 1024 if w < len(rss) else math.nan for _, rss in samples],
                label=f"worker {w + 1}",
            )
        memory_ax.set_ylim(bottom=0)
        memory_ax.legend(fontsize=7)
    memory_ax.set_xlabel("seconds since workers started")
    memory_ax.set_ylabel("RSS, MiB")
    memory_ax.set_title("Worker memory during the backlog (1, 6)")

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
