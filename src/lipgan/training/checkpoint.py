"""Atomic checkpoints that load with `torch.load(weights_only=True)`.

A checkpoint holds the model, optimizer and EMA state dicts, every RNG state the loop uses, the data stream
position and the step, so that a resumed run continues bit for bit on the same device.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from lipgan.errors import MissingFileError


def save_checkpoint(state: dict, path: Path) -> None:
    """Write to a temporary file in the same folder, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict:
    if not path.is_file():
        raise MissingFileError(f"checkpoint {path} does not exist")
    return torch.load(path, map_location=device, weights_only=True)


def rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
