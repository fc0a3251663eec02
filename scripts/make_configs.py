"""Write the YAML config of every paper setting under src/lipgan/configs/ (GraN, GN, PGN, BSSN, LipReg).

Each setting is a row of a text table below (the conditional BigGAN and GN Table 5 settings: in
`make_configs_gn.py` beside it), read from docs/methods.md (§6.5 training settings,
§7 architectures, §11 reported numbers) and from the paper texts; "-" marks an empty cell. Edit a table,
then run

    python scripts/make_configs.py [--out DIR]

`tests/test_configs.py` checks that the files under src/lipgan/configs/ (package data, shipped in the wheel;
`configs` at the repository root links there) are exactly what this script writes. The hand-written embedded
configs (digits_*.yaml, toy_*.yaml) and the grid files under sweeps/ are not written here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEDULE = {"log_every": 100, "sample_every": 1000, "ckpt_every": 1000, "eval_every": 5000}


class ConfigDumper(yaml.SafeDumper):
    """Lists inline (`betas: [0.0, 0.9]`) and no YAML anchors for sections shared between configs."""

    def ignore_aliases(self, data) -> bool:
        return True


def _inline_list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)


ConfigDumper.add_representer(list, _inline_list)


def rows(text: str) -> list[list[str]]:
    """The whitespace-separated cells of each line of a text table; `#` lines are headings."""
    return [line.split() for line in text.strip().splitlines() if not line.lstrip().startswith("#")]


def render(header: list[str], cfg: dict) -> str:
    """The file text: one `# ` comment line per header line, then the config mapping."""
    comments = "".join(f"# {line}\n" for line in header)
    return comments + yaml.dump(cfg, Dumper=ConfigDumper, sort_keys=False, allow_unicode=True)


def data(name: str, resolution: int, split: str, **options) -> dict:
    section = {"name": name, "root": "data", "resolution": resolution, "split": split}
    section.update(batch_size=64, num_workers=4)
    return {**section, "options": options} if options else section


def adam(lr_g: float, lr_d: float, betas: list, n_dis: int, lr_decay: str, ema: float = 0.0) -> dict:
    optim = {"name": "adam", "lr_g": lr_g, "lr_d": lr_d, "betas": betas, "eps": 1e-8, "n_dis": n_dis}
    return {**optim, "lr_decay": lr_decay, "ema": ema}


def rmsprop(lr: float) -> dict:
    optim = {"name": "rmsprop", "lr_g": lr, "lr_d": lr, "eps": 1e-8, "rmsprop_alpha": 0.99, "n_dis": 1}
    return {**optim, "lr_decay": "none", "ema": 0.0}


def no_constraint() -> dict:
    return {"constraint": {"gradnorm": None, "spectral": None}}


def gradnorm(method: str, **params) -> dict:
    return {"constraint": {"gradnorm": method, **params, "spectral": None}}


def spectral(variant: str, scale: float = 1.0, output_scale: float = 1.0, **extra) -> dict:
    constraint = {"gradnorm": None, "spectral": variant, "spectral_scale": scale, **extra}
    return {"constraint": {**constraint, "output_scale": output_scale} if output_scale != 1.0 else constraint}


def penalty(center: float = 1.0) -> dict:
    """WGAN-GP's term, lambda = 10 at random interpolates, centred at `center` (docs/methods.md §4.2)."""
    return {"penalty": {"weight": 10.0, "center": center, "at": "interpolates"}}


def tail(optim: dict, steps: int, protocol: str) -> dict:
    """The sections after the loss (and CR): optim, train with the shared schedule, eval."""
    return {"optim": optim, "train": {"steps": steps, **SCHEDULE}, "eval": {"protocol": protocol}}


def reported(metrics: list[str], values: list[str], column: int) -> str:
    """`"IS 8.031, FID 14.965, ... reported"` for one column of a row holding each metric per column."""
    per_metric = len(values) // len(metrics)
    picked = [values[i * per_metric + column] for i in range(len(metrics))]
    if "-" in picked:
        return "did not reach FID < 70 in the paper's restarts ('-')"
    return ", ".join(f"{metric} {value}" for metric, value in zip(metrics, picked)) + " reported"


# GraN (Bhaskara et al. 2022): Mimicry's SNGAN ResNets (Fig. 5-7), Tables 2-3, App. A-B. ------------------
GRAN_DATASETS = """
# name    label         dataset  side split     n_dis LR-decay table column
cifar10   CIFAR-10      cifar10  32   train     5     linear   2     0
cifar100  CIFAR-100     cifar100 32   train     5     linear   2     1
stl10     STL-10        stl10    48   unlabeled 5     linear   2     2
lsun      LSUN-bedroom  lsun     128  train     2     linear   3     0
celeba    CelebA        celeba   128  all       2     none     3     1
"""
GRAN_TAU = {32: 1.2, 48: 1.2, 128: 11.0}  # K = 1/tau = 0.83 (32², 48²) and 0.0909 (128²), App. A
GRAN_K = {1.2: "0.83", 11.0: "0.0909", 5.0: "0.2"}  # K as App. A writes it; Table 6 lists K = 1.33 = 1/0.75
GRAN_METHODS = """
# name      label       loss        Lipschitz  K-tuned(†)  pooling (Fig. 5: only SNGAN sums)
nsgan       NSGAN       ns          none       no          avg
nsgan-gp    NSGAN-GP    ns          gp         no          avg
nsgan-sn    NSGAN-SN    ns          sn         no          avg
nsgan-gp-k  NSGAN-GP†   ns          gp         yes         avg
nsgan-sn-k  NSGAN-SN†   ns          sn         yes         avg
grand       GraND-GAN   ns          gran       yes         avg
wgan-gp     WGAN-GP     wgan        gp         no          avg
sngan       SNGAN       hinge       sn         no          sum
wgan-gp-k   WGAN-GP†    wgan        gp         yes         avg
sngan-k     SNGAN†      hinge       sn         yes         sum
granc       GraNC-GAN   soft-hinge  gran       yes         avg
"""
GRAN_TABLE2 = """
# method    IS: CIFAR-10 CIFAR-100 STL-10 | FID: same | KID(x1000): same
nsgan       7.655 6.611 7.920   23.750 30.842 44.179   14.5 20.5 40.0
nsgan-gp    8.016 -     8.568   15.813 -      38.848   12.9 -    38.9
nsgan-sn    7.792 7.258 8.167   20.998 25.564 38.669   15.7 18.4 35.7
nsgan-gp-k  8.019 7.892 8.623   15.911 20.894 40.110   13.1 17.0 39.8
nsgan-sn-k  7.814 7.526 8.135   20.323 24.200 39.013   15.3 17.7 36.7
grand       8.031 8.314 8.743   14.965 18.978 35.226   12.3 13.7 35.0
wgan-gp     7.442 7.520 8.492   22.927 27.231 42.170   21.1 23.5 43.0
sngan       8.112 7.778 8.385   17.107 20.739 38.218   12.6 14.3 34.3
wgan-gp-k   7.344 7.684 8.466   22.705 25.211 42.595   20.6 21.2 44.7
sngan-k     7.991 7.959 8.552   16.740 20.104 36.203   12.0 14.3 33.3
granc       7.966 8.208 8.957   16.361 19.131 35.770   13.7 14.8 35.4
"""
GRAN_TABLE3 = """
# method    FID: LSUN CelebA | KID(x1000): same
nsgan       -      -        -    -
nsgan-gp    -      -        -    -
nsgan-sn    74.926 14.33    44.8 21.2
nsgan-gp-k  10.483 9.385    7.2  5.8
nsgan-sn-k  12.635 9.644    8.3  5.8
grand       10.795 9.377    7.3  5.2
wgan-gp     13.562 -        9.8  -
sngan       13.237 13.466   8.0  8.9
wgan-gp-k   16.884 -        12.0 -
sngan-k     67.346 15.874   32.0 8.7
granc       12.533 12.000   9.1  8.1
"""
GRAN_TABLES = {
    "2": ({r[0]: r[1:] for r in rows(GRAN_TABLE2)}, ["IS", "FID", "KID(x1000)"]),
    "3": ({r[0]: r[1:] for r in rows(GRAN_TABLE3)}, ["FID", "KID(x1000)"]),
}
GRAN_LIPSCHITZ = {  # mechanism -> sections, given tau and whether K = 1/tau replaces 1 (App. B)
    "none": lambda tau, tuned: no_constraint(),
    "gp": lambda tau, tuned: {**no_constraint(), **penalty(center=1 / tau if tuned else 1.0)},
    "sn": lambda tau, tuned: spectral("sn", output_scale=1 / tau if tuned else 1.0),
    "gran": lambda tau, tuned: gradnorm("gran", tau=tau, eps=0.1),
}


GRAN_K_NOTES = {  # how each mechanism uses K = 1/tau (App. B)
    "gran": "GraN's piecewise bound K = 1/tau",
    "gp": "GP† centres the gradient penalty (lambda 10) at K",
    "sn": "SN† multiplies D's output by K",
}


def lr_text(lr: float) -> str:
    return f"{lr:.0e}".replace("e-0", "e-")


def gran_header(title: str, side: str, pooling: str, optim: dict, tau: float, mechanism: str, tuned: bool):
    lrs = f"Adam {lr_text(optim['lr_g'])} (G) / {lr_text(optim['lr_d'])} (D)"
    header = [
        f"GraN (Bhaskara et al. 2022) {title}",
        f"Mimicry SNGAN ResNet {side}x{side}, global {pooling} pooling (Fig. 5); {lrs}, betas (0, 0.9),",
        f"batch 64, n_dis {optim['n_dis']}, 100k G steps, LR decay {optim['lr_decay']} (App. A)",
    ]
    if tau == 5.0:
        header.append("App. A: GraNC on CelebA alone uses K = 0.2, LRs 5e-5 (G) / 1e-4 (D) and linear decay")
    if tuned:
        header.append(
            f"{GRAN_K_NOTES[mechanism]} = {1 / tau:.4g} (tau = {tau:g}; App. A rounds K to {GRAN_K[tau]})"
        )
    elif mechanism == "gp":
        header.append("Gradient penalty lambda 10 centred at 1, at random interpolates (App. B)")
    if pooling == "sum" and tuned:
        header.append("SNGAN† keeps SNGAN's sum pooling (Fig. 5 names SNGAN alone as summing)")
    return header


def gran_configs():
    for name, label, dataset, side, split, n_dis, decay, table, column in rows(GRAN_DATASETS):
        options = {"category": "bedroom"} if dataset == "lsun" else {}
        data_section = data(dataset, int(side), split, **options)
        results, metrics = GRAN_TABLES[table]
        for method, method_label, loss, mechanism, tuned, pooling in rows(GRAN_METHODS):
            tau, optim = GRAN_TAU[int(side)], adam(2e-4, 2e-4, [0.0, 0.9], int(n_dis), decay)
            if (name, method) == ("celeba", "granc"):  # App. A: the one altered setting
                tau, optim = 5.0, adam(5e-5, 1e-4, [0.0, 0.9], int(n_dis), "linear")
            title = (
                f"Table {table}, {label}, {method_label}: {reported(metrics, results[method], int(column))}"
            )
            header = gran_header(title, side, pooling, optim, tau, mechanism, tuned == "yes")
            model = {"arch": "sngan-resnet", "options": {"pooling": pooling}}
            cfg = {"name": f"gran_{name}_{method}", "data": data_section, "model": model}
            cfg.update(GRAN_LIPSCHITZ[mechanism](tau, tuned == "yes"))
            cfg.update(loss={"name": loss}, **tail(optim, 100_000, "gran"))
            yield f"gran/{name}_{method}.yaml", header, cfg


# GN (Wu et al. 2021, App. D) and PGN (Xia, §IV-A): standard CNN and ResNet, with and without CR. ---------
GN_PAPERS = """
# paper  method  citation                                lr_d(cnn) lr_d(resnet) EMA
gn       gn      GN-(Wu-et-al.-2021),-quoted-by-PGN-Table 4e-4      4e-4         0.0
pgn      pgn     PGN-(Xia)-Table                         2e-4      4e-4         0.9999
"""
GN_REPORTED = """
# dataset arch   CR   GN: IS FID(train)   PGN: IS FID(train)   (PGN Tables II, IV; GN's from its main paper)
cifar10   cnn    no   7.71 19.31          7.83  18.675
cifar10   cnn    yes  8.04 18.59          8.12  18.938
cifar10   resnet no   8.49 11.13          8.506 11.597
cifar10   resnet yes  8.72 9.55           8.909 9.079
stl10     cnn    no   9.00 32.41          9.340 27.378
stl10     cnn    yes  9.00 27.61          9.207 26.758
stl10     resnet no   9.60 26.14          9.895 23.588
stl10     resnet yes  9.74 23.62          9.800 21.803
"""
GN_DATASETS = {"cifar10": ("CIFAR-10", 32, "train", "II"), "stl10": ("STL-10", 48, "unlabeled", "IV")}
GN_ARCHS = {  # Kaiming init everywhere, average pooling in the ResNet (GN App. D)
    "cnn": ("Standard CNN", {"arch": "sngan-cnn", "options": {"init": "kaiming"}}),
    "resnet": ("ResNet", {"arch": "sngan-resnet", "options": {"init": "kaiming", "pooling": "avg"}}),
}
GN_NOTES = {
    "gn": [
        "App. D: Adam 2e-4 (G) / 4e-4 (D), betas (0, 0.9), batch 64, n_dis 5, 200k G steps, linear decay;",
        "hinge loss (App. B.4, Table 2); the authors' released code also keeps an EMA (0.9999) of G",
    ],
    "pgn": [
        "§IV-A: as GN with hinge loss; D's LR is raised from 2e-4 to 4e-4 for the ResNet only; EMA 0.9999",
        "200k G steps (the STL-10 sentence says '500,000 runs'; read here as GN's 200k)",
        "Protocol: GN's metrics, keeping the checkpoint with the best FID (the run's `best` checkpoint)",
    ],
}
GN_CNN_CODE_NOTE = (
    "The authors' released CNN configs differ: NS loss, 2e-4 for both nets, n_dis 1, no LR decay"
)
FLIP_NOTE = "Reals are flipped at random (p = 0.5), as the official GN and PGN codes do: data.augment flip"
CR_NOTE = "CR: random flip (p = 0.5) and shift of up to 0.2 x image size; lambda 5 (PGN §IV-A, after GN)"


def gn_rows():
    """(paper, dataset, arch, CR, IS, FID) for GN, then PGN, from the side-by-side GN_REPORTED table."""
    for column, paper in ((3, "gn"), (5, "pgn")):
        for row in rows(GN_REPORTED):
            yield (paper, *row[:3], *row[column : column + 2])


def gradnorm_configs():
    papers = {row[0]: row[1:] for row in rows(GN_PAPERS)}
    for paper, dataset, arch, with_cr, inception, fid in gn_rows():
        method, citation, lr_d_cnn, lr_d_resnet, ema = papers[paper]
        label, side, split, table = GN_DATASETS[dataset]
        arch_label, model = GN_ARCHS[arch]
        cr = {"cr": {"weight": 5.0, "max_shift": 0.2, "flip": True}} if with_cr == "yes" else {}
        tag, suffix = (f"{paper.upper()}-GAN-CR", "_cr") if cr else (f"{paper.upper()}-GAN", "")
        result = f"{label}, {arch_label}, {tag}: IS {inception}, FID {fid} reported"
        header = [f"{citation.replace('-', ' ')} {table}, {result}", *GN_NOTES[paper], FLIP_NOTE]
        if (paper, arch) == ("gn", "cnn"):
            header.append(GN_CNN_CODE_NOTE)
        lr_d = float(lr_d_cnn if arch == "cnn" else lr_d_resnet)
        optim = adam(2e-4, lr_d, [0.0, 0.9], 5, "linear", float(ema))
        cfg = {
            "name": f"{paper}_{dataset}_{arch}{suffix}",
            "data": {**data(dataset, side, split), "augment": "flip"},
            "model": model,
        }
        cfg.update(gradnorm(method), loss={"name": "hinge"}, **cr, **tail(optim, 200_000, "gn"))
        yield f"{paper}/{dataset}_{arch}{suffix}.yaml", header + ([CR_NOTE] if cr else []), cfg


# BSSN (Lin, Sekar, Fanti 2021): SNGAN standard CNN; Table 1 (setting 1 of Table 7), Table 6, App. J. -----
BSSN_DATASETS = {  # name: (label, side, split, column of its first number below, the scale grid of Table 1)
    "cifar10": ("CIFAR-10", 32, "train", 0, "{0.7, 0.8, ..., 4.0} (SSN: up to 10.0)"),
    "stl10": ("STL-10", 48, "unlabeled", 2, "{0.7, 0.8, 0.9, 1.0, 1.2, 1.4, 1.6}"),
    "celeba": ("CelebA-64", 64, "all", 4, "{0.7, 0.8, 0.9, 1.0, 1.2, 1.4, 1.6}"),
}
BSSN_VARIANTS = """
# stem           label              variant scale gamma  CIFAR-10: IS FID   STL-10: IS FID   CelebA: FID
sn               SN                 sn      1.0   -      7.12 31.43         9.05 44.35       9.43
ssn_s1.2         SSN                sn      1.2   -      7.38 29.31         9.28 43.52       8.50
bsn              BSN                bsn     1.0   -      7.54 26.94         9.25 42.98       9.05
bssn_s1.2        BSSN               bsn     1.2   -      7.54 26.94         9.25 42.90       9.05
sn-same-gamma    SN-(same-gamma)    sn      1.0   same   6.46 42.35
bsn-same-gamma   BSN-(same-gamma)   bsn     1.0   same   6.69 39.62
sn-diff-gamma    SN-(diff.-gamma)   sn      1.0   diff   6.53 41.88
bsn-diff-gamma   BSN-(diff.-gamma)  bsn     1.0   diff   6.72 38.15
"""
BSSN_NOTES = [
    "Standard CNN (Tables 2-3), hinge loss, batch 64, 400k iterations (App. P-R). Table 7 grid (lr_g,",
    "lr_d, beta1, beta2, n_dis): (1e-4, 1e-4, 0.5, 0.9, 5) = this file and Table 1's setting,",
    "(1e-4, 1e-4, 0.5, 0.999, 1), (2e-4, 2e-4, 0.5, 0.999, 1), (1e-4, 2e-4, 0.5, 0.999, 1),",
    "(2e-4, 1e-4, 0.5, 0.999, 1)",
]
BSSN_MNIST = {  # stem: (label, Lipschitz sections), App. J: WGAN loss; strict SN replaces the penalty
    "mnist_wgan-gp": ("without SN (WGAN-GP, lambda 10)", {**no_constraint(), **penalty()}),
    "mnist_sn-strict": ("strict SN (Farnia 2018), no GP", spectral("sn-strict")),
}


def bssn_header(label, variant_label, gamma, numbers, column, scale, grid) -> list[str]:
    result = f"IS {numbers[column]}, FID {numbers[column + 1]}" if column < 4 else f"FID {numbers[column]}"
    table = "Table 1" if gamma == "-" else "Table 6 (best Table 7 setting)"
    header = [
        f"BSSN (Lin et al. 2021) {table}, {label}, {variant_label.replace('-', ' ')}: {result} reported"
    ]
    if scale != 1.0:
        header.append(f"Table 1 reports the best scale of {grid}, which the paper does not name;")
        header.append(f"{scale:g} is a representative point: sweep constraint.spectral_scale")
    if gamma != "-":
        header.append("Gamma variants (Miyato App. E, BSSN App. O) add a gradient penalty of weight 10")
        header.append("The paper does not say whether gamma scales the biases; its code (fjxmlzn/BSN) does,")
        header.append("and so does spectral_gamma_bias: true here (false scales the weights only)")
    return header + BSSN_NOTES


def bssn_configs():
    for name, (label, side, split, column, grid) in BSSN_DATASETS.items():
        for stem, variant_label, variant, scale, gamma, *numbers in rows(BSSN_VARIANTS):
            if column >= len(numbers):
                continue  # Table 6's gamma variants: CIFAR-10 only here
            header = bssn_header(label, variant_label, gamma, numbers, column, float(scale), grid)
            extra = {"spectral_gamma": gamma, "spectral_gamma_bias": True} if gamma != "-" else {}
            lipschitz = {**spectral(variant, float(scale), **extra), **(penalty() if extra else {})}
            optim = adam(1e-4, 1e-4, [0.5, 0.9], 5, "none")
            cfg = {
                "name": f"bssn_{name}_{stem}",
                "data": data(name, side, split),
                "model": {"arch": "sngan-cnn"},
            }
            cfg.update(lipschitz, loss={"name": "hinge"}, **tail(optim, 400_000, "bssn"))
            yield f"bssn/{name}_{stem}.yaml", header, cfg
    for stem, (label, lipschitz) in BSSN_MNIST.items():
        header = [
            f"BSSN (Lin et al. 2021) Fig. 2 / App. J, MNIST, {label}: no sample metric (gradient norms)",
            "Tables 4-5 nets; Adam 1e-3, betas (0.5, 0.999), n_dis 1, batch 64, 100 epochs = 93,750 steps",
        ]
        optim = adam(1e-3, 1e-3, [0.5, 0.999], 1, "none")
        cfg = {"name": f"bssn_{stem}", "data": data("mnist", 28, "train"), "model": {"arch": "bssn-mnist"}}
        cfg.update(lipschitz, loss={"name": "wgan"}, **tail(optim, 93_750, "auto"))
        yield f"bssn/{stem}.yaml", header, cfg


# LipReg: DCGAN with SN in D, RMSProp 5e-5, batch 64, n_dis 1, 100k iterations (App. B). ------------------
LIPREG_LOSSES = """
# loss      label              FID: Table 2 (k_SN = 1)   §4 degenerate-loss table (k_SN = 50, alpha = 1e-25)
minimax     minimax-GAN-SN     -                         -
ns          NS-GAN-SN          15.81                     21.92
wgan        WGAN-SN            21.75                     23.36
hinge       hinge-GAN-SN       -                         -
soft-hinge  soft-hinge-GAN-SN  -                         -
ls          LS-GAN-SN          17.30                     -
ls0         LS-GAN#-SN         -                         21.47
cos         COS-GAN-SN         15.88                     23.65
exp         EXP-GAN-SN         16.66                     21.91
"""
LIPREG_NOTES = [
    "App. B: DCGAN (32x32 CIFAR-10, 64x64 CelebA), RMSProp lr 5e-5, batch 64, n_dis 1, 100k iterations",
    "LipReg does not state its FID protocol; GN's (50k samples vs the training set) is used",
]
LIPREG_ALPHA = 1e-25


def lipreg_config(name: str, data_section: dict, model: dict, lipschitz: dict, loss: dict) -> dict:
    cfg = {"name": name, "data": data_section, "model": model, **lipschitz, "loss": loss}
    return {**cfg, **tail(rmsprop(5e-5), 100_000, "gn")}


def lipreg_configs():
    cifar10, dcgan = data("cifar10", 32, "train"), {"arch": "dcgan"}
    for loss, label, fid, degenerate_fid in rows(LIPREG_LOSSES):
        result = f"FID {fid} reported" if fid != "-" else "not in the paper (same settings, for comparison)"
        header = [f"LipReg Table 2, CIFAR-10, {label}, k_SN = 1: {result}", *LIPREG_NOTES]
        header.append("Table 2 sweeps constraint.spectral_scale (k_SN) over {0.2, 0.25, 0.5, 1, 5, 10, 50}")
        cfg = lipreg_config(f"lipreg_cifar10_{loss}", cifar10, dcgan, spectral("sn"), {"name": loss})
        yield f"lipreg/cifar10_{loss}.yaml", header, cfg
        if degenerate_fid == "-":
            continue
        alpha = 1.0 if loss == "wgan" else LIPREG_ALPHA  # WGAN is the table's unscaled reference row
        stem = f"cifar10_{loss}_ksn50" + ("" if alpha == 1.0 else "_alpha1e-25")
        header = [
            f"LipReg §4 degenerate-loss table, CIFAR-10, {label}, k_SN = 50, alpha = {alpha:g}: "
            f"FID {degenerate_fid} reported",
            *LIPREG_NOTES,
            "Domain scaling L(alpha x)/alpha (Eq. 11, 19); alpha below 1e-25 gives NaN",
        ]
        loss_section = {"name": loss, "domain_scale": alpha} if alpha != 1.0 else {"name": loss}
        yield (
            f"lipreg/{stem}.yaml",
            header,
            lipreg_config(f"lipreg_{stem}", cifar10, dcgan, spectral("sn", 50.0), loss_section),
        )
    header = [
        "LipReg App. C / Fig. 3, CelebA-64, WGAN-GP (k_GP = 1): intervals of D's outputs, no FID reported",
        "App. C: batch norm instead of SN in D, GP lambda 10; Fig. 3 varies penalty.center (k_GP)",
        *LIPREG_NOTES,
    ]
    model, lipschitz = {"arch": "dcgan", "options": {"d_norm": "bn"}}, {**no_constraint(), **penalty()}
    cfg = lipreg_config(
        "lipreg_celeba_wgan-gp", data("celeba", 64, "all"), model, lipschitz, {"name": "wgan"}
    )
    yield "lipreg/celeba_wgan-gp.yaml", header, cfg


def all_configs():
    """Every (relative path, header lines, config mapping), in a fixed order."""
    from make_configs_gn import gn_extra_configs  # imports this module's helpers, so not at the top

    for family in (gran_configs, gradnorm_configs, gn_extra_configs, bssn_configs, lipreg_configs):
        yield from family()


def write_all(out_dir: Path) -> list[Path]:
    written = []
    for relative, header, cfg in all_configs():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(header, cfg), encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "src" / "lipgan" / "configs",
        help="output folder (default: src/lipgan/configs/)",
    )
    args = parser.parse_args()
    print(f"wrote {len(write_all(args.out))} configs under {args.out}")


if __name__ == "__main__":
    main()
