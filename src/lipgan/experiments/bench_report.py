"""The numbers of `lipgan bench`: medians and minima, ratios, Markdown tables and the JSON record (no torch).

For each method and phase (D step, G step, iteration) the median over repetitions (a D step's over all its
`n_dis × repeats` steps), its ratio to `vanilla` at the same precision (method / vanilla: the cost of the
constraint) and the speed-up over `official-gn` (official-gn / method: how much faster than the official
GNGAN code's technique, docs/methods.md §2.8). A ratio is None where its reference method was not run.

The same is given for the minimum over repetitions. Other work on the machine only ever adds time, so on a
shared machine the minimum is the better estimate of a method's own cost, and the median says what a run
there would see; where the two tables agree, the machine was quiet.
"""

from __future__ import annotations

import statistics

from lipgan.experiments.bench_methods import BASELINE, REFERENCE

PHASES = ("d_step", "g_step", "iteration")
PHASE_TITLES = {"d_step": "D step", "g_step": "G step", "iteration": "iteration"}
STATISTICS = {"median": statistics.median, "min": min}  # name -> samples -> seconds
MIB = 2**20


def phase_samples(times: list, phase: str) -> list[float]:
    """Seconds of `phase` in every repetition of one method (`times`: IterationTimes entries)."""
    if phase == "d_step":
        return [t for entry in times for t in entry.d_steps]
    return [getattr(entry, phase) for entry in times]


def relative_iqr(samples: list[float]) -> float:
    """The interquartile range over the median: how much the repetitions scatter (0 for one sample)."""
    if len(samples) < 2:
        return 0.0
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return (q3 - q1) / statistics.median(samples)


def _ratios(values: dict[str, dict[str, float]], method: str, other: str, method_over_other: bool):
    if other not in values:
        return None
    a, b = values[method], values[other]
    return {p: (a[p] / b[p] if method_over_other else b[p] / a[p]) for p in PHASES}


def _statistics(times_by_method: dict[str, list]) -> dict[str, dict[str, dict[str, float]]]:
    """statistic -> method -> phase -> seconds."""
    return {
        stat: {
            method: {p: reduce(phase_samples(times, p)) for p in PHASES}
            for method, times in times_by_method.items()
        }
        for stat, reduce in STATISTICS.items()
    }


def _methods_record(times_by_method: dict[str, list]) -> dict:
    """Per method of one precision: `median_s` and `min_s` (phase -> seconds), and `vs_vanilla` and
    `speedup_vs_official_gn` (statistic -> phase -> ratio, or None)."""
    values = _statistics(times_by_method)

    def ratios(method: str, other: str, method_over_other: bool) -> dict | None:
        if other not in times_by_method:
            return None
        return {stat: _ratios(values[stat], method, other, method_over_other) for stat in STATISTICS}

    return {
        method: {
            **{f"{stat}_s": values[stat][method] for stat in STATISTICS},
            "relative_iqr": {p: relative_iqr(phase_samples(times, p)) for p in PHASES},
            "vs_vanilla": ratios(method, BASELINE, method_over_other=True),
            "speedup_vs_official_gn": ratios(method, REFERENCE, method_over_other=False),
            "peak_memory_bytes": max(entry.peak_bytes for entry in times),
            "samples_s": {p: phase_samples(times, p) for p in PHASES},
        }
        for method, times in times_by_method.items()
    }


def _precision_speedups(first: dict, other: dict) -> dict:
    """method -> statistic -> phase -> the first precision's time over the other's, from two
    `_methods_record`s of the same repetitions."""
    return {
        method: {
            stat: {p: record[f"{stat}_s"][p] / other[method][f"{stat}_s"][p] for p in PHASES}
            for stat in STATISTICS
        }
        for method, record in first.items()
    }


def summarize(result, environment: dict) -> dict:
    """Every statistic, ratio and sample of a `BenchResult` as a JSON-ready record: `methods` at the
    first precision (`_methods_record`), and for each other precision timed in the same run its own
    record under `other_precisions` and each method's speed-up over the first precision under
    `precision_speedup` (precision -> method -> statistic -> phase -> first's time / its time)."""
    s = result.settings
    methods = _methods_record(result.times)
    others = {name: _methods_record(times) for name, times in result.other_times.items()}
    speedups = {name: _precision_speedups(methods, record) for name, record in others.items()}
    settings = {
        "arch": s.arch,
        "batch": s.batch,
        "n_dis": s.n_dis,
        "precision": s.precision,
        "also_precisions": list(s.also_precisions),
        "device": str(result.device),
        "repeats": s.repeats,
        "warmup": s.warmup,
        "overrides": list(s.overrides),
        "seed": s.seed,
    }
    return {
        "settings": settings,
        "environment": environment,
        "memory_measures": result.memory_measures,
        "methods": methods,
        "other_precisions": others,
        "precision_speedup": speedups,
    }


def _fmt_ratios(ratios: dict | None, stat: str) -> str:
    return "-" if ratios is None else " / ".join(f"{ratios[stat][p]:.2f}" for p in PHASES)


def columns(stat: str) -> tuple:
    """(title, cell(method name, method record)) of the table of one statistic; the ratio columns hold
    D step / G step / iteration."""
    return (
        ("method", lambda name, m: name),
        *((f"{PHASE_TITLES[p]} ms", lambda name, m, p=p: f"{1e3 * m[f'{stat}_s'][p]:.1f}") for p in PHASES),
        ("× vanilla (D / G / it.)", lambda name, m: _fmt_ratios(m["vs_vanilla"], stat)),
        (
            "speed-up vs official-gn (D / G / it.)",
            lambda name, m: _fmt_ratios(m["speedup_vs_official_gn"], stat),
        ),
        ("it. IQR", lambda name, m: f"{100 * m['relative_iqr']['iteration']:.0f}%"),
        ("peak MiB", lambda name, m: f"{m['peak_memory_bytes'] / MIB:.1f}"),
    )


def _threads(n: int) -> str:
    return f"{n} thread" if n == 1 else f"{n} threads"


def heading(summary: dict) -> str:
    s, env = summary["settings"], summary["environment"]
    extra = f", overrides {' '.join(s['overrides'])}" if s["overrides"] else ""
    return (
        f"{s['arch']}, batch {s['batch']}, n_dis {s['n_dis']}, {s['precision']} on {s['device']} "
        f"({_threads(env['threads'])}, torch {env['torch']}){extra}; {s['repeats']} repetitions after "
        f"{s['warmup']} warm-up rounds"
    )


def format_table(summary: dict, stat: str = "median") -> str:
    """A Markdown table of one statistic, one row per method in the order run, right-aligned numbers."""
    cols = columns(stat)
    rows = [[title for title, _ in cols]]
    rows += [[cell(name, m) for _, cell in cols] for name, m in summary["methods"].items()]
    return _markdown(rows)


def format_precision_table(summary: dict) -> str:
    """A Markdown table of each method's speed-up over the first precision at every other one, from the
    medians and from the minima (D step / G step / iteration)."""
    first = summary["settings"]["precision"]
    titles = ["method"]
    for name in summary["precision_speedup"]:
        titles += [f"{first} → {name}, {stat} (D / G / it.)" for stat in STATISTICS]
    rows = [titles]
    for method in summary["methods"]:
        row = [method]
        for speedups in summary["precision_speedup"].values():
            row += [" / ".join(f"{speedups[method][stat][p]:.2f}" for p in PHASES) for stat in STATISTICS]
        rows.append(row)
    return _markdown(rows)


def _markdown(rows: list[list[str]]) -> str:
    """Rows of cells (the first the titles) as a Markdown table, numbers right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(cells: list[str]) -> str:
        padded = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join("-" * (w - 1) + (":" if i else "-") for i, w in enumerate(widths)) + " |"
    return "\n".join([line(rows[0]), rule, *(line(row) for row in rows[1:])])


def precision_summary(summary: dict, precision: str) -> dict:
    """The summary of one precision of a run, as if it had been run alone (its ratios are its own)."""
    if precision == summary["settings"]["precision"]:
        return summary
    settings = {**summary["settings"], "precision": precision, "also_precisions": []}
    return {**summary, "settings": settings, "methods": summary["other_precisions"][precision]}


def format_report(summary: dict) -> str:
    """The report of each precision (`format_one_precision`), then, when several were timed, each method's
    speed-up over the first."""
    first, others = summary["settings"]["precision"], summary.get("other_precisions", {})
    parts = [format_one_precision(precision_summary(summary, name)) for name in [first, *others]]
    if others:
        parts += [
            f"Speed-up over {first} in the same repetitions ({first}'s time over the other precision's):\n\n"
            + format_precision_table(summary)
        ]
    return "\n\n".join(parts)


def format_one_precision(summary: dict) -> str:
    """The heading, the table of medians, the table of minima and what the columns mean."""
    notes = [
        "× vanilla: the method's time over vanilla's (the cost of the constraint); speed-up vs official-gn: "
        "official-gn's time over the method's; each for the D step, the G step and the iteration, from the "
        "statistic of the table; '-': that method was not run. it. IQR: interquartile range of the "
        "iteration times over their median.",
        f"peak MiB: {summary['memory_measures']}.",
    ]
    return "\n".join(
        [
            heading(summary),
            "",
            "Medians over the repetitions:",
            "",
            format_table(summary, "median"),
            "",
            "Minima over the repetitions (other work on the machine only adds time):",
            "",
            format_table(summary, "min"),
            "",
            *notes,
        ]
    )
