"""Time every candidate for the D step of GN (docs/methods.md §2.11, docs/performance.md "What each
optimization gave"): the D update alone (critic forward on 2B samples, input gradient, hinge loss, backward,
no optimizer step), interleaved in one process, each candidate once per repetition in a rotated order.

    OMP_NUM_THREADS=2 PYTHONPATH=src python benchmarks/dstep_candidates.py --arch sngan-cnn --batch 64

Candidates (each first checked against the reference gradients in float64 on a small batch):

- ``vanilla``: no constraint, the floor's unit (forward, backward into the weights);
- ``double-backward``: the reference (``constraint.dstep=double-backward``);
- ``db-params-only``: the reference, its final backward limited to D's parameters (``inputs=``), so
  nothing is computed for the input leaf;
- ``tangent``: ``constraint.dstep=tangent`` (the input enters D in ``torch.channels_last``);
- ``tangent-contiguous``: the same in the input's own layout;
- ``*-channels-last``: D's weights and its input in ``torch.channels_last``; ``db-input-channels-last``:
  the input only;
- ``db-no-mkldnn``: the reference with ``torch.backends.mkldnn`` off;
- ``db-compiled``: the reference with D under ``torch.compile`` (reported as an error where the double
  backward is not supported).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time

import torch

from lipgan.constraints.gradnorm import gradient_normalize
from lipgan.nets import build_gan


def d_update(D, x, dstep: str | None, params_only: bool = False) -> list[torch.Tensor]:
    """One D update's gradients: hinge loss of GN's output on reals (first half) and fakes."""
    half = x.shape[0] // 2
    if dstep is None:
        out = D(x).reshape(-1)
    else:
        out, _ = gradient_normalize(D, x, method="gn", dstep=dstep)
    loss = torch.relu(1 - out[:half]).mean() + torch.relu(1 + out[half:]).mean()
    params = [p for p in D.parameters() if p.requires_grad]
    if params_only:
        return list(torch.autograd.grad(loss, params))
    D.zero_grad(set_to_none=True)
    loss.backward()
    return [p.grad for p in params]


def candidates(D, arch: str):
    last = copy.deepcopy(D).to(memory_format=torch.channels_last)
    cl = (lambda x: x.contiguous(memory_format=torch.channels_last)) if arch != "mlp" else (lambda x: x)
    no_mkldnn = lambda: torch.backends.mkldnn.flags(enabled=False)  # noqa: E731
    compiled = torch.compile(D)
    return {
        "vanilla": lambda x: d_update(D, x, None),
        "double-backward": lambda x: d_update(D, x, "double-backward"),
        "db-params-only": lambda x: d_update(D, x, "double-backward", params_only=True),
        "tangent": lambda x: d_update(D, x, "tangent"),
        "tangent-contiguous": lambda x: d_update(D, x, "tangent-contiguous"),
        "vanilla-channels-last": lambda x: d_update(last, cl(x), None),
        "db-channels-last": lambda x: d_update(last, cl(x), "double-backward"),
        "db-input-channels-last": lambda x: d_update(D, cl(x), "double-backward"),
        "tangent-channels-last": lambda x: d_update(last, cl(x), "tangent"),
        "db-no-mkldnn": lambda x: _within(no_mkldnn, lambda: d_update(D, x, "double-backward")),
        "db-compiled": lambda x: d_update(compiled, x, "double-backward"),
    }


def _within(context, fn):
    with context():
        return fn()


def check_exact(arch: str) -> dict[str, float | str]:
    """Max relative gradient difference of every candidate from the reference, in float64."""
    torch.manual_seed(0)
    D = build_gan(arch).D.double()
    x = torch.randn(8, 3, 32, 32, dtype=torch.float64)
    fns = candidates(D, arch)
    want = [g.clone() for g in fns["double-backward"](x)]
    errors: dict[str, float | str] = {}
    for name, fn in fns.items():
        if name.startswith("vanilla"):
            continue
        try:
            got = fn(x)
        except Exception as err:  # noqa: BLE001 - the candidate's failure is the result
            errors[name] = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
            continue
        errors[name] = max(((a - b).norm() / b.norm()).item() for a, b in zip(got, want, strict=True))
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="sngan-cnn")
    parser.add_argument("--batch", type=int, default=64, help="per side: D sees 2·batch samples")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    errors = check_exact(args.arch)
    print("exactness (float64, max relative difference from double-backward):")
    for name, err in errors.items():
        print(f"  {name:24s} {err if isinstance(err, str) else f'{err:.1e}'}")
    torch.manual_seed(0)
    D = build_gan(args.arch).D
    x = torch.rand(2 * args.batch, 3, 32, 32) * 2 - 1
    fns = {k: v for k, v in candidates(D, args.arch).items() if not isinstance(errors.get(k, 0.0), str)}
    names = list(fns)
    for name in names:  # warm-up
        with contextlib.suppress(Exception):
            fns[name](x)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            fns[name](x)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["vanilla"])
    ref = statistics.median(times["double-backward"])
    print(f"\n{args.arch}, D on {2 * args.batch} samples, fp32, median of {args.repeats} (min in brackets):")
    print(f"  {'candidate':24s} {'ms':>8s} {'(min)':>8s} {'× vanilla':>10s} {'speed-up vs db':>15s}")
    for name in names:
        med, low = statistics.median(times[name]), min(times[name])
        print(f"  {name:24s} {med * 1e3:8.1f} {low * 1e3:8.1f} {med / base:10.2f} {ref / med:15.2f}")


if __name__ == "__main__":
    main()
