"""Training: typed config, the loop, D/G steps, EMA, checkpoints, run directory, logging and DDP.

`load_run` and `LoadedRun` are loaded on first use, so that importing the config (as the CLI does first)
does not import torch.
"""

import importlib

from lipgan.training.config import Config, load_config

__all__ = ["Config", "LoadedRun", "load_config", "load_run"]


def __getattr__(name: str):
    if name in ("LoadedRun", "load_run"):
        return getattr(importlib.import_module("lipgan.training.load"), name)
    raise AttributeError(f"module 'lipgan.training' has no attribute {name!r}")
