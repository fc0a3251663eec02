"""LSUN scene categories from the LMDB databases of the official release (e.g. ``bedroom_train_lmdb``).

Each database maps an image key to the encoded image (JPEG in the release; WebP in some re-packs); PIL
decodes either. Images are resized so that the shorter side is ``resolution``, then centre-cropped.

torchvision's ``LSUN`` class is not used: it writes a key cache into the working directory. The database
is opened read-only without locking, once per process, and its keys are listed once when the dataset is
built (about a minute for the 3M bedrooms).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from lipgan.data.base import DATASETS, UNLABELED, PilImageDataset, data_root, pick
from lipgan.data.transforms import compose, resize_then_center_crop
from lipgan.errors import MissingFileError

LSUN_CATEGORIES = (
    "bedroom",
    "bridge",
    "church_outdoor",
    "classroom",
    "conference_room",
    "dining_room",
    "kitchen",
    "living_room",
    "restaurant",
    "tower",
)
LSUN_SPLITS = ("train", "val")
LSUN_RESOLUTIONS = (64, 128, 256)
LSUN_SOURCE = "https://github.com/fyu/lsun (python3 download.py -c {category}), then unzip"


_ENVIRONMENTS: dict[str, object] = {}  # one open environment per database and process (LMDB allows no more)


def open_lmdb(path: Path):
    """The read-only, lock-free LMDB environment on the database folder ``path``, opened once per process
    and shared; a forked DataLoader worker reuses its parent's (read-only and lock-free, so nothing is
    shared but the memory map), a spawned one opens its own."""
    import lmdb

    key = str(path.resolve())
    if key not in _ENVIRONMENTS:
        try:
            _ENVIRONMENTS[key] = lmdb.open(key, readonly=True, lock=False, readahead=False, meminit=False)
        except lmdb.Error as error:
            raise MissingFileError(f"{key} is not a readable LMDB database ({error})") from None
    return _ENVIRONMENTS[key]


class KeyList:
    """The keys of a database packed into one bytes object and an offsets array (compact for millions)."""

    def __init__(self, keys: list[bytes]):
        self.blob = b"".join(keys)
        self.offsets = np.cumsum([0, *(len(k) for k in keys)], dtype=np.int64)  # [N + 1]

    def __len__(self) -> int:
        return self.offsets.shape[0] - 1

    def __getitem__(self, index: int) -> bytes:
        return self.blob[self.offsets[index] : self.offsets[index + 1]]


def list_keys(path: Path) -> KeyList:
    """Every key of the database at ``path``, in LMDB order."""
    with open_lmdb(path).begin(write=False) as txn:
        keys = list(txn.cursor().iternext(keys=True, values=False))
    return KeyList(keys)


class LsunLmdb(PilImageDataset):
    """One LSUN category database; ``y`` is −1 (one category, no classes)."""

    name = "lsun"
    channels = 3

    def __init__(self, path: Path, category: str, resolution: int, split: str):
        self.path, self.category, self.resolution, self.split = path, category, resolution, split
        self.keys = list_keys(path)
        if len(self.keys) == 0:
            raise MissingFileError(f"LSUN database {path.resolve()} is empty")
        self.transform = compose(resize_then_center_crop(resolution), self.channels)

    def __len__(self) -> int:
        return len(self.keys)

    def load(self, index: int) -> tuple[Image.Image, int]:
        with open_lmdb(self.path).begin(write=False) as txn:
            encoded = txn.get(self.keys[index])
        try:
            image = Image.open(io.BytesIO(encoded))
            image.load()
        except (UnidentifiedImageError, OSError) as error:
            raise MissingFileError(
                f"LSUN {self.path.resolve()}: entry {index} is not an image ({error})"
            ) from None
        return image, UNLABELED


def lsun_path(root: Path, category: str, split: str) -> Path:
    """The database folder: ``root`` if it holds ``data.mdb``, else ``root/<category>_<split>_lmdb``."""
    if (root / "data.mdb").exists():
        return root
    return root / f"{category}_{split}_lmdb"


@DATASETS.register("lsun")
def lsun(*, root=None, resolution=None, split=None, category: str = "bedroom") -> LsunLmdb:
    """LSUN ``category`` (default bedroom) at ``resolution`` 128 (default), 64 or 256; split train
    (default) or val. ``root`` is the folder holding ``<category>_<split>_lmdb/`` (or that folder itself)."""
    category = pick("lsun", "category", category, LSUN_CATEGORIES, "bedroom")
    split = pick("lsun", "split", split, LSUN_SPLITS, "train")
    path = lsun_path(data_root(root), category, split)
    if not (path / "data.mdb").exists():
        raise MissingFileError(
            f"LSUN {category} {split} not found: {path.resolve()}/data.mdb does not exist; get it from "
            f"{LSUN_SOURCE.format(category=category)} under {data_root(root).resolve()}"
        )
    return LsunLmdb(path, category, pick("lsun", "resolution", resolution, LSUN_RESOLUTIONS, 128), split)
