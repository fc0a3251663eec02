"""CIFAR-10, CIFAR-100, STL-10 and MNIST from the files their authors distribute.

Downloads (``download=True``) go through torchvision, which fetches the archives from the official URLs and
checks their MD5 sums. Reading does not: torchvision's CIFAR and STL-10 classes recompute the MD5 of every
file on every load (seconds for STL-10's 2.6 GB) and STL-10's loads it all into memory, so the CIFAR python
batches and the STL-10 binaries are read here directly, in the same formats, trusting the user's files.
MNIST is read by ``torchvision.datasets.MNIST`` itself (it only checks that the idx files exist).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torchvision
from PIL import Image
from torchvision.datasets.utils import download_and_extract_archive

from lipgan.data.base import DATASETS, UNLABELED, PilImageDataset, data_root, pick, require
from lipgan.data.transforms import compose, pad_to, resize_to
from lipgan.errors import MissingFileError

DOWNLOAD_HINT = "or pass download=True (on the command line: data.download=true)"


def fetch_archive(source: type, root: Path, what: str) -> None:
    """Download and unpack ``source``'s archive (a torchvision dataset class's url/filename/tgz_md5)."""
    try:
        download_and_extract_archive(source.url, str(root), filename=source.filename, md5=source.tgz_md5)
    except OSError as error:
        raise MissingFileError(f"download of {what} from {source.url} failed ({error})") from None


@dataclass(frozen=True)
class CifarLayout:
    """Where a CIFAR variant keeps its python pickle batches and which key holds the labels."""

    title: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: str
    num_classes: int
    source: type


CIFAR_LAYOUTS = {
    "cifar10": CifarLayout(
        "CIFAR-10",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "labels",
        10,
        torchvision.datasets.CIFAR10,
    ),
    "cifar100": CifarLayout(
        "CIFAR-100",
        "cifar-100-python",
        ("train",),
        ("test",),
        "fine_labels",
        100,
        torchvision.datasets.CIFAR100,
    ),
}


def read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch: images uint8 ``[N, 32, 32, 3]`` and labels int64 ``[N]``.

    The files are Python 2 pickles of ``{"data": uint8 [N, 3072] (channel-major rows), "labels": [N], ...}``;
    ``encoding="bytes"`` reads them (keys come back as bytes) as well as Python 3 re-pickles."""
    try:
        with open(path, "rb") as file:
            entry = pickle.load(file, encoding="bytes")
        entry = {key.decode() if isinstance(key, bytes) else key: value for key, value in entry.items()}
        images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = np.asarray(entry[label_key], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, AttributeError) as error:
        raise MissingFileError(
            f"{path} is not a readable CIFAR batch ({error!r}); download it again"
        ) from None
    if labels.shape[0] != images.shape[0]:
        raise MissingFileError(f"{path} holds {images.shape[0]} images but {labels.shape[0]} labels")
    return np.ascontiguousarray(images), labels


class Cifar(PilImageDataset):
    """CIFAR-10 or CIFAR-100 at 32x32 with their class labels (fine labels for CIFAR-100)."""

    channels = 3
    resolution = 32

    def __init__(self, name: str, root: Path, split: str, download: bool):
        layout = CIFAR_LAYOUTS[name]
        self.name, self.split, self.num_classes = name, split, layout.num_classes
        files = [
            root / layout.folder / f for f in (layout.train_files if split == "train" else layout.test_files)
        ]
        if download and not all(f.exists() for f in files):
            fetch_archive(layout.source, root, layout.title)
        require(
            files,
            layout.title,
            f"unpack {layout.source.filename} (python version) under {root.resolve()} {DOWNLOAD_HINT}",
        )
        batches = [read_cifar_batch(f, layout.label_key) for f in files]
        self.images = np.concatenate([images for images, _ in batches])  # [N, 32, 32, 3] uint8
        self.labels = np.concatenate([labels for _, labels in batches])  # [N]
        self.transform = compose([], self.channels)

    def __len__(self) -> int:
        return self.images.shape[0]

    def load(self, index: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.images[index]), int(self.labels[index])


def cifar_builder(name: str):
    """The registered builder of CIFAR variant ``name``."""

    def build(*, root=None, resolution=None, split=None, download: bool = False) -> Cifar:
        pick(name, "resolution", resolution, (32,), 32)
        return Cifar(name, data_root(root), pick(name, "split", split, ("train", "test"), "train"), download)

    build.__doc__ = f"{CIFAR_LAYOUTS[name].title} at 32x32; split train (default) or test."
    return build


for _name in CIFAR_LAYOUTS:
    DATASETS.register(_name)(cifar_builder(_name))


STL10_FOLDER = "stl10_binary"
STL10_SIDE = 96
STL10_IMAGE_BYTES = 3 * STL10_SIDE * STL10_SIDE
STL10_PARTS = {
    "train": (("train_X.bin", "train_y.bin"),),
    "test": (("test_X.bin", "test_y.bin"),),
    "unlabeled": (("unlabeled_X.bin", None),),
    "train+unlabeled": (("train_X.bin", "train_y.bin"), ("unlabeled_X.bin", None)),
}


def stl10_labels(path: Path | None, count: int) -> np.ndarray:
    """Labels of an STL-10 part: the ``*_y.bin`` bytes (1…10) minus 1, or all :data:`UNLABELED`."""
    if path is None:
        return np.full(count, UNLABELED, dtype=np.int64)
    labels = np.fromfile(path, dtype=np.uint8).astype(np.int64) - 1
    if labels.shape[0] != count:
        raise MissingFileError(
            f"{path} holds {labels.shape[0]} labels but its images file holds {count} images"
        )
    return labels


def stl10_count(path: Path) -> int:
    """Number of 96x96 RGB images in an STL-10 ``*_X.bin`` file, from its size."""
    size = path.stat().st_size
    if size % STL10_IMAGE_BYTES:
        raise MissingFileError(
            f"{path} is {size} bytes, not a multiple of one 96x96x3 image; download it again"
        )
    return size // STL10_IMAGE_BYTES


class Stl10(PilImageDataset):
    """STL-10 images, memory-mapped from the binaries, resized from 96 to ``resolution``.

    Each ``*_X.bin`` is uint8 ``[N, 3, 96, 96]`` stored column-major within each channel (file order
    ``[N, C, W, H]``); ``*_y.bin`` holds one label byte 1…10 per image."""

    name = "stl10"
    channels = 3

    def __init__(self, root: Path, resolution: int, split: str, download: bool):
        self.resolution, self.split = resolution, split
        self.num_classes = None if split == "unlabeled" else 10
        folder = root / STL10_FOLDER
        files = [folder / f for part in STL10_PARTS[split] for f in part if f is not None]
        if download and not all(f.exists() for f in files):
            fetch_archive(torchvision.datasets.STL10, root, "STL-10")
        require(files, "STL-10", f"unpack stl10_binary.tar.gz under {root.resolve()} {DOWNLOAD_HINT}")
        self.image_files = [folder / images for images, _ in STL10_PARTS[split]]
        counts = [stl10_count(f) for f in self.image_files]
        labels = [
            stl10_labels(None if y is None else folder / y, c)
            for (_, y), c in zip(STL10_PARTS[split], counts)
        ]
        self.labels = np.concatenate(labels)  # [N]
        self.offsets = np.cumsum([0, *counts])  # part p holds global indices offsets[p] … offsets[p+1] − 1
        self.transform = compose(resize_to(resolution) if resolution != STL10_SIDE else [], self.channels)
        self._maps: list[np.memmap] | None = None

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_maps"] = None  # each DataLoader worker maps the files itself
        return state

    def load(self, index: int) -> tuple[Image.Image, int]:
        if self._maps is None:
            self._maps = [
                np.memmap(f, dtype=np.uint8, mode="r").reshape(-1, 3, STL10_SIDE, STL10_SIDE)
                for f in self.image_files
            ]
        part = int(np.searchsorted(self.offsets, index, side="right")) - 1
        stored = self._maps[part][index - self.offsets[part]]  # [C, W, H]
        return Image.fromarray(np.ascontiguousarray(stored.transpose(2, 1, 0))), int(self.labels[index])


@DATASETS.register("stl10")
def stl10(*, root=None, resolution=None, split=None, download: bool = False) -> Stl10:
    """STL-10 resized to ``resolution`` 48 (default; docs/methods.md §8.1: the unlabeled set at 48x48), 32,
    64 or 96; split unlabeled (default, 100k images), train, test or train+unlabeled."""
    return Stl10(
        data_root(root),
        pick("stl10", "resolution", resolution, (32, 48, 64, 96), 48),
        pick("stl10", "split", split, tuple(STL10_PARTS), "unlabeled"),
        download,
    )


MNIST_SIDE = 28


def rescale_from(size: int, resolution: int) -> list:
    """Bilinear resize of a ``size x size`` image to ``resolution`` (the ``fit="resize"`` of MNIST)."""
    return resize_to(resolution)


MNIST_FITS = {"pad": pad_to, "resize": rescale_from}


def mnist_raw_files(root: Path) -> list[Path]:
    """The four idx files ``torchvision.datasets.MNIST`` needs under ``root/MNIST/raw``."""
    names = [Path(url).stem for url, _ in torchvision.datasets.MNIST.resources]  # strip ".gz"
    return [root / "MNIST" / "raw" / name for name in names]


class Mnist(PilImageDataset):
    """MNIST through ``torchvision.datasets.MNIST`` (raw idx files), at 28x28 or fitted to 32x32."""

    name = "mnist"
    channels = 1
    num_classes = 10

    def __init__(self, root: Path, resolution: int, split: str, download: bool, fit: str):
        self.resolution, self.split = resolution, split
        files = mnist_raw_files(root)
        if not download:
            require(
                files,
                "MNIST",
                f"put the unpacked idx files (train-images-idx3-ubyte, …) there {DOWNLOAD_HINT}",
            )
        try:
            self.source = torchvision.datasets.MNIST(str(root), train=split == "train", download=download)
        except OSError as error:
            raise MissingFileError(f"download of MNIST into {files[0].parent} failed ({error})") from None
        except RuntimeError as error:  # torchvision's report after every mirror failed
            first_line = str(error).splitlines()[0]
            raise MissingFileError(
                f"download of MNIST into {files[0].parent} failed ({first_line.rstrip(':')})"
            ) from None
        steps = MNIST_FITS[fit](MNIST_SIDE, resolution) if resolution != MNIST_SIDE else []
        self.transform = compose(steps, self.channels)

    def __len__(self) -> int:
        return len(self.source)

    def load(self, index: int) -> tuple[Image.Image, int]:
        image, label = self.source[index]
        return image, int(label)


@DATASETS.register("mnist")
def mnist(*, root=None, resolution=None, split=None, download: bool = False, fit: str = "pad") -> Mnist:
    """MNIST at ``resolution`` 28 (default) or 32; ``fit`` says how 28 becomes 32: ``pad`` (2 black pixels
    on each side, default) or ``resize`` (bilinear); split train (default) or test."""
    return Mnist(
        data_root(root),
        pick("mnist", "resolution", resolution, (28, 32), 28),
        pick("mnist", "split", split, ("train", "test"), "train"),
        download,
        pick("mnist", "fit", fit, tuple(MNIST_FITS), "pad"),
    )
