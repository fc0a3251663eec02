"""The shipped YAML configs (src/lipgan/configs/): every file validates, the paper settings are exactly what
`scripts/make_configs.py` writes, and they carry the papers' settings and reported numbers
(docs/methods.md §6.5, §11).

The expected values below are typed in from docs/methods.md and the papers, not read from the generator's
tables.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lipgan.data import DATASETS
from lipgan.data.base import check_options
from lipgan.nets import arch_options
from lipgan.training.build import build_dataset, check_fits_data
from lipgan.training.config import SHIPPED_CONFIGS, config_to_dict, load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = SHIPPED_CONFIGS
GENERATOR = ROOT / "scripts" / "make_configs.py"
HAND_WRITTEN_PREFIXES = ("digits_", "toy_")  # digits_*.yaml and toy_*.yaml at the top of the configs


def is_hand_written(path: Path) -> bool:
    return path.parent == CONFIGS and path.name.startswith(HAND_WRITTEN_PREFIXES)


ALL_FILES = sorted(
    p for p in CONFIGS.rglob("*.yaml") if "sweeps" not in p.relative_to(CONFIGS).parts
)  # sweeps/ holds grid files (tests/test_experiments_configs.py)
GENERATED = [path for path in ALL_FILES if not is_hand_written(path)]


def in_folder(folder: str) -> list[Path]:
    return [path for path in GENERATED if path.parent.name == folder]


def is_biggan(path: Path) -> bool:
    return path.stem.startswith("cifar10_biggan")


def is_table5(path: Path) -> bool:
    return path.stem in ("celebahq128_resnet", "celebahq256_resnet", "church256_resnet")


GN_PGN = in_folder("gn") + in_folder("pgn")
GN_PGN_MAIN = [path for path in GN_PGN if not (is_biggan(path) or is_table5(path))]
BIGGAN = [path for path in GN_PGN if is_biggan(path)]
TABLE5 = [path for path in GN_PGN if is_table5(path)]


def ids(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(CONFIGS)) for path in paths]


def first_line(path: Path) -> str:
    return path.read_text(encoding="utf-8").splitlines()[0]


def test_every_paper_family_has_configs():
    counts = {folder: len(in_folder(folder)) for folder in ("gran", "gn", "pgn", "bssn", "lipreg")}
    # GraN Tables 2-3: 11 methods x 5 datasets; GN / PGN: 2 datasets x 2 nets x (with, without CR), plus
    # BigGAN with and without CR (GN Table 4, PGN Table V), plus GN Table 5's three
    assert counts["gran"] == 55 and counts["gn"] == 8 + 2 + 3 and counts["pgn"] == 8 + 2, counts
    assert len(BIGGAN) == 4 and len(TABLE5) == 3
    assert counts["bssn"] >= 12 and counts["lipreg"] >= 10, counts


@pytest.mark.parametrize("path", ALL_FILES, ids=ids(ALL_FILES))
def test_config_loads_and_validates(path):
    cfg = load_config(path)
    unknown = set(cfg.model.options) - set(arch_options(cfg.model.arch))
    assert not unknown, f"{cfg.model.arch} takes no option {unknown}"
    check_options(cfg.data.name, DATASETS.get(cfg.data.name), cfg.data.options)


class ImageShaped:
    """A stand-in for a real dataset whose files are not here: its shape only ([C, R, R] images)."""

    kind = "image"
    CLASSES = {"cifar10": 10, "cifar100": 100}  # the labelled ones among the configs' datasets

    def __init__(self, name: str, resolution: int, channels: int):
        self.name, self.resolution, self.channels = name, resolution, channels
        self.num_classes = self.CLASSES.get(name)

    def __getitem__(self, index: int):
        return torch.zeros(self.channels, self.resolution, self.resolution), 0


@pytest.mark.parametrize("path", ALL_FILES, ids=ids(ALL_FILES))
def test_config_arch_fits_its_data(path):
    """The check that runs before training (G and D on the meta device) accepts every shipped config."""
    cfg = load_config(path)
    if cfg.data.name in ("digits", "ring8", "grid25"):  # embedded: the real dataset
        dataset = build_dataset(cfg)
    else:
        dataset = ImageShaped(cfg.data.name, cfg.data.resolution, 1 if cfg.data.name == "mnist" else 3)
    check_fits_data(cfg, dataset)


@pytest.mark.parametrize("path", GENERATED, ids=ids(GENERATED))
def test_paper_config_names_its_source_and_itself(path):
    cfg = load_config(path)
    assert re.match(r"# (GraN|GN|PGN|BSSN|LipReg) ", first_line(path)), first_line(path)
    assert cfg.name == f"{path.parent.name}_{path.stem}"
    assert cfg.data.root == "data" and cfg.data.batch_size == (50 if is_biggan(path) else 64)
    assert (cfg.train.log_every, cfg.train.sample_every, cfg.train.ckpt_every) == (100, 1000, 1000)


def test_generator_reproduces_every_paper_config(tmp_path):
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(tmp_path)], check=True, capture_output=True)
    written = {path.relative_to(tmp_path): path for path in tmp_path.rglob("*.yaml")}
    present = {path.relative_to(CONFIGS): path for path in GENERATED}
    assert sorted(written) == sorted(present), "run `python scripts/make_configs.py` to refresh configs/"
    for relative, path in written.items():
        assert path.read_bytes() == present[relative].read_bytes(), f"{CONFIGS / relative} is stale"


def test_toy_ns_baseline_differs_from_the_gn_config_only_by_the_constraint():
    """Issue 4 reports the NS-GAN on the same mixture next to GN: same data, nets, optimizer and
    length; only the name and the constraint differ."""
    gn, ns = (config_to_dict(load_config(CONFIGS / f"toy_ring8_{kind}.yaml")) for kind in ("gn", "ns"))
    assert {key for key in gn if gn[key] != ns[key]} == {"name", "constraint"}
    assert (gn["constraint"]["gradnorm"], ns["constraint"]["gradnorm"]) == ("gn", None)


# docs/methods.md §11: the reported FIDs, rounded there to two decimals.
REPORTED_FID = {
    "gran/cifar10_grand": 14.97,
    "gran/cifar10_granc": 16.36,
    "gran/cifar10_sngan": 17.11,
    "gran/cifar10_wgan-gp": 22.93,
    "gran/cifar10_nsgan": 23.75,
    "gran/stl10_grand": 35.23,
    "gran/celeba_grand": 9.38,
    "gran/lsun_grand": 10.80,
    "gn/cifar10_resnet": 11.13,
    "gn/cifar10_cnn": 19.31,
    "gn/stl10_resnet": 26.14,
    "pgn/cifar10_resnet": 11.60,
    "pgn/stl10_resnet": 23.59,
    "gn/cifar10_biggan": 5.87,  # GN Table 4, FID(train)
    "gn/cifar10_biggan_cr": 4.86,
    "pgn/cifar10_biggan_cr": 5.495,  # PGN Table V
    "gn/celebahq128_resnet": 14.78,  # GN Table 5
    "gn/celebahq256_resnet": 7.67,
    "gn/church256_resnet": 5.41,
    "bssn/cifar10_bssn_s1.2": 26.94,
    "bssn/cifar10_sn": 31.43,
    "lipreg/cifar10_ns": 15.81,
}


@pytest.mark.parametrize("stem", sorted(REPORTED_FID))
def test_header_reports_the_papers_fid(stem):
    match = re.search(r"FID (\d+\.\d+)", first_line(CONFIGS / f"{stem}.yaml"))
    assert match is not None
    assert float(match.group(1)) == pytest.approx(REPORTED_FID[stem], abs=0.006)


def lipschitz_constant(cfg) -> float:
    """The K a GraN-family config enforces: 1/tau, SN†'s output scale or GP†'s centre."""
    if cfg.constraint.gradnorm == "gran":
        return 1.0 / cfg.constraint.tau
    return cfg.constraint.output_scale if cfg.constraint.spectral else cfg.penalty.center


@pytest.mark.parametrize("path", in_folder("gran"), ids=ids(in_folder("gran")))
def test_gran_settings(path):
    """GraN App. A-B: Adam (0, 0.9), 100k G steps, n_dis 5 or 2, K = 0.83 / 0.0909 (0.2 for GraNC-CelebA)."""
    cfg = load_config(path)
    dataset, method = path.stem.split("_")
    large = dataset in ("lsun", "celeba")
    assert cfg.model.arch == "sngan-resnet"
    assert (
        cfg.data.resolution
        == {"cifar10": 32, "cifar100": 32, "stl10": 48, "lsun": 128, "celeba": 128}[dataset]
    )
    assert cfg.optim.betas == [0.0, 0.9] and cfg.train.steps == 100_000
    assert cfg.optim.n_dis == (2 if large else 5)
    assert (cfg.model.options["pooling"] == "sum") == method.startswith("sngan")
    granc_celeba = (dataset, method) == ("celeba", "granc")
    assert (cfg.optim.lr_g, cfg.optim.lr_d) == ((5e-5, 1e-4) if granc_celeba else (2e-4, 2e-4))
    assert (cfg.optim.lr_decay == "none") == (dataset == "celeba" and not granc_celeba)
    if method.endswith("-k") or method.startswith("gran"):
        expected = 0.2 if granc_celeba else (0.0909 if large else 0.83)
        assert lipschitz_constant(cfg) == pytest.approx(expected, rel=5e-3)
    else:
        assert cfg.constraint.output_scale == 1.0 and cfg.penalty.center == 1.0


@pytest.mark.parametrize("path", GN_PGN_MAIN, ids=ids(GN_PGN_MAIN))
def test_gn_and_pgn_settings(path):
    """GN App. D and PGN §IV-A: Kaiming init, average pooling, hinge loss, 200k G steps, CR lambda 5."""
    cfg = load_config(path)
    paper = path.parent.name
    assert cfg.constraint.gradnorm == paper and cfg.loss.name == "hinge"
    assert cfg.model.options["init"] == "kaiming" and cfg.model.options.get("pooling", "avg") == "avg"
    assert cfg.cr.weight == (5.0 if path.stem.endswith("_cr") else 0.0)
    assert (cfg.optim.lr_g, cfg.optim.n_dis, cfg.train.steps) == (2e-4, 5, 200_000)
    assert cfg.optim.lr_d == (2e-4 if (paper, cfg.model.arch) == ("pgn", "sngan-cnn") else 4e-4)
    assert cfg.optim.ema == (0.9999 if paper == "pgn" else 0.0)


@pytest.mark.parametrize("path", BIGGAN, ids=ids(BIGGAN))
def test_conditional_biggan_settings(path):
    """GN §4 / PGN §IV-B: BigGAN-32, Adam 1e-4 / 2e-4, betas (0, 0.999), batch 50, n_dis 4, 125k G steps,
    EMA 0.9999 from step 1000 (the GN code's config), flips, hinge loss; CR lambda 5 in the _cr files."""
    cfg = load_config(path)
    assert (cfg.model.arch, cfg.model.options["num_classes"]) == ("biggan", 10)
    assert cfg.constraint.gradnorm == path.parent.name and cfg.loss.name == "hinge"
    assert (cfg.optim.lr_g, cfg.optim.lr_d, cfg.optim.betas) == (1e-4, 2e-4, [0.0, 0.999])
    assert (cfg.data.batch_size, cfg.optim.n_dis, cfg.train.steps, cfg.optim.lr_decay) == (
        50,
        4,
        125_000,
        "none",
    )
    assert (cfg.optim.ema, cfg.optim.ema_start, cfg.data.augment) == (0.9999, 1000, "flip")
    assert cfg.cr.weight == (5.0 if path.stem.endswith("_cr") else 0.0)
    if path.stem == "cifar10_biggan" and path.parent.name == "pgn":
        assert "not in the paper" in first_line(path)  # PGN Table V reports PGN-BigGAN-CR alone


@pytest.mark.parametrize("path", TABLE5, ids=ids(TABLE5))
def test_gn_table5_settings(path):
    """GN §4 and the GN code's configs: its ResNet plan at 128² / 256², Adam 2e-4 / 2e-4, betas (0, 0.9),
    n_dis 5, 100k G steps, linear decay, EMA 0.9999 from step 10k (CelebA-HQ) or 20k (Church)."""
    cfg = load_config(path)
    church = path.stem.startswith("church")
    assert (cfg.model.arch, cfg.model.options["plan"], cfg.model.options["init"]) == (
        "sngan-resnet",
        "gngan",
        "kaiming",
    )
    assert (cfg.data.name, cfg.data.resolution) == (
        ("lsun", 256) if church else ("celeba_hq", int(path.stem[8:11]))
    )
    assert cfg.data.options == ({"category": "church_outdoor"} if church else {})
    assert (cfg.optim.lr_g, cfg.optim.lr_d, cfg.optim.betas, cfg.optim.n_dis) == (2e-4, 2e-4, [0.0, 0.9], 5)
    assert (cfg.train.steps, cfg.optim.lr_decay, cfg.optim.ema) == (100_000, "linear", 0.9999)
    assert cfg.optim.ema_start == (20_000 if church else 10_000)
    assert cfg.constraint.gradnorm == "gn" and cfg.data.augment == "flip"


def test_conditional_digits_config_copies_digits_gn():
    """digits_cond_gn.yaml: digits_gn.yaml with the conditional digits nets."""
    gn, cond = (config_to_dict(load_config(CONFIGS / f"digits_{kind}.yaml")) for kind in ("gn", "cond_gn"))
    assert {key for key in gn if gn[key] != cond[key]} == {"name", "model"}
    assert cond["model"] == {"arch": "digits-cnn-cond", "options": {"num_classes": 10}}


@pytest.mark.parametrize("path", in_folder("bssn"), ids=ids(in_folder("bssn")))
def test_bssn_settings(path):
    """BSSN: hinge loss with Table 7's first setting on the standard CNN; WGAN on MNIST (App. J)."""
    cfg = load_config(path)
    if cfg.data.name == "mnist":
        assert (cfg.model.arch, cfg.loss.name, cfg.optim.lr_d, cfg.optim.n_dis) == (
            "bssn-mnist",
            "wgan",
            1e-3,
            1,
        )
        assert (cfg.constraint.spectral == "sn-strict") == (cfg.penalty.weight == 0.0)
        return
    assert (cfg.model.arch, cfg.loss.name, cfg.train.steps) == ("sngan-cnn", "hinge", 400_000)
    assert (cfg.optim.lr_g, cfg.optim.lr_d, cfg.optim.betas, cfg.optim.n_dis) == (1e-4, 1e-4, [0.5, 0.9], 5)
    variant = path.stem.split("_")[1]
    assert cfg.constraint.spectral == ("bsn" if variant.startswith("bs") else "sn")
    assert (cfg.constraint.spectral_scale != 1.0) == (variant in ("ssn", "bssn"))
    assert (cfg.penalty.weight == 10.0) == (cfg.constraint.spectral_gamma is not None)


@pytest.mark.parametrize("path", in_folder("lipreg"), ids=ids(in_folder("lipreg")))
def test_lipreg_settings(path):
    """LipReg App. B-C: DCGAN, RMSProp 5e-5, n_dis 1, 100k iterations; k_SN and alpha as named."""
    cfg = load_config(path)
    assert (cfg.model.arch, cfg.optim.name, cfg.optim.lr_g, cfg.optim.lr_d) == (
        "dcgan",
        "rmsprop",
        5e-5,
        5e-5,
    )
    assert (cfg.optim.n_dis, cfg.train.steps) == (1, 100_000)
    assert cfg.loss.domain_scale == (1e-25 if "alpha1e-25" in path.stem else 1.0)
    if cfg.model.options.get("d_norm") == "bn":
        assert cfg.constraint.spectral is None and cfg.penalty.weight == 10.0
    else:
        assert cfg.constraint.spectral == "sn"
        assert cfg.constraint.spectral_scale == (50.0 if "ksn50" in path.stem else 1.0)
