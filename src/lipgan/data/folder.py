"""Any folder of images, searched recursively (PNG, JPEG, WebP, BMP, PPM, TIFF, GIF).

Images are resized so that the shorter side is ``resolution``, then centre-cropped to a square. Labels
follow torchvision's ``ImageFolder`` convention when it applies: if every image lies inside a first-level
subfolder, ``y`` is the index of that subfolder in sorted order; otherwise every ``y`` is −1.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from lipgan.data.base import DATASETS, UNLABELED, PilImageDataset, data_root, pick, positive_int
from lipgan.data.transforms import compose, resize_then_center_crop
from lipgan.errors import ConfigError, MissingFileError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".ppm", ".tif", ".tiff", ".gif")


def list_images(folder: Path) -> list[Path]:
    """Every image file under ``folder`` (recursively, following links), relative to it, sorted."""
    found = []
    for directory, subdirs, files in os.walk(folder, followlinks=True):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        found.extend(
            Path(directory, f).relative_to(folder) for f in files if f.lower().endswith(IMAGE_SUFFIXES)
        )
    return sorted(found)


def class_labels(files: list[Path]) -> tuple[list[int], int | None]:
    """ImageFolder labels (index of the sorted first-level subfolder) and the class count, or all −1 and
    ``None`` when some image sits directly in the top folder."""
    if not files or any(len(f.parts) == 1 for f in files):
        return [UNLABELED] * len(files), None
    classes = sorted({f.parts[0] for f in files})
    index = {name: i for i, name in enumerate(classes)}
    return [index[f.parts[0]] for f in files], len(classes)


class ImageFolderDataset(PilImageDataset):
    """The images of one folder tree at ``resolution`` with ``channels`` 3 (RGB) or 1 (grayscale)."""

    name = "folder"

    def __init__(self, folder: Path, resolution: int, channels: int, split: str):
        if not folder.is_dir():
            raise MissingFileError(f"image folder not found: {folder.resolve()} is not a directory")
        self.folder, self.resolution, self.channels, self.split = folder, resolution, channels, split
        self.files = list_images(folder)
        if not self.files:
            suffixes = ", ".join(IMAGE_SUFFIXES)
            raise MissingFileError(f"no images ({suffixes}) found under {folder.resolve()}")
        self.labels, self.num_classes = class_labels(self.files)
        self.transform = compose(resize_then_center_crop(resolution), channels)

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> tuple[Image.Image, int]:
        path = self.folder / self.files[index]
        try:
            image = Image.open(path)
            image.load()
        except (UnidentifiedImageError, OSError) as error:
            raise MissingFileError(f"cannot read image {path.resolve()} ({error})") from None
        return image, self.labels[index]


@DATASETS.register("folder")
def folder(*, root=None, resolution=None, split=None, channels: int = 3) -> ImageFolderDataset:
    """Every image under the folder ``root`` (required) at ``resolution`` (default 64); the folder is one
    set, so split ``all`` (default) and ``train`` both mean every image; ``channels`` 3 (default, RGB) or 1
    (grayscale)."""
    if root is None:
        raise ConfigError("dataset 'folder' needs root=<a folder of images>")
    split = pick("folder", "split", split, ("all", "train"), "all")
    resolution = 64 if resolution is None else positive_int("folder", "resolution", resolution)
    channels = pick("folder", "channels", channels, (1, 3), 3)
    return ImageFolderDataset(Path(root).expanduser(), resolution, channels, split)


class CelebAHQDataset(ImageFolderDataset):
    """CelebA-HQ (Karras et al. 2018) as a folder of its 30,000 images; no labels."""

    name = "celeba_hq"


CELEBA_HQ_SOURCE = (
    "the 30k CelebA-HQ images (PNG or JPEG, any size: they are resized), e.g. made with the PGGAN "
    "dataset_tool or unpacked from a released 1024/256 copy"
)


@DATASETS.register("celeba_hq")
def celeba_hq(*, root=None, resolution=None, split=None) -> CelebAHQDataset:
    """CelebA-HQ from the folder ``root/celeba_hq`` (default root ``./data``), at ``resolution`` 128
    (default) or 256 as GN Table 5 uses it, or any other side; the GN code trains on all 30k images, so
    split ``all`` (default) and ``train`` both mean every image (docs/methods.md §8.1)."""
    split = pick("celeba_hq", "split", split, ("all", "train"), "all")
    resolution = 128 if resolution is None else positive_int("celeba_hq", "resolution", resolution)
    folder = data_root(root) / "celeba_hq"
    if not folder.is_dir():
        raise MissingFileError(
            f"CelebA-HQ not found: {folder.resolve()} is not a directory; put there {CELEBA_HQ_SOURCE}"
        )
    dataset = CelebAHQDataset(folder, resolution, 3, split)
    dataset.labels, dataset.num_classes = [UNLABELED] * len(dataset.files), None  # subfolders are no classes
    return dataset
