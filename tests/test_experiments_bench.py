"""`lipgan bench`: the structure of its result and JSON, the methods' configs, the critic modes of the G step,
the ratios, the memory probe and the one-line errors. Nothing here asserts a measured time."""

from __future__ import annotations

import json

import pytest
import torch

from lipgan.cli import main
from lipgan.experiments.bench import (
    BenchResult,
    BenchSettings,
    IterationTimes,
    build_case,
    check_settings,
    method_config,
    rotated,
    run_bench,
    run_iteration,
)
from lipgan.experiments.bench_device import RssPeak
from lipgan.experiments.bench_methods import BENCH_METHODS, DEFAULT_METHODS
from lipgan.experiments.bench_report import PHASES, format_report, format_table, summarize
from lipgan.training.precision import PRECISIONS

TINY = ["--arch", "digits-cnn", "--batch", "8", "--device", "cpu", "model.options={width: 0.25}"]


def tiny(**changes) -> BenchSettings:
    values = dict(arch="digits-cnn", batch=8, device="cpu", overrides=("model.options={width: 0.25}",))
    return BenchSettings(**{**values, **changes})


def test_one_repetition_gives_every_median_and_ratio_and_the_same_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    flags = ["--arch", "digits-cnn", "--batch", "8", "--device", "cpu", "--n-dis", "2"]
    # an override after --methods is an override, not a method name
    argv = ["bench", *flags, "--methods", "vanilla", "gn", "official-gn", "model.options={width: 0.25}"]
    assert main([*argv, "--repeats", "1", "--warmup", "0", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    record = json.loads(path.read_text())
    assert list(record["methods"]) == ["vanilla", "gn", "official-gn"]
    s = record["settings"]
    assert (s["arch"], s["batch"], s["n_dis"], s["precision"], s["repeats"]) == (
        "digits-cnn",
        8,
        2,
        "fp32",
        1,
    )
    assert s["overrides"] == ["model.options={width: 0.25}"]
    assert record["environment"]["torch"] == torch.__version__ and record["memory_measures"].startswith("CPU")
    for name, m in record["methods"].items():
        assert [len(m["samples_s"][p]) for p in PHASES] == [2, 1, 1]  # n_dis D steps per repetition
        assert all(t > 0 for p in PHASES for t in m["samples_s"][p])
        assert m["samples_s"]["iteration"][0] >= sum(m["samples_s"]["d_step"]) + m["samples_s"]["g_step"][0]
        assert isinstance(m["peak_memory_bytes"], int) and m["peak_memory_bytes"] >= 0
        for stat in ("median", "min"):
            values = {other: record["methods"][other][f"{stat}_s"] for other in record["methods"]}
            for p in PHASES:
                assert min(m["samples_s"][p]) <= m[f"{stat}_s"][p] <= max(m["samples_s"][p])
                expected = values[name][p] / values["vanilla"][p]
                assert m["vs_vanilla"][stat][p] == pytest.approx(expected, rel=1e-12)
                expected = values["official-gn"][p] / values[name][p]
                assert m["speedup_vs_official_gn"][stat][p] == pytest.approx(expected, rel=1e-12)
    ones = {p: 1.0 for p in PHASES}
    assert record["methods"]["vanilla"]["vs_vanilla"] == {"median": ones, "min": ones}
    assert record["methods"]["official-gn"]["speedup_vs_official_gn"] == {"median": ones, "min": ones}
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 * (2 + 3)  # the table of medians and the table of minima
    assert all(out.count(f"| {name} ") == 2 for name in record["methods"])
    assert f"json: {path}" in out


def _times(d: list[float], g: float, it: float) -> IterationTimes:
    return IterationTimes(d, g, it, peak_bytes=int(1e6 * it))


def test_summary_takes_medians_over_repetitions_and_divides_as_documented():
    times = {
        "vanilla": [_times([1.0, 3.0], 2.0, 5.0), _times([2.0, 2.0], 4.0, 7.0), _times([9.0, 2.0], 3.0, 6.0)],
        "gn": [_times([4.0, 4.0], 6.0, 12.0), _times([4.0, 5.0], 6.0, 13.0), _times([40.0, 4.0], 9.0, 40.0)],
    }
    result = BenchResult(tiny(methods=("vanilla", "gn"), repeats=3), torch.device("cpu"), "test", times)
    summary = summarize(result, {"threads": 2, "torch": "x"})
    gn = summary["methods"]["gn"]
    assert gn["median_s"] == {"d_step": 4.0, "g_step": 6.0, "iteration": 13.0}
    assert gn["min_s"] == {"d_step": 4.0, "g_step": 6.0, "iteration": 12.0}
    assert gn["vs_vanilla"]["median"] == {"d_step": 2.0, "g_step": 2.0, "iteration": 13.0 / 6.0}
    assert gn["vs_vanilla"]["min"] == {"d_step": 4.0, "g_step": 3.0, "iteration": 12.0 / 5.0}
    assert gn["speedup_vs_official_gn"] is None  # official-gn was not run
    assert gn["peak_memory_bytes"] == 40_000_000
    assert gn["relative_iqr"]["iteration"] == pytest.approx((26.5 - 12.5) / 13.0, rel=1e-12)
    table = format_table(summary)
    assert "2.00 / 2.00 / 2.17 |" in table and table.count(" - |") == 2
    assert "4000.0" in table and "13000.0" in table  # ms
    assert "4.00 / 3.00 / 2.40 |" in format_table(summary, "min") and "12000.0" in format_table(
        summary, "min"
    )
    assert format_report(summary).startswith("digits-cnn, batch 8, n_dis 1, fp32 on cpu (2 threads, torch x)")


class ModeRecorder:
    """Wraps a critic and keeps, per call, the mode and whether the output's graph holds a double backward
    (the backward of a backward node, which `create_graph=True` leaves in it)."""

    def __init__(self, critic):
        self.critic, self.calls = critic, []

    def __call__(self, x, mode="full"):
        scores = self.critic(x, mode=mode)
        self.calls.append((mode, _has_double_backward(scores.out)))
        return scores


def _has_double_backward(t: torch.Tensor) -> bool:
    seen, stack = set(), [t.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if "BackwardBackward" in type(node).__name__:
            return True
        stack += [next_fn for next_fn, _ in node.next_functions]
    return False


@pytest.mark.parametrize(
    "method, g_mode, g_double",
    [("official-gn", "full", True), ("gn", "generator", False), ("pgn", "generator", False)],
)
def test_the_g_step_of_official_gn_runs_the_double_backward_and_ours_does_not(method, g_mode, g_double):
    s = tiny(methods=(method,))
    case = build_case(method, s, torch.device("cpu"))
    case.parts.critic, case.parts.g_critic = (
        ModeRecorder(case.parts.critic),
        ModeRecorder(case.parts.g_critic),
    )
    run_iteration(case, torch.device("cpu"), PRECISIONS.get("fp32"))
    assert case.parts.critic.calls == [("full", True)]  # the D step: one concatenated forward, §1.4
    assert case.parts.g_critic.calls == [(g_mode, g_double)]


EXPECTED = {  # method -> (gradnorm, spectral, penalty weight, centre, site, G fast path, D step)
    "vanilla": (None, None, 0.0, 1.0, "interpolates", True, "tangent"),
    "sn": (None, "sn", 0.0, 1.0, "interpolates", True, "tangent"),
    "bsn": (None, "bsn", 0.0, 1.0, "interpolates", True, "tangent"),
    "sn-strict": (None, "sn-strict", 0.0, 1.0, "interpolates", True, "tangent"),
    "wgan-gp": (None, None, 10.0, 1.0, "interpolates", True, "tangent"),
    "r1": (None, None, 10.0, 0.0, "real", True, "tangent"),
    "gn": ("gn", None, 0.0, 1.0, "interpolates", True, "tangent"),
    "gran": ("gran", None, 0.0, 1.0, "interpolates", True, "tangent"),
    "pgn": ("pgn", None, 0.0, 1.0, "interpolates", True, "tangent"),
    "official-gn": ("gn", None, 0.0, 1.0, "interpolates", False, "double-backward"),
}
CANDIDATES = {  # D-step candidates, timed on request only
    "gn-db": ("gn", None, 0.0, 1.0, "interpolates", True, "double-backward"),
    "gran-db": ("gran", None, 0.0, 1.0, "interpolates", True, "double-backward"),
    "pgn-db": ("pgn", None, 0.0, 1.0, "interpolates", True, "double-backward"),
}


def test_each_method_is_the_config_it_names():
    assert list(DEFAULT_METHODS) == list(EXPECTED)
    assert sorted(BENCH_METHODS) == sorted({**EXPECTED, **CANDIDATES})
    s = tiny(n_dis=3, overrides=("model.options={width: 0.25}", "constraint.tau=2.0"))
    for method, expected in {**EXPECTED, **CANDIDATES}.items():
        cfg = method_config(method, s)
        c, p = cfg.constraint, cfg.penalty
        got = (c.gradnorm, c.spectral, p.weight, p.center, p.at, c.generator_fast_path, c.dstep)
        assert got == expected, method
        assert (cfg.loss.name, cfg.optim.n_dis, cfg.data.batch_size, cfg.model.arch) == (
            "hinge",
            3,
            8,
            "digits-cnn",
        )
        assert cfg.constraint.tau == 2.0 and cfg.cr.weight == 0.0


def test_the_order_rotates_so_that_each_method_leads_once():
    methods = list(DEFAULT_METHODS)
    leaders = [rotated(methods, r)[0] for r in range(len(methods))]
    assert sorted(leaders) == sorted(methods)
    assert all(sorted(rotated(methods, r)) == sorted(methods) for r in range(3))


@pytest.mark.skipif(not RssPeak(torch.device("cpu")).resettable, reason="needs /proc/self/clear_refs")
def test_the_cpu_probe_sees_an_allocation_it_brackets():
    probe = RssPeak(torch.device("cpu"))
    probe.start()
    block = torch.ones(16 * 2**20)  # 64 MiB, written, so resident
    peak = probe.stop()
    del block
    assert 60 * 2**20 <= peak <= 80 * 2**20


def test_bf16_runs_the_iteration_under_autocast():
    bf16 = PRECISIONS.get("bf16")
    with bf16.context(torch.device("cpu")):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with PRECISIONS.get("fp32").context(torch.device("cpu")):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_help_names_every_method(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # argparse wraps at hyphens
    assert all(method in text for method in DEFAULT_METHODS) and "max_memory_allocated" in text


def _bad_benches(tmp_path) -> dict[str, list[str]]:
    bad = {
        "unknown method": ["--methods", "gn", "wgan"],
        "method twice": ["--methods", "gn", "gn"],
        "unknown arch": ["--arch", "vit"],
        "batch 1": ["--batch", "1"],
        "repeats 0": ["--repeats", "0"],
        "n_dis 0": ["--n-dis", "0"],
        "negative warmup": ["--warmup", "-1"],
        "unknown device": ["--device", "tpu"],
        "fp16 on cpu": ["--precision", "fp16"],
        "unknown precision": ["--precision", "fp8"],
        "precision twice": ["--precision", "fp32", "bf16", "fp32"],
        "fp16 on cpu among several": ["--precision", "fp32", "fp16"],
        "only an override after --precision": ["--precision", "optim.lr_d=0.1"],
        "json in a missing folder": ["--json", str(tmp_path / "nope" / "b.json")],
        "json is a folder": ["--json", str(tmp_path)],
        "override without =": ["width"],
        "override of a flag's key": ["optim.n_dis=5"],
        "override of a method's key": ["constraint.gradnorm=gran"],
        "unknown arch option": ["model.options={depth: 3}"],
        "bad override value": ["optim.lr_d=-1"],
        "batch not a number": ["--batch", "many"],
    }
    if not torch.cuda.is_available():
        bad["cuda without cuda"] = ["--device", "cuda"]
    return {label: ["bench", *TINY, *args] for label, args in bad.items()}


def test_bad_values_stop_with_one_line_and_exit_2(tmp_path, capsys):
    failures = []
    for label, argv in _bad_benches(tmp_path).items():
        capsys.readouterr()
        try:
            code = main(argv)
        except SystemExit as exit_info:
            code = exit_info.code
        captured = capsys.readouterr()
        lines = [line for line in captured.err.splitlines() if line.strip()]
        one_line = len(lines) == 1 and lines[0].startswith("lipgan bench: error:")
        if code != 2 or not one_line or "Traceback" in captured.err or captured.out:
            failures.append((label, code, captured.err))
    assert not failures, failures
    assert not list(tmp_path.iterdir())  # no JSON was written


def test_the_settings_check_names_the_flag():
    with pytest.raises(Exception, match=r"^--precision fp16 needs CUDA"):
        check_settings(tiny(precision="fp16"))
    with pytest.raises(Exception, match=r"^--batch must be an integer of at least 2, not 1$"):
        check_settings(tiny(batch=1))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_steps_run_at_the_benched_precision_not_the_configs_default(precision):
    """The training config's default precision is `auto` (bf16 on a CPU that computes it): the bench must
    set the steps' own autocast from --precision, or an fp32 table would time bf16 steps."""
    cfg = method_config("gn", tiny(precision=precision))
    assert cfg.train.precision == precision
    case = build_case("gn", tiny(precision=precision), torch.device("cpu"))
    with case.parts.autocast():
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
    assert dtype == (torch.bfloat16 if precision == "bf16" else None)


def test_several_precisions_run_in_one_run_with_their_own_tables_and_speedups(tmp_path, capsys):
    path = tmp_path / "bench.json"
    # TINY's override comes first here; one after --precision is an override too
    argv = ["bench", *TINY[:-1], "--methods", "vanilla", "gn", "--precision", "fp32", "bf16", TINY[-1]]
    assert main([*argv, "--repeats", "1", "--warmup", "0", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    record = json.loads(path.read_text())
    assert (record["settings"]["precision"], record["settings"]["also_precisions"]) == ("fp32", ["bf16"])
    assert record["settings"]["overrides"] == ["model.options={width: 0.25}"]
    bf16 = record["other_precisions"]["bf16"]
    assert list(bf16) == list(record["methods"]) == ["vanilla", "gn"]
    for name in ("vanilla", "gn"):
        for stat in ("median", "min"):
            for p in PHASES:
                expected = record["methods"][name][f"{stat}_s"][p] / bf16[name][f"{stat}_s"][p]
                assert record["precision_speedup"]["bf16"][name][stat][p] == pytest.approx(
                    expected, rel=1e-12
                )
                ratio = bf16[name][f"{stat}_s"][p] / bf16["vanilla"][f"{stat}_s"][p]
                assert bf16[name]["vs_vanilla"][stat][p] == pytest.approx(ratio, rel=1e-12)
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 * 2 * (2 + 2) + (2 + 2)  # medians and minima per precision, then the speed-ups
    assert "fp32 → bf16, median (D / G / it.)" in out and ", bf16 on cpu (" in out


def test_every_precision_and_method_is_one_case_of_the_same_rotation(monkeypatch):
    calls = []

    def fake_iteration(case, device, precision):
        # each case was built at the precision it is run at: its steps' autocast agrees with the bench's
        assert case.cfg.train.precision == precision.name
        calls.append((precision.name, case.method))
        return _times([1.0], 1.0, 2.0)

    monkeypatch.setattr("lipgan.experiments.bench.run_iteration", fake_iteration)
    settings = tiny(methods=("vanilla", "gn"), also_precisions=("bf16",), repeats=4, warmup=1)
    result = run_bench(settings)
    cases = [("fp32", "vanilla"), ("fp32", "gn"), ("bf16", "vanilla"), ("bf16", "gn")]
    assert calls[:4] == cases  # the warm-up round
    timed = [calls[4 + 4 * r : 8 + 4 * r] for r in range(4)]
    assert [round[0] for round in timed] == cases  # each case leads one repetition
    assert all(sorted(round) == sorted(cases) for round in timed)
    assert [len(result.times[m]) for m in ("vanilla", "gn")] == [4, 4]
    assert [len(result.other_times["bf16"][m]) for m in ("vanilla", "gn")] == [4, 4]
