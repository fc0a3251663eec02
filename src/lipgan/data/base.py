"""The dataset registry, the attributes every dataset carries, and the checks shared by the builders.

A builder is a function ``builder(*, root, resolution, split, **options) -> LipganDataset`` registered in
:data:`DATASETS` under the dataset's name. :func:`lipgan.data.get_dataset` looks it up, checks the option
names against the builder's signature and calls it. Builders pick their own defaults for ``resolution``
and ``split`` when those are ``None`` and reject other values with a :class:`ConfigError` that lists the
valid ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from lipgan.errors import ConfigError, MissingFileError
from lipgan.registry import Registry

DatasetBuilder = Callable[..., "LipganDataset"]

DATASETS: Registry[DatasetBuilder] = Registry("dataset")

#: Where real datasets are looked for when no ``root`` is given (relative to the working directory).
DEFAULT_ROOT = "data"

#: Label of an image without a class.
UNLABELED = -1

_COMMON_ARGS = ("root", "resolution", "split")


class LipganDataset(Dataset):
    """A map-style dataset of ``(x, y)`` pairs with the attributes the trainer and the metrics read.

    ``kind`` is ``"image"`` (x is float32 ``[C, H, W]`` in [−1, 1]) or ``"points"`` (x is float32 ``[2]``);
    ``channels`` is C (2 for points); ``resolution`` is H = W (``None`` for points); ``num_classes`` is
    ``None`` when every ``y`` is :data:`UNLABELED`.
    """

    name: str
    kind: str
    channels: int
    resolution: int | None
    split: str
    num_classes: int | None = None

    def describe(self) -> str:
        """One line naming the dataset, its split, its size and its shape."""
        shape = "points in R^2" if self.kind == "points" else f"{self.channels}x{self.resolution}²"
        return f"{self.name} ({self.split}, {len(self)} items, {shape})"


class TensorDataset(LipganDataset):
    """A dataset held in two tensors, ``x`` ``[N, ...]`` and ``y`` ``[N]`` (int64).

    :meth:`get_batch` indexes both tensors at once, which :class:`lipgan.data.BatchStream` uses instead of
    collating items one by one.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x has {x.shape[0]} rows but y has {y.shape[0]}")
        self.x = x.contiguous()
        self.y = y.to(torch.int64)

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.x[index], int(self.y[index])

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``indices`` (int64 ``[B]``) of x and y: ``([B, ...], [B])``."""
        return self.x[indices], self.y[indices]


class PilImageDataset(LipganDataset):
    """A dataset that decodes one PIL image at a time and turns it into a tensor with ``transform``.

    Subclasses implement :meth:`load` (and ``__len__``); ``transform`` maps a PIL image to float32
    ``[C, H, W]`` in [−1, 1] (see :mod:`lipgan.data.transforms`).
    """

    kind = "image"
    transform: Callable[[Image.Image], torch.Tensor]

    def load(self, index: int) -> tuple[Image.Image, int]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.load(index)
        image = image.convert("L" if self.channels == 1 else "RGB")
        return self.transform(image), int(label)


def derive_seed(*parts: int) -> int:
    """A 32-bit seed that depends on every one of ``parts`` (non-negative ints) through NumPy's
    SeedSequence, so that nearby inputs such as (seed, epoch) and (seed, epoch + 1) give unrelated streams."""
    if any(int(p) < 0 for p in parts):
        raise ConfigError(f"seeds must be non-negative integers, got {parts}")
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def seeded_generator(*parts: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed` of ``parts``."""
    return torch.Generator().manual_seed(derive_seed(*parts))


def pick(dataset: str, what: str, value: Any, valid: Sequence[Any], default: Any) -> Any:
    """``value`` if it is one of ``valid``, ``default`` if it is ``None``; otherwise a ConfigError."""
    if value is None:
        return default
    if value not in valid:
        listed = ", ".join(str(v) for v in valid)
        raise ConfigError(f"dataset {dataset!r}: {what} {value!r} is not valid; valid: {listed}")
    return value


def no_resolution(dataset: str, resolution: Any) -> None:
    """Points have no resolution: anything but ``None`` is a ConfigError."""
    if resolution is not None:
        raise ConfigError(f"dataset {dataset!r} is 2-D points and takes no resolution; valid: None")


def positive_int(dataset: str, what: str, value: Any) -> int:
    """``value`` as an int if it is a positive integer, else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ConfigError(f"dataset {dataset!r}: {what} must be a positive integer, got {value!r}")
    return int(value)


def positive_float(dataset: str, what: str, value: Any) -> float:
    """``value`` as a float if it is a positive number, else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"dataset {dataset!r}: {what} must be a positive number, got {value!r}")
    return float(value)


def data_root(root: str | Path | None) -> Path:
    """The directory real datasets are looked for in: ``root``, or :data:`DEFAULT_ROOT`."""
    return Path(DEFAULT_ROOT if root is None else root).expanduser()


def require(paths: Sequence[Path], what: str, hint: str) -> None:
    """Raise MissingFileError naming the first of ``paths`` that does not exist, with ``hint`` on how
    to get it."""
    for path in paths:
        if not path.exists():
            raise MissingFileError(f"{what} not found: {path.resolve()} does not exist; {hint}")


def option_names(builder: DatasetBuilder) -> list[str]:
    """The dataset-specific keyword options of ``builder`` (everything but root, resolution, split;
    ``download`` is among them for the datasets that can be downloaded)."""
    parameters = inspect.signature(builder).parameters
    return sorted(name for name in parameters if name not in _COMMON_ARGS)


def check_options(name: str, builder: DatasetBuilder, options: dict[str, Any]) -> None:
    """A ConfigError listing the valid options when ``options`` holds a name ``builder`` does not take."""
    valid = [option for option in option_names(builder) if option != "download"]  # a get_dataset argument
    unknown = sorted(set(options) - set(valid))
    if unknown:
        listed = ", ".join(valid) if valid else "(none)"
        raise ConfigError(f"dataset {name!r} has no option {', '.join(unknown)}; valid: {listed}")
