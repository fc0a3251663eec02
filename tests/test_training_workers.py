"""`data.num_workers` reaches the trainer's data stream: the batches come from reader processes, and the run
equals the one read in the main process bit for bit (the stream's order does not depend on who reads)."""

from __future__ import annotations

import torch

from conftest import toy_overrides
from lipgan.data.stream import BatchStream
from lipgan.training.trainer import train


def test_reader_processes_give_the_same_run(tmp_path, monkeypatch):
    calls = {"n": 0}
    read_in_workers = BatchStream._read_in_workers

    def counted(stream):
        calls["n"] += 1
        return read_in_workers(stream)

    monkeypatch.setattr(BatchStream, "_read_in_workers", counted)
    main_dir, _ = train(None, toy_overrides(tmp_path / "main", 3, **{"data.num_workers": 0}))
    assert calls["n"] == 0
    workers_dir, _ = train(None, toy_overrides(tmp_path / "workers", 3, **{"data.num_workers": 1}))
    assert calls["n"] == 3 * 2  # steps × n_dis batches, all from the reader
    main, workers = (
        torch.load(d / "checkpoints" / "last.pt", weights_only=True) for d in (main_dir, workers_dir)
    )
    for net in ("G", "D"):
        assert all(torch.equal(main[net][k], workers[net][k]) for k in main[net])
