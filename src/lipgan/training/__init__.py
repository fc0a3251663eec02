"""Training: typed config, the loop, D/G steps, EMA, checkpoints, run directory, logging and DDP."""

from lipgan.training.config import Config, load_config
from lipgan.training.load import LoadedRun, load_run

__all__ = ["Config", "LoadedRun", "load_config", "load_run"]
