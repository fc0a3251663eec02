"""What a run writes while it trains: `metrics.jsonl`, TensorBoard events and sample grids."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import save_image  # noqa: E402

from lipgan.registry import Registry  # noqa: E402
from lipgan.training.run_dir import append_jsonl  # noqa: E402


class MetricsLogger:
    """One JSON line per logged step into `metrics.jsonl`, mirrored to TensorBoard."""

    def __init__(self, run_dir: Path, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.path = run_dir / "metrics.jsonl"
        # on resume, TensorBoard hides the events a killed run wrote after its checkpoint
        self.writer = SummaryWriter(log_dir=str(run_dir / "tb"), purge_step=purge_step)

    def log(self, step: int, scalars: dict[str, float]) -> None:
        append_jsonl(self.path, {"step": step, **scalars})
        for key, value in scalars.items():
            if isinstance(value, float | int) and math.isfinite(value):
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


def summarize_step(stats: dict[str, torch.Tensor], lr_g: float, lr_d: float) -> dict[str, float]:
    """Scalars of one step: losses and terms, `n` on reals and fakes (mean/min/max), LipReg's Ω, LRs."""
    scalars: dict[str, float] = {}
    for key, value in stats.items():
        if value.dim() == 0:
            scalars[key] = float(value)
    for side in ("real", "fake"):
        grad_norm = stats.get(f"n_{side}")
        if grad_norm is not None:
            scalars[f"grad_norm_{side}_mean"] = float(grad_norm.mean())
            scalars[f"grad_norm_{side}_min"] = float(grad_norm.min())
            scalars[f"grad_norm_{side}_max"] = float(grad_norm.max())
    outputs = torch.cat([stats["out_real"], stats["out_fake"]])
    scalars["d_out_min"] = float(outputs.min())  # Ω, the interval of D outputs the loss sees
    scalars["d_out_max"] = float(outputs.max())
    scalars["d_out_real_mean"] = float(stats["out_real"].mean())
    scalars["d_out_fake_mean"] = float(stats["out_fake"].mean())
    raw = torch.cat([stats["raw_real"], stats["raw_fake"]])
    scalars["d_raw_min"] = float(raw.min())
    scalars["d_raw_max"] = float(raw.max())
    scalars["lr_g"] = lr_g
    scalars["lr_d"] = lr_d
    return scalars


SAMPLE_WRITERS: Registry = Registry("sample writer")
REFERENCE_POINTS = 2000  # real points drawn under generated ones in 2-D sample plots


def reference_points(dataset) -> torch.Tensor | None:
    """Real samples to draw behind generated 2-D points; None for images (grids show fakes only)."""
    if dataset.kind != "points":
        return None
    return torch.stack([dataset[i][0] for i in range(min(len(dataset), REFERENCE_POINTS))])


@SAMPLE_WRITERS.register("image")
def write_image_grid(
    fake: torch.Tensor, real: torch.Tensor | None, path: Path, title: str, per_row: int | None = None
) -> Path:
    """A grid of generated images in [−1, 1], `per_row` images a row (a conditional run's grid: one class
    per row), else as square as possible."""
    path = path.with_suffix(".png")
    nrow = per_row or max(1, int(math.sqrt(fake.shape[0])))
    save_image(fake.detach().cpu().float(), path, nrow=nrow, normalize=True, value_range=(-1, 1))
    return path


@SAMPLE_WRITERS.register("points")
def write_point_scatter(
    fake: torch.Tensor, real: torch.Tensor | None, path: Path, title: str, per_row: int | None = None
) -> Path:
    """Generated 2-D points over the real ones (`per_row` is a grid's and ignored)."""
    path = path.with_suffix(".png")
    fig, ax = plt.subplots(figsize=(5, 5))
    if real is not None:
        r = real.detach().cpu()
        ax.scatter(r[:, 0], r[:, 1], s=4, alpha=0.3, c="tab:blue", label="real")
    f = fake.detach().cpu()
    ax.scatter(f[:, 0], f[:, 1], s=4, alpha=0.5, c="tab:red", label="generated")
    ax.set_title(title)
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_training_curves(metrics: list[dict], path: Path, keys: list[str], title: str) -> Path | None:
    """Line plots of the named scalars of `metrics.jsonl` against the generator step."""
    present = [k for k in keys if any(k in row for row in metrics)]
    if not present:
        return None
    fig, axes = plt.subplots(len(present), 1, figsize=(7, 2.2 * len(present)), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], present):
        rows = [row for row in metrics if key in row]
        ax.plot([row["step"] for row in rows], [row[key] for row in rows], lw=1)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("generator step")
    axes[0, 0].set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
