"""Tiny datasets written in the genuine on-disk formats, at the paths the readers of `lipgan.data` expect.

Each `write_*` function takes the root folder a config's `data.root` names and writes a handful of random
images there, laid out as the official release unpacks: the CIFAR python pickle batches, the STL-10
binaries, the MNIST idx files, CelebA's aligned JPEGs of 178x218 (with `list_eval_partition.txt`) and
LSUN's `bedroom_train_lmdb` database of encoded images. `write_all(root)` writes every one of them.
The lower-level writers (`write_cifar`, `write_stl10`, `write_idx`, `write_lmdb`, `write_jpegs`, `encode`)
are shared with `tests/test_data.py`, which checks that the readers return exactly what was written.
"""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
CIFAR100_FILES = ("train", "test")
MNIST_FILES = {  # idx file name -> whether it holds the images (else the labels)
    "train-images-idx3-ubyte": True,
    "train-labels-idx1-ubyte": False,
    "t10k-images-idx3-ubyte": True,
    "t10k-labels-idx1-ubyte": False,
}
CELEBA_FRAME = (218, 178)  # height, width of an aligned CelebA image
LSUN_FRAME = (256, 342)  # height, width: LSUN's images have their shorter side at 256


def random_pixels(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Uniform random uint8 pixels of `shape`."""
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def encode(image: np.ndarray, fmt: str, **options) -> bytes:
    """`image` (uint8 [H, W] or [H, W, C]) encoded by PIL as `fmt` (PNG, JPEG, WEBP, ...)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **options)
    return buffer.getvalue()


class Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` opcodes, as the pickles of the CIFAR release were written."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        self.write(
            pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)
        )
        self.write(obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def write_cifar(
    root: Path,
    folder: str,
    files: dict[str, int],
    label_key: bytes,
    classes: int,
    py2: bool,
    rng: np.random.Generator,
) -> dict[str, tuple[np.ndarray, list[int]]]:
    """CIFAR python batches {b'data': uint8 [N, 3072], label_key: [N]}; returns {name: (images, labels)}."""
    (root / folder).mkdir(parents=True, exist_ok=True)
    content = {}
    for name, count in files.items():
        images, labels = random_pixels(rng, count, 32, 32, 3), rng.integers(0, classes, size=count).tolist()
        entry = {
            b"batch_label": b"batch",
            b"data": images.transpose(0, 3, 1, 2).reshape(count, 3072),  # channel-major rows
            label_key: labels,
        }
        with open(root / folder / name, "wb") as file:
            (Python2Pickler(file, protocol=2) if py2 else pickle.Pickler(file)).dump(entry)
        content[name] = (images, labels)
    return content


def write_stl10(folder: Path, name: str, images: np.ndarray, labels: np.ndarray | None = None) -> None:
    """STL-10 binary: uint8 images [N, C, H, W] stored column-major, i.e. as [N, C, W, H]; labels 1..10."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}_X.bin").write_bytes(images.transpose(0, 1, 3, 2).tobytes())
    if labels is not None:
        (folder / f"{name}_y.bin").write_bytes((labels + 1).astype(np.uint8).tobytes())


def write_idx(path: Path, array: np.ndarray) -> None:
    """The idx format: big-endian magic (0x08 = uint8, then the rank), the sizes, the bytes."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_lmdb(folder: Path, entries: dict[bytes, bytes]) -> None:
    """An LMDB database in `folder` mapping each key to its value (an encoded image)."""
    import lmdb  # here, so the other writers work where lmdb is not installed (benchmarks/gpu_check.sh)

    env = lmdb.open(str(folder), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for key, value in entries.items():
            txn.put(key, value)
    env.close()


def write_jpegs(folder: Path, images: list[np.ndarray]) -> list[str]:
    """`images` as `000001.jpg`, `000002.jpg`, ... in `folder` (CelebA's naming); returns the names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{index:06d}.jpg" for index in range(1, len(images) + 1)]
    for name, image in zip(names, images):
        (folder / name).write_bytes(encode(image, "JPEG", quality=95))
    return names


def write_fake_cifar10(root: Path, per_file: int = 2, seed: int = 0) -> None:
    """`root/cifar-10-batches-py`: five train batches and the test batch, `per_file` images each."""
    rng = np.random.default_rng(seed)
    write_cifar(root, "cifar-10-batches-py", dict.fromkeys(CIFAR10_FILES, per_file), b"labels", 10, True, rng)
    meta = {b"label_names": [b"class"] * 10, b"num_cases_per_batch": per_file, b"num_vis": 3072}
    with open(root / "cifar-10-batches-py" / "batches.meta", "wb") as file:
        Python2Pickler(file, protocol=2).dump(meta)


def write_fake_cifar100(root: Path, count: int = 8, seed: int = 1) -> None:
    """`root/cifar-100-python`: the train and test pickles with their fine labels."""
    rng = np.random.default_rng(seed)
    write_cifar(
        root, "cifar-100-python", dict.fromkeys(CIFAR100_FILES, count), b"fine_labels", 100, True, rng
    )


def write_fake_stl10(root: Path, count: int = 8, seed: int = 2) -> None:
    """`root/stl10_binary`: unlabeled, train and test binaries of `count` 96x96 images each."""
    rng = np.random.default_rng(seed)
    folder = root / "stl10_binary"
    write_stl10(folder, "unlabeled", random_pixels(rng, count, 3, 96, 96))
    for part in ("train", "test"):
        write_stl10(folder, part, random_pixels(rng, count, 3, 96, 96), rng.integers(0, 10, size=count))


def write_fake_mnist(root: Path, count: int = 8, seed: int = 3) -> None:
    """`root/MNIST/raw`: the four unpacked idx files torchvision's MNIST reads."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, is_images in MNIST_FILES.items():
        array = random_pixels(rng, count, 28, 28) if is_images else rng.integers(0, 10, size=count)
        write_idx(raw / name, array)


def write_fake_celeba(root: Path, count: int = 8, seed: int = 4) -> None:
    """`root/celeba/img_align_celeba/*.jpg` (178x218) and `list_eval_partition.txt` (train 0, valid 1,
    test 2, assigned round robin)."""
    rng = np.random.default_rng(seed)
    folder = root / "celeba" / "img_align_celeba"
    names = write_jpegs(folder, [random_pixels(rng, *CELEBA_FRAME, 3) for _ in range(count)])
    lines = [f"{name} {index % 3}\n" for index, name in enumerate(names)]
    (folder.parent / "list_eval_partition.txt").write_text("".join(lines))


def write_fake_lsun(root: Path, count: int = 8, seed: int = 5, category: str = "bedroom") -> None:
    """`root/<category>_train_lmdb`: `count` JPEG-encoded 342x256 images under hex keys, as the release."""
    rng = np.random.default_rng(seed)
    entries = {
        bytes(rng.integers(0, 256, size=20, dtype=np.uint8)).hex().encode(): encode(
            random_pixels(rng, *LSUN_FRAME, 3), "JPEG", quality=90
        )
        for _ in range(count)
    }
    write_lmdb(root / f"{category}_train_lmdb", entries)


def write_fake_lsun_church(root: Path) -> None:
    """`root/church_outdoor_train_lmdb`, laid out as the bedroom one (GN Table 5's LSUN Church)."""
    write_fake_lsun(root, seed=6, category="church_outdoor")


def write_fake_celeba_hq(root: Path, count: int = 4, seed: int = 7) -> None:
    """`root/celeba_hq/*.jpg`: `count` random 256x256 images, a folder as the CelebA-HQ reader expects."""
    rng = np.random.default_rng(seed)
    write_jpegs(root / "celeba_hq", [random_pixels(rng, 256, 256, 3) for _ in range(count)])


FAKE_WRITERS = (
    write_fake_cifar10,
    write_fake_cifar100,
    write_fake_stl10,
    write_fake_mnist,
    write_fake_celeba,
    write_fake_lsun,
    write_fake_lsun_church,
    write_fake_celeba_hq,
)


def write_all(root: Path) -> Path:
    """Every fake dataset under `root` (created if missing); returns `root`."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for writer in FAKE_WRITERS:
        writer(root)
    return root
