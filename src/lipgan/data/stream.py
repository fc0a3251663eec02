"""Endless, seeded, resumable batches, sharded across data-parallel ranks.

Epoch ``e`` visits the dataset in the order ``perm_e = randperm(N)`` drawn from a generator seeded with
``(seed, e)``, cut into ``N // B`` global batches of ``B`` items (the remainder is dropped). Global batch
``b`` is ``perm_e[b B : (b + 1) B]``; with ``W`` ranks, rank ``r`` takes its slice
``perm_e[b B + r B/W : b B + (r + 1) B/W]``, so the ranks' batches concatenated in rank order are the
one-process batch. The position ``(epoch, batch)`` is the whole state: restoring it continues the stream
exactly where it stopped, independent of how many batches were read before.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from lipgan.data.base import seeded_generator
from lipgan.errors import ConfigError

Batch = Any  # what the dataset's items collate to; (x [B, ...], y [B]) for lipgan datasets


class BatchStream:
    """Batches of ``dataset`` forever, epoch after epoch, in an order fixed by ``seed``.

    ``batch_size`` is the global batch size ``B``; each of the ``world_size`` ranks yields ``B / world_size``
    items. Datasets with ``get_batch(indices)`` (tensor-backed ones) are indexed directly; others are
    read item by item and collated, in ``num_workers`` DataLoader worker processes when it is positive.
    ``shuffle=False`` visits the items in order in every epoch.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        shuffle: bool = True,
        pin_memory: bool = False,
    ):
        check_layout(len(dataset), batch_size, rank, world_size)
        self.dataset = dataset
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, int(seed), rank, world_size
        self.num_workers, self.shuffle, self.pin_memory = num_workers, shuffle, pin_memory
        self.epoch, self.position = 0, 0
        self._order: tuple[int, torch.Tensor] | None = None  # (epoch, permutation [N]) cache
        self._workers: Iterator[Batch] | None = None

    @property
    def batches_per_epoch(self) -> int:
        return len(self.dataset) // self.batch_size

    @property
    def local_batch_size(self) -> int:
        return self.batch_size // self.world_size

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """The visiting order of ``epoch``: a permutation of ``range(N)`` (int64 ``[N]``)."""
        if self._order is None or self._order[0] != epoch:
            n = len(self.dataset)
            order = (
                torch.randperm(n, generator=seeded_generator(self.seed, epoch))
                if self.shuffle
                else torch.arange(n)
            )
            self._order = (epoch, order)
        return self._order[1]

    def batch_indices(self, epoch: int, position: int) -> torch.Tensor:
        """This rank's item indices in global batch ``position`` of ``epoch`` (int64 ``[B / W]``)."""
        start = position * self.batch_size + self.rank * self.local_batch_size
        return self.epoch_order(epoch)[start : start + self.local_batch_size]

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Batch:
        if self.position >= self.batches_per_epoch:
            self.epoch, self.position, self._workers = self.epoch + 1, 0, None
        batch = self._read_in_workers() if self.num_workers > 0 else self._read(self.epoch, self.position)
        self.position += 1
        return batch

    def _read(self, epoch: int, position: int) -> Batch:
        indices = self.batch_indices(epoch, position)
        get_batch = getattr(self.dataset, "get_batch", None)
        if get_batch is not None:
            return get_batch(indices)
        return default_collate([self.dataset[i] for i in indices.tolist()])

    def _read_in_workers(self) -> Batch:
        if self._workers is None:
            remaining = [
                self.batch_indices(self.epoch, p).tolist()
                for p in range(self.position, self.batches_per_epoch)
            ]
            loader = DataLoader(
                self.dataset,
                batch_sampler=remaining,
                num_workers=self.num_workers,
                pin_memory=self.pin_memory,
                worker_init_fn=ignore_ctrl_c,
            )
            self._workers = iter(loader)
        return next(self._workers)

    def state_dict(self) -> dict[str, int]:
        """The position of the next batch, with the settings that must match on resume."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "dataset_size": len(self.dataset),
            "shuffle": int(self.shuffle),
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from ``state`` (from :meth:`state_dict`; the world size may differ)."""
        expected = self.state_dict()
        for key in ("seed", "batch_size", "dataset_size", "shuffle"):
            if int(state[key]) != expected[key]:
                raise ConfigError(
                    f"cannot resume the data stream: {key} was {state[key]} and is now {expected[key]}"
                )
        self.epoch, self.position, self._workers = int(state["epoch"]), int(state["position"]), None


def ignore_ctrl_c(worker_id: int) -> None:
    """In a reader process: ignore SIGINT. Ctrl-C reaches every process of the terminal's job, and the main
    process decides when training stops (training/interrupt.py: after the step in progress, with a
    checkpoint); a reader must not end first and leave that step without its next batch. SIGTERM keeps
    torch's handling, with which the loader ends its readers at shutdown."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def check_layout(n: int, batch_size: int, rank: int, world_size: int) -> None:
    """ConfigError unless ``world_size`` divides ``batch_size``, ``0 <= rank < world_size`` and the
    dataset holds at least one full batch."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} is not in 0..{world_size - 1}")
    if batch_size < 1 or batch_size % world_size:
        raise ConfigError(
            f"batch size {batch_size} must be a positive multiple of the world size {world_size}"
        )
    if n < batch_size:
        raise ConfigError(f"the dataset has {n} items, fewer than one batch of {batch_size}")


def infinite_loader(dataset: Dataset, batch_size: int, seed: int = 0, **options: Any) -> BatchStream:
    """``BatchStream(dataset, batch_size, seed, **options)``: an endless iterator of batches."""
    return BatchStream(dataset, batch_size, seed, **options)
