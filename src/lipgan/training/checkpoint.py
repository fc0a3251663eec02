"""Atomic, self-verifying checkpoints that load with `torch.load(weights_only=True)`.

A checkpoint holds the model, optimizer and EMA state dicts, every RNG state the loop uses, the data stream
position and the step, so that a resumed run continues bit for bit on the same device. It also holds
`sha256`, a hash of everything else in it (every tensor's dtype, shape and bytes, every key and scalar), so
that a flipped byte in the weights is detected on load instead of silently resumed from.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import torch

from lipgan.errors import CheckpointError, MissingFileError

HASH_KEY = "sha256"
REQUIRED_KEYS = ("step", "G", "D")


def content_hash(state: object) -> str:
    """SHA-256 over a canonical walk of `state`: equal for equal contents, whatever the file layout."""
    digest = hashlib.sha256()
    _feed(digest, state)
    return digest.hexdigest()


def _feed(digest, obj: object) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{t.dtype}{tuple(obj.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        digest.update(b"{")
        for key, value in obj.items():
            digest.update(repr(key).encode())
            _feed(digest, value)
        digest.update(b"}")
    elif isinstance(obj, list | tuple):
        digest.update(b"[" if isinstance(obj, list) else b"(")
        for value in obj:
            _feed(digest, value)
        digest.update(b"]")
    else:
        digest.update(f"{type(obj).__name__}:{obj!r}".encode())


def save_checkpoint(state: dict, path: Path) -> None:
    """Write to a temporary file in the same folder, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save({**state, HASH_KEY: content_hash(state)}, tmp)
        os.replace(tmp, path)
    except BaseException:  # a full disk, or a second Ctrl-C: the previous checkpoint stays as it was
        tmp.unlink(missing_ok=True)
        raise


def copy_checkpoint(source: Path, target: Path) -> None:
    """`target` becomes a copy of `source`, atomically (a temporary copy, then a rename)."""
    tmp = target.with_name(target.name + ".tmp")
    try:
        tmp.write_bytes(source.read_bytes())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: Path) -> None:
    """Drop the `*.tmp` files an interrupted save left behind; the checkpoints themselves are whole."""
    for tmp in folder.glob("*.tmp"):
        tmp.unlink()


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict:
    """The state saved at `path`, checked against its hash; every way a file can be wrong is one line."""
    if not path.is_file():
        raise MissingFileError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():  # a foreign pickle's protocol warning is noise beside our one line
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch's unpickler fails on garbage in many ways (IndexError, KeyError, ...)
        reason = (
            " ".join(str(err).split()).split(". ")[0][:120] or type(err).__name__
        )  # torch's first sentence
        raise CheckpointError(
            f"checkpoint {path} cannot be read (truncated or not a checkpoint): {reason}"
        ) from None
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        raise CheckpointError(f"checkpoint {path} is not a lipgan checkpoint (no step, G and D)")
    expected = state.pop(HASH_KEY, None)  # checkpoints written before the hash was added have none
    if expected is not None and content_hash(state) != expected:
        raise CheckpointError(f"checkpoint {path} is corrupted: its content no longer matches its SHA-256")
    return state


def load_state(module: torch.nn.Module, state: dict, what: str, path: Path) -> None:
    """`module.load_state_dict(state)`, with a mismatch (a config that changed since) as one line."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"checkpoint {path}: {what} does not fit the run's config ({first[:160]})"
        ) from None


def rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
