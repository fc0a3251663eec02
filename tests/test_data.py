"""lipgan.data: embedded datasets, real-format readers on tiny files written here, BatchStream."""

from __future__ import annotations

import math
import pickle
import signal

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from fake_datasets import encode, write_cifar, write_idx, write_jpegs, write_lmdb, write_stl10
from fake_datasets import random_pixels as fake_pixels
from lipgan.data import DATASETS, BatchStream, get_dataset, to_uint8
from lipgan.errors import ConfigError, MissingFileError

RNG = np.random.default_rng(0)


def random_pixels(*shape: int) -> np.ndarray:
    return fake_pixels(RNG, *shape)


def as_hwc_uint8(x: torch.Tensor) -> np.ndarray:
    """A loaded [C, H, W] image in [−1, 1] back to uint8 [H, W, C]."""
    return to_uint8(x).permute(1, 2, 0).numpy()


# ----------------------------------------------------------------------------------------------- toy


def test_ring8_centers_are_the_8_points_on_the_radius_2_circle():
    ring = get_dataset("ring8", n=1000)
    r = math.sqrt(2.0)
    expected = torch.tensor(
        [[2, 0], [r, r], [0, 2], [-r, r], [-2, 0], [-r, -r], [0, -2], [r, -r]], dtype=torch.float64
    )
    assert_close(ring.centers.double(), expected, rtol=0, atol=1e-6)
    assert ring.std == 0.02 and ring.kind == "points" and ring.resolution is None and ring.channels == 2


def test_grid25_centers_are_the_5x5_grid():
    grid = get_dataset("grid25", n=1000)
    expected = sorted((float(a), float(b)) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4))
    assert sorted(map(tuple, grid.centers.tolist())) == expected
    assert grid.std == 0.05 and grid.num_classes == 25


@pytest.mark.parametrize(
    ("name", "options"), [("ring8", {}), ("grid25", {}), ("ring8", {"radius": 1.0, "std": 0.05})]
)
def test_mixture_points_cluster_around_their_centers_with_the_configured_std(name, options):
    data = get_dataset(name, n=100_000, seed=3, **options)
    residual = (data.x - data.centers[data.y]).double()  # [n, 2]
    n, k = residual.shape[0], data.centers.shape[0]
    # the empirical std has relative standard error 1/sqrt(2n) = 0.0022
    assert_close(residual.std(dim=0), torch.full((2,), data.std, dtype=torch.float64), rtol=0.015, atol=0)
    assert_close(
        residual.mean(dim=0), torch.zeros(2, dtype=torch.float64), rtol=0, atol=5 * data.std / math.sqrt(n)
    )
    nearest = torch.cdist(data.x, data.centers).argmin(dim=1)
    assert torch.equal(nearest, data.y)
    share = torch.bincount(data.y, minlength=k).double() / n
    assert_close(share, torch.full((k,), 1 / k, dtype=torch.float64), rtol=0, atol=5 * math.sqrt((1 / k) / n))
    if "radius" in options:
        assert_close(data.centers.norm(dim=1), torch.ones(k), rtol=0, atol=1e-6)


def test_mixture_is_deterministic_by_seed_and_split():
    a, b = get_dataset("ring8", n=500, seed=7), get_dataset("ring8", n=500, seed=7)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.allclose(a.x, get_dataset("ring8", n=500, seed=8).x)
    assert not torch.allclose(a.x, get_dataset("ring8", n=500, seed=7, split="test").x)
    x1, y1 = a.sample(64, generator=torch.Generator().manual_seed(1))
    x2, y2 = a.sample(64, generator=torch.Generator().manual_seed(1))
    assert x1.shape == (64, 2) and torch.equal(x1, x2) and torch.equal(y1, y2)


# ------------------------------------------------------------------------------------------- digits


def bilinear_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """Independent 1-D bilinear (half-pixel centres, edge clamped) interpolation matrix [out, in]."""
    weights = torch.zeros(size_out, size_in, dtype=torch.float64)
    for i in range(size_out):
        source = min(max((i + 0.5) * size_in / size_out - 0.5, 0.0), size_in - 1.0)
        low = int(math.floor(source))
        high = min(low + 1, size_in - 1)
        weights[i, low] += 1 - (source - low)
        weights[i, high] += source - low
    return weights


@pytest.mark.parametrize("resolution", [16, 32])
def test_digits_are_bilinear_upsamplings_in_signed_unit_range(resolution):
    from sklearn.datasets import load_digits

    data = get_dataset("digits", resolution=resolution, split="all")
    assert data.x.shape == (1797, 1, resolution, resolution) and data.x.dtype == torch.float32
    assert data.kind == "image" and data.channels == 1 and data.resolution == resolution
    raw = torch.from_numpy(load_digits().images[:5]) / 16.0  # [5, 8, 8]
    w = bilinear_matrix(8, resolution)
    expected = 2 * (w @ raw @ w.T) - 1
    assert_close(data.x[:5, 0].double(), expected, rtol=0, atol=1e-6)
    assert data.x.min() >= -1 and data.x.max() <= 1


def test_digits_split_is_disjoint_stratified_and_fixed():
    train, test = get_dataset("digits", split="train"), get_dataset("digits", split="test")
    assert len(train) + len(test) == 1797 and len(test) == 360
    assert not set(train.indices.tolist()) & set(test.indices.tolist())
    assert sorted(set(test.y.tolist())) == list(range(10)) and sorted(set(train.y.tolist())) == list(
        range(10)
    )
    assert torch.equal(test.indices, get_dataset("digits", split="test").indices)
    assert train.resolution == 16


# --------------------------------------------------------------------------------- real file formats


@pytest.mark.parametrize("py2", [True, False])
def test_cifar10_reads_the_python_batches(tmp_path, py2):
    names = {f"data_batch_{i}": 3 for i in range(1, 6)} | {"test_batch": 4}
    content = write_cifar(tmp_path, "cifar-10-batches-py", names, b"labels", 10, py2, RNG)
    with open(tmp_path / "cifar-10-batches-py" / "batches.meta", "wb") as file:
        pickle.dump({b"label_names": [b"airplane"] * 10, b"num_vis": 3072}, file, protocol=2)
    train = get_dataset("cifar10", root=tmp_path)
    assert len(train) == 15 and train.resolution == 32 and train.channels == 3
    for index, (name, row) in enumerate([("data_batch_1", 0), ("data_batch_3", 2), ("data_batch_5", 1)]):
        x, y = train[[0, 8, 13][index]]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
        assert np.array_equal(as_hwc_uint8(x), content[name][0][row]) and y == content[name][1][row]
    test = get_dataset("cifar10", root=tmp_path, split="test")
    assert len(test) == 4 and np.array_equal(as_hwc_uint8(test[3][0]), content["test_batch"][0][3])


def test_cifar100_reads_fine_labels(tmp_path):
    content = write_cifar(
        tmp_path, "cifar-100-python", {"train": 5, "test": 2}, b"fine_labels", 100, py2=False, rng=RNG
    )
    data = get_dataset("cifar100", root=tmp_path)
    assert [data[i][1] for i in range(5)] == content["train"][1] and data.num_classes == 100
    assert np.array_equal(as_hwc_uint8(data[4][0]), content["train"][0][4])


def test_stl10_reads_the_binaries_and_resizes(tmp_path):
    folder = tmp_path / "stl10_binary"
    unlabeled, train = random_pixels(3, 3, 96, 96), random_pixels(2, 3, 96, 96)  # [N, C, H, W]
    write_stl10(folder, "unlabeled", unlabeled)
    write_stl10(folder, "train", train, np.array([9, 4]))
    data = get_dataset("stl10", root=tmp_path)
    assert len(data) == 3 and data.split == "unlabeled" and data.resolution == 48
    x, y = data[1]
    assert x.shape == (3, 48, 48) and y == -1 and x.min() >= -1 and x.max() <= 1
    full = get_dataset("stl10", root=tmp_path, resolution=96, split="train+unlabeled")
    assert len(full) == 5 and [full[i][1] for i in range(5)] == [9, 4, -1, -1, -1]
    assert np.array_equal(to_uint8(full[1][0]).numpy(), train[1])
    assert np.array_equal(to_uint8(full[4][0]).numpy(), unlabeled[2])


def test_mnist_reads_idx_files_and_pads_to_32(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images, labels = random_pixels(4, 28, 28), np.array([3, 1, 4, 1])
    write_idx(raw / "train-images-idx3-ubyte", images)
    write_idx(raw / "train-labels-idx1-ubyte", labels)
    write_idx(raw / "t10k-images-idx3-ubyte", images[:2])
    write_idx(raw / "t10k-labels-idx1-ubyte", labels[:2])
    data = get_dataset("mnist", root=tmp_path)
    assert len(data) == 4 and [data[i][1] for i in range(4)] == [3, 1, 4, 1]
    assert np.array_equal(to_uint8(data[2][0])[0].numpy(), images[2])
    padded = get_dataset("mnist", root=tmp_path, resolution=32, split="test")
    x, _ = padded[1]
    assert x.shape == (1, 32, 32) and len(padded) == 2
    assert np.array_equal(to_uint8(x)[0, 2:30, 2:30].numpy(), images[1])
    border = torch.cat(
        [x[0, :2].flatten(), x[0, 30:].flatten(), x[0, :, :2].flatten(), x[0, :, 30:].flatten()]
    )
    assert torch.equal(border, torch.full_like(border, -1.0))
    assert get_dataset("mnist", root=tmp_path, resolution=32, fit="resize")[0][0].shape == (1, 32, 32)


def test_image_folder_labels_subfolders_and_crops_the_centre(tmp_path):
    wide = random_pixels(20, 30, 3)  # [H, W, C]: the centre crop of side 20 is columns 5..24
    for name in ["cats", "dogs"]:
        (tmp_path / name / "deeper").mkdir(parents=True)
        (tmp_path / name / "a.png").write_bytes(encode(wide, "PNG"))
        (tmp_path / name / "deeper" / "b.png").write_bytes(encode(random_pixels(24, 24, 3), "PNG"))
    data = get_dataset("folder", root=tmp_path, resolution=20)
    assert len(data) == 4 and [data[i][1] for i in range(4)] == [0, 0, 1, 1] and data.num_classes == 2
    assert np.array_equal(as_hwc_uint8(data[0][0]), wide[:, 5:25])
    assert data[1][0].shape == (3, 20, 20)
    (tmp_path / "loose.png").write_bytes(encode(wide, "PNG"))
    flat = get_dataset("folder", root=tmp_path, resolution=8, channels=1)
    assert len(flat) == 5 and {flat[i][1] for i in range(5)} == {-1} and flat[0][0].shape == (1, 8, 8)


def test_lsun_reads_encoded_images_from_lmdb(tmp_path):
    tall = random_pixels(80, 64, 3)  # [H, W, C]: shorter side 64, the centre crop is rows 8..71
    red = np.zeros((70, 90, 3), dtype=np.uint8)
    red[..., 0] = 255
    write_lmdb(
        tmp_path / "bedroom_train_lmdb",
        {b"0a1b2c": encode(tall, "WEBP", lossless=True), b"ffee00": encode(red, "JPEG", quality=95)},
    )
    data = get_dataset("lsun", root=tmp_path, resolution=64)
    assert len(data) == 2 and data.resolution == 64
    x, y = data[0]
    assert y == -1 and np.array_equal(as_hwc_uint8(x), tall[8:72])
    x, _ = data[1]
    assert x.shape == (3, 64, 64)
    assert_close(x.mean(dim=(1, 2)), torch.tensor([1.0, -1.0, -1.0]), rtol=0, atol=0.03)
    default = get_dataset("lsun", root=tmp_path)  # the database is already open in this process
    assert default.resolution == 128 and default[0][0].shape == (3, 128, 128)
    x_workers, _ = next(BatchStream(data, batch_size=2, seed=0, num_workers=1))  # a forked reader
    x_main, _ = next(BatchStream(data, batch_size=2, seed=0))
    assert torch.equal(x_workers, x_main)


def test_celeba_crops_the_centre_128_square_at_64(tmp_path):
    face = np.zeros((218, 178, 3), dtype=np.uint8)
    face[..., 2] = 255  # blue frame
    face[45:173, 25:153] = (255, 0, 0)  # red centre 128x128 square
    write_jpegs(tmp_path / "celeba" / "img_align_celeba", [face] * 3)
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 2\n000003.jpg 0\n")
    data = get_dataset("celeba", root=tmp_path)
    assert len(data) == 3 and data.split == "all" and data.crop == 128
    x, y = data[0]
    assert x.shape == (3, 64, 64) and y == -1
    assert_close(x.mean(dim=(1, 2)), torch.tensor([1.0, -1.0, -1.0]), rtol=0, atol=0.05)
    assert len(get_dataset("celeba", root=tmp_path, split="train")) == 2
    big = get_dataset("celeba", root=tmp_path, resolution=128)
    assert big.crop == 178 and big[2][0].shape == (3, 128, 128)
    assert big[2][0][0].mean() < 0.3  # the full-width crop includes the blue frame


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cifar10", "cifar-10-batches-py"),
        ("cifar100", "cifar-100-python"),
        ("stl10", "stl10_binary"),
        ("mnist", "MNIST/raw"),
        ("celeba", "celeba/img_align_celeba"),
        ("lsun", "bedroom_train_lmdb"),
        ("folder", ""),
    ],
)
def test_missing_dataset_names_the_expected_path(tmp_path, name, expected):
    root = tmp_path / "nowhere"
    with pytest.raises(MissingFileError) as error:
        get_dataset(name, root=root)
    message = str(error.value)
    assert str(root / expected).rstrip("/") in message and "\n" not in message


def test_celeba_split_without_partition_file_says_where_it_goes(tmp_path):
    (tmp_path / "img_align_celeba").mkdir()
    (tmp_path / "img_align_celeba" / "000001.jpg").write_bytes(encode(random_pixels(218, 178, 3), "JPEG"))
    assert len(get_dataset("celeba", root=tmp_path)) == 1
    with pytest.raises(MissingFileError, match="list_eval_partition.txt"):
        get_dataset("celeba", root=tmp_path, split="test")


@pytest.mark.parametrize(
    ("call", "listed"),
    [
        ({"name": "imagenet"}, "cifar10, cifar100, digits"),
        ({"name": "ring8", "sigma": 1.0}, "n, radius, seed, std"),
        ({"name": "digits", "resolution": 64}, "8, 16, 32"),
        ({"name": "stl10", "split": "val"}, "train, test, unlabeled, train+unlabeled"),
        ({"name": "ring8", "resolution": 32}, "None"),
        ({"name": "lsun", "category": "cats"}, "bedroom, bridge"),
        ({"name": "cifar10", "resolution": 64}, "valid: 32"),
    ],
)
def test_bad_names_and_values_raise_config_error_listing_valid_ones(call, listed):
    with pytest.raises(ConfigError) as error:
        get_dataset(**call)
    assert listed in str(error.value)


def test_registry_and_uint8_round_trip():
    assert set(DATASETS.names()) >= {"ring8", "grid25", "digits", "cifar10", "cifar100", "stl10", "mnist"}
    pixels = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(to_uint8(pixels.float() * 2 / 255 - 1), pixels)
    assert to_uint8(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]


# --------------------------------------------------------------------------------------- BatchStream


class IndexDataset(torch.utils.data.Dataset):
    """Item i is (tensor([i, -i]), i), read one at a time (no get_batch)."""

    def __len__(self) -> int:
        return 22

    def __getitem__(self, i: int):
        return torch.tensor([float(i), -float(i)]), i


def take(stream: BatchStream, count: int) -> list:
    return [next(stream) for _ in range(count)]


def test_stream_epochs_are_seeded_permutations():
    stream = BatchStream(IndexDataset(), batch_size=4, seed=5)
    assert stream.batches_per_epoch == 5
    epoch0 = torch.cat([y for _, y in take(stream, 5)])
    assert len(set(epoch0.tolist())) == 20 and stream.epoch == 0
    epoch1 = torch.cat([y for _, y in take(stream, 5)])
    assert stream.epoch == 1 and not torch.equal(epoch0, epoch1)
    again = BatchStream(IndexDataset(), batch_size=4, seed=5)
    assert torch.equal(torch.cat([y for _, y in take(again, 5)]), epoch0)
    other = BatchStream(IndexDataset(), batch_size=4, seed=6)
    assert not torch.equal(torch.cat([y for _, y in take(other, 5)]), epoch0)
    x, y = next(BatchStream(IndexDataset(), batch_size=4, seed=5))
    assert torch.equal(x[:, 0].long(), y) and torch.equal(x[:, 1].long(), -y)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_stream_resume_equals_uninterrupted(num_workers):
    data = get_dataset("ring8", n=50)
    reference = BatchStream(data, batch_size=8, seed=2)
    uninterrupted = take(reference, 13)
    first = BatchStream(data, batch_size=8, seed=2)
    take(first, 7)  # crosses the epoch boundary (6 batches per epoch)
    resumed = BatchStream(data, batch_size=8, seed=2, num_workers=num_workers)
    resumed.load_state_dict(first.state_dict())
    for (x, y), (x_ref, y_ref) in zip(take(resumed, 6), uninterrupted[7:]):
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref)
    with pytest.raises(ConfigError, match="seed"):
        BatchStream(data, batch_size=8, seed=3).load_state_dict(first.state_dict())


class SignalReport(torch.utils.data.Dataset):
    """Item i reports how the process reading it handles SIGINT and SIGTERM (1: ignored)."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        ignored = [signal.getsignal(s) == signal.SIG_IGN for s in (signal.SIGINT, signal.SIGTERM)]
        return torch.tensor([float(b) for b in ignored]), i


def test_stream_readers_leave_ctrl_c_to_the_main_process():
    """Ctrl-C reaches the readers too; they ignore it, so the step in progress still gets its batches
    (training/interrupt.py). SIGTERM keeps torch's handling, with which the loader ends them."""
    x, _ = next(BatchStream(SignalReport(), batch_size=2, seed=0, num_workers=1))
    assert x.tolist() == [[1.0, 0.0], [1.0, 0.0]]


def test_stream_tensor_path_equals_item_path():
    data = get_dataset("grid25", n=40)
    direct = take(BatchStream(data, batch_size=8, seed=1), 6)
    itemwise = take(BatchStream(torch.utils.data.Subset(data, range(40)), batch_size=8, seed=1), 6)
    for (x, y), (x_item, y_item) in zip(direct, itemwise):
        assert torch.equal(x, x_item) and torch.equal(y, y_item)


def test_two_rank_shards_concatenate_to_the_single_rank_batch():
    single = take(BatchStream(IndexDataset(), batch_size=6, seed=9), 8)
    ranks = [take(BatchStream(IndexDataset(), batch_size=6, seed=9, rank=r, world_size=2), 8) for r in (0, 1)]
    for step, (_, y) in enumerate(single):
        assert ranks[0][step][1].shape == (3,)
        assert torch.equal(torch.cat([ranks[0][step][1], ranks[1][step][1]]), y)
    with pytest.raises(ConfigError, match="multiple"):
        BatchStream(IndexDataset(), batch_size=5, world_size=2)
