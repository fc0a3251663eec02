"""CelebA aligned faces (``img_align_celeba``: 202,599 JPEGs of 178x218), unlabeled.

The layout is torchvision's, ``root/celeba/img_align_celeba/*.jpg`` (``root/img_align_celeba`` works too),
but only the images are needed: torchvision's ``CelebA`` class also demands the five attribute/identity
text files with matching MD5 sums. ``list_eval_partition.txt``, next to the image folder, is read only
for the splits train/valid/test; the default split ``all`` is every image, as GAN papers train on.

Crop: the centre ``crop x crop`` square is cut, then resized. The default crop depends on the resolution:
128 for 64x64, as BSSN (App., CelebA) states ("crop the center 128×128, and resize it to 64×64"), a
tight face crop; 178, the full width of the frame, for 128x128, as Mimicry (used by GraN) does, so that
128x128 images are not upsampled. ``crop`` overrides it.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from lipgan.data.base import DATASETS, UNLABELED, PilImageDataset, data_root, pick, positive_int
from lipgan.data.transforms import center_crop_then_resize, compose
from lipgan.errors import ConfigError, MissingFileError

CELEBA_IMAGE_FOLDER = "img_align_celeba"
CELEBA_PARTITION_FILE = "list_eval_partition.txt"
CELEBA_SPLITS = {"all": None, "train": 0, "valid": 1, "test": 2}
CELEBA_DEFAULT_CROP = {64: 128, 128: 178}
CELEBA_FRAME = (178, 218)  # width, height of an aligned image
CELEBA_SOURCE = (
    "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Align&Cropped Images, img_align_celeba.zip)"
)


def find_image_folder(root: Path) -> Path:
    """``root/celeba/img_align_celeba`` or ``root/img_align_celeba``, whichever exists."""
    candidates = [root / "celeba" / CELEBA_IMAGE_FOLDER, root / CELEBA_IMAGE_FOLDER]
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise MissingFileError(
        f"CelebA not found: {candidates[0].resolve()} does not exist; unzip img_align_celeba.zip "
        f"from {CELEBA_SOURCE} there"
    )


def read_partition(path: Path, split: str) -> list[str]:
    """Image names of ``split`` from ``list_eval_partition.txt`` (lines ``000001.jpg 0``)."""
    if not path.exists():
        raise MissingFileError(
            f"CelebA split {split!r} needs {path.resolve()} (from {CELEBA_SOURCE}); or use split=all"
        )
    wanted = str(CELEBA_SPLITS[split])
    rows = (line.split() for line in path.read_text().splitlines())
    return sorted(row[0] for row in rows if len(row) == 2 and row[1] == wanted)


class CelebA(PilImageDataset):
    """Aligned CelebA faces, centre-cropped to ``crop`` and resized to ``resolution``; ``y`` is −1."""

    name = "celeba"
    channels = 3

    def __init__(self, root: Path, resolution: int, split: str, crop: int):
        self.resolution, self.split, self.crop = resolution, split, crop
        self.folder = find_image_folder(root)
        if split == "all":
            self.files = sorted(p.name for p in self.folder.iterdir() if p.suffix.lower() == ".jpg")
        else:
            self.files = read_partition(self.folder.parent / CELEBA_PARTITION_FILE, split)
        if not self.files:
            raise MissingFileError(f"CelebA: no images of split {split!r} in {self.folder.resolve()}")
        self.transform = compose(center_crop_then_resize(crop, resolution), self.channels)

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> tuple[Image.Image, int]:
        path = self.folder / self.files[index]
        try:
            image = Image.open(path)
            image.load()
        except FileNotFoundError:
            raise MissingFileError(
                f"CelebA image {path.resolve()} listed in the partition file is missing"
            ) from None
        return image, UNLABELED


@DATASETS.register("celeba")
def celeba(*, root=None, resolution=None, split=None, crop: int | None = None) -> CelebA:
    """CelebA at ``resolution`` 64 (default) or 128; split all (default), train, valid or test; ``crop``
    the centre square side before resizing (default 128 at 64x64, 178 at 128x128)."""
    resolution = pick("celeba", "resolution", resolution, tuple(CELEBA_DEFAULT_CROP), 64)
    crop = CELEBA_DEFAULT_CROP[resolution] if crop is None else positive_int("celeba", "crop", crop)
    if crop > min(CELEBA_FRAME):
        raise ConfigError(f"dataset 'celeba': crop {crop} exceeds the {CELEBA_FRAME[0]}-pixel frame width")
    split = pick("celeba", "split", split, tuple(CELEBA_SPLITS), "all")
    return CelebA(data_root(root), resolution, split, crop)
