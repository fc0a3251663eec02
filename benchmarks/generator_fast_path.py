"""Time one generator update with the critic in `mode="generator"` (no double backward) against
`mode="full"` (double backward), for each gradient normalization, on the SNGAN CNN at 32² or the digits nets.

    python benchmarks/generator_fast_path.py --arch sngan-cnn --batch 64 --repeats 5

Each timing is the median wall time of `repeats` full G updates (forward of G and D, input gradient, loss,
backward into G, Adam step); docs/methods.md §2.8.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lipgan.constraints.gradnorm import GRADNORM_METHODS, gradient_normalize
from lipgan.losses import get_loss
from lipgan.nets import build_gan

SHAPES = {"sngan-cnn": {"resolution": 32, "channels": 3}, "digits-cnn": {"resolution": 16, "channels": 1}}


def time_generator_update(G, D, optimizer, loss, method: str, mode: str, batch: int, repeats: int) -> float:
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(repeats + 1):  # the first update warms up the allocator and is not counted
        z = G.sample_z(batch, generator=gen, device="cpu")
        start = time.perf_counter()
        out, _ = gradient_normalize(D, G(z), method=method, mode=mode)
        optimizer.zero_grad(set_to_none=True)
        loss.g_loss(out).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", choices=sorted(SHAPES), default="digits-cnn")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    pair = build_gan(args.arch, **SHAPES[args.arch])
    pair.D.requires_grad_(False)
    optimizer = torch.optim.Adam(pair.G.parameters(), lr=1e-4)
    loss = get_loss("hinge")
    print(f"{args.arch}, batch {args.batch}, {torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"{'method':<10} {'full (s)':>10} {'generator (s)':>14} {'speed-up':>9}")
    for method in GRADNORM_METHODS.names():
        common = (pair.G, pair.D, optimizer, loss, method)
        full = time_generator_update(*common, "full", args.batch, args.repeats)
        fast = time_generator_update(*common, "generator", args.batch, args.repeats)
        print(f"{method:<10} {full:>10.4f} {fast:>14.4f} {full / fast:>8.2f}x")


if __name__ == "__main__":
    main()
