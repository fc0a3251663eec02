"""The restricted domain of the loss (LipReg Fig. 1): the interval ``Ω`` of discriminator outputs that the
loss actually sees, and ``Ψ = L'(Ω)``, the derivatives of the loss terms over it.

A Lipschitz constraint narrows ``Ω``; over a narrow ``Ω`` every loss is nearly linear, so its derivative
interval ``Ψ`` is short, which is LipReg's explanation of why the losses behave alike under strong SN.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lipgan.analysis.base import plot_path, register_probe
from lipgan.analysis.context import ProbeContext, batched, constrained_output
from lipgan.analysis.plotting import band_panel, new_figure, save_figure
from lipgan.losses import TERM_NAMES, Loss, loss_derivatives

PSI_GRID_POINTS = 513  # points of the dense grid on which L' is evaluated over Ω
HISTORY_KEYS = ("d_out_min", "d_out_max")  # per logged step in metrics.jsonl
TERM_COLORS = {"d_real": "tab:blue", "d_fake": "tab:orange", "g_fake": "tab:green"}


def output_interval(values: torch.Tensor) -> tuple[float, float]:
    """``Ω = [min, max]`` of a set of discriminator outputs (LipReg Fig. 1)."""
    return float(values.min()), float(values.max())


def psi_interval(
    loss: Loss, low: float, high: float, n_points: int = PSI_GRID_POINTS
) -> dict[str, list[float]]:
    """``Ψ = L'(Ω)`` (LipReg Fig. 1) per loss term: ``[min, max]`` of the term's derivative over a dense grid
    of ``Ω = [low, high]`` (the derivative's range, not just its values at the ends)."""
    grid = torch.linspace(low, high, n_points, dtype=torch.float64)
    derivatives = loss_derivatives(loss, grid)
    return {term: [float(d.min()), float(d.max())] for term, d in derivatives.items()}


def read_history(path: Path | None) -> list[dict]:
    """The logged steps of ``metrics.jsonl`` that carry both ``d_out_min`` and ``d_out_max``, in order."""
    if path is None or not Path(path).is_file():
        return []
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    kept = [row for row in rows if all(row.get(k) is not None for k in HISTORY_KEYS)]
    for index, row in enumerate(kept):
        row.setdefault("step", index)
    return kept


def history_record(loss: Loss, rows: list[dict]) -> dict | None:
    """``Ω`` and ``Ψ`` per logged step:
    ``{"step", "omega_min", "omega_max", "psi": {term: {"min", "max"}}}``."""
    if not rows:
        return None
    psis = [psi_interval(loss, float(r["d_out_min"]), float(r["d_out_max"])) for r in rows]
    return {
        "step": [int(r["step"]) for r in rows],
        "omega_min": [float(r["d_out_min"]) for r in rows],
        "omega_max": [float(r["d_out_max"]) for r in rows],
        "psi": {
            term: {"min": [p[term][0] for p in psis], "max": [p[term][1] for p in psis]}
            for term in TERM_NAMES
        },
    }


def domain_headline(record: dict) -> dict:
    return {"loss": record["loss"], "omega": record["omega"], "psi": record["psi"]}


@register_probe("domain", figure="LipReg Fig. 1", headline=domain_headline)
def domain_probe(ctx: ProbeContext) -> dict:
    """``Ω`` of the constrained output on reals and fakes now, ``Ψ = L'(Ω)`` per loss term, and both over
    training from ``metrics.jsonl``."""
    with torch.no_grad():
        out_real = batched(lambda x: constrained_output(ctx)(x).detach(), ctx.real)
        out_fake = batched(lambda x: constrained_output(ctx)(x).detach(), ctx.fake)
    omega = output_interval(torch.cat([out_real, out_fake]))
    record = {
        "loss": ctx.loss.name,
        "domain_scale": ctx.loss.domain_scale,
        "step": ctx.step,
        "omega": list(omega),
        "omega_real": list(output_interval(out_real)),
        "omega_fake": list(output_interval(out_fake)),
        "psi": psi_interval(ctx.loss, *omega),
        "history": history_record(ctx.loss, read_history(ctx.metrics_path)),
    }
    plot_domain(ctx, record)
    return record


def plot_domain(ctx: ProbeContext, record: dict) -> None:
    fig, (ax_omega, ax_psi) = new_figure(2)
    history = record["history"]
    now = record["step"] if record["step"] is not None else (history["step"][-1] if history else 0)
    if history:
        steps = history["step"]
        mid = [(a + b) / 2 for a, b in zip(history["omega_min"], history["omega_max"])]
        band_panel(
            ax_omega, steps, mid, history["omega_min"], history["omega_max"], "Ω (logged)", "tab:purple"
        )
        for term in TERM_NAMES:
            low, high = history["psi"][term]["min"], history["psi"][term]["max"]
            band_panel(
                ax_psi, steps, [(a + b) / 2 for a, b in zip(low, high)], low, high, term, TERM_COLORS[term]
            )
    for name, color in (("omega_real", "tab:blue"), ("omega_fake", "tab:orange")):
        ax_omega.vlines(now, *record[name], colors=color, linewidth=6, alpha=0.7, label=f"{name[6:]} now")
    for term in TERM_NAMES:
        label = None if history else term
        ax_psi.vlines(
            now, *record["psi"][term], colors=TERM_COLORS[term], linewidth=6, alpha=0.5, label=label
        )
    ax_omega.set_title("Ω: range of the constrained output D̂")
    ax_omega.set_ylabel("D̂(x)")
    ax_psi.set_title(f"Ψ = L'(Ω), loss {record['loss']}")
    ax_psi.set_ylabel("L'(ω)")
    for ax in (ax_omega, ax_psi):
        ax.set_xlabel("training step")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    save_figure(fig, plot_path(ctx, "domain"), title="Restricted loss domain")
