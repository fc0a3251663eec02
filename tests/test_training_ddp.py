"""DDP on CPU (gloo): one D update on a batch split across 2 ranks equals, to 1e-6, the same update in one
process on the whole batch."""

from __future__ import annotations

import socket
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from conftest import toy_overrides
from lipgan.training import ddp
from lipgan.training.build import build_dataset, build_models
from lipgan.training.config import load_config
from lipgan.training.session import make_step_parts
from lipgan.training.steps import discriminator_step

WORLD = 2
BATCH = 16

# GN in the critic (by either D step) and a penalty at the reals exercise the D step and a second forward
# through the DDP-wrapped D within one update.
GN_R1 = {"constraint.gradnorm": "gn", "penalty.weight": 1.0, "penalty.center": 0.0, "penalty.at": "real"}
CASES = {
    # the tangent D step (§2.11): its weight gradients reach DDP's hooks through autograd
    "gn+r1": {**GN_R1, "constraint.dstep": "tangent"},
    "gn-double-backward+r1": {**GN_R1, "constraint.dstep": "double-backward"},
    "sn": {"constraint.gradnorm": "null", "constraint.spectral": "sn"},
    "gp": {"constraint.gradnorm": "null", "penalty.weight": 10.0, "penalty.at": "real+fake"},
    "sn+gp": {
        "constraint.gradnorm": "null",
        "constraint.spectral": "sn",
        "penalty.weight": 10.0,
        "penalty.at": "real+fake",
    },
}


def _setup(case: str, out_dir):
    # Adam's first step is lr·g/(|g| + eps): with the usual eps a gradient that is zero in exact arithmetic
    # (the last bias under hinge when every output is inside the margin) turns rounding noise into a full
    # lr-sized step. eps = 1 makes the update linear in the gradient, so it compares like the gradient does.
    # fp32: the comparison is of the averaged gradients at 1e-6; `auto` would train in bf16 on a CPU that
    # computes it, whose rounding differs between a batch and its halves
    extra = {"data.batch_size": BATCH, "optim.eps": 1.0, "optim.lr_d": 0.1, "train.precision": "fp32"}
    cfg = load_config(None, toy_overrides(out_dir, 1, **extra, **CASES[case]))
    dataset = build_dataset(cfg)
    models = build_models(cfg, dataset, torch.device("cpu"))
    real = dataset.x[:BATCH].clone()  # [B, 2]
    with torch.no_grad():
        fake = models.G(models.G.sample_z(BATCH, generator=torch.Generator().manual_seed(5), device="cpu"))
    return cfg, models, real, fake


def _update(case, out_dir, info, shard):
    cfg, models, real, fake = _setup(case, out_dir)
    parts = make_step_parts(cfg, models, info, torch.device("cpu"))
    discriminator_step(parts, real[shard], fake[shard])
    return {k: v.detach().clone() for k, v in models.D.state_dict().items()}


def _worker(rank: int, port: int, case: str, out_dir: str, result_path: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    info = ddp.DistInfo(rank=rank, world_size=WORLD, local_rank=rank)
    per_rank = BATCH // WORLD
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = _update(case, out_dir, info, slice(rank * per_rank, (rank + 1) * per_rank))
    if rank == 0:
        # a DDP-wrapped D must be replayable: a fallback to the double backward would go unseen otherwise
        fallbacks = [str(w.message) for w in caught if "constraint.dstep" in str(w.message)]
        torch.save({"state": state, "fallbacks": fallbacks}, result_path)
    dist.barrier()
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("case", sorted(CASES))
def test_split_batch_update_equals_single_process(tmp_path, case):
    result_path = tmp_path / "rank0.pt"
    mp.spawn(_worker, args=(_free_port(), case, str(tmp_path), str(result_path)), nprocs=WORLD, join=True)
    saved = torch.load(result_path, weights_only=True)
    split = saved["state"]
    assert saved["fallbacks"] == []
    whole = _update(case, tmp_path, ddp.DistInfo(), slice(None))
    initial = _setup(case, tmp_path)[1].D.state_dict()
    for key, value in whole.items():
        torch.testing.assert_close(split[key], value, rtol=0, atol=1e-6, msg=key)
    # the update moved the weights well beyond the tolerance, so the comparison has teeth
    moved = max(
        (whole[k] - initial[k]).abs().max().item() for k in whole if k.endswith(("weight", "original"))
    )
    assert moved > 1e-4
