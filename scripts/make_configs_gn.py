"""The GN and PGN settings beyond the CNN / ResNet tables of `make_configs.py`, which imports this module:
conditional BigGAN on CIFAR-10 (GN §4 and Table 4; PGN §IV-B and Table V) and GN Table 5 at 128² and 256²
(docs/methods.md §6.5, §7.2, §7.8, §11). The remaining settings come from the official GN code's
`config/*.txt` (basiclab/GNGAN-PyTorch), as each header says.
"""

from __future__ import annotations

from make_configs import CR_NOTE, FLIP_NOTE, adam, data, gradnorm, rows, tail

BIGGAN_REPORTED = """
# paper  CR   table                               result (FID(train); GN Table 4 also FID(test) 10.05, 8.92)
gn       no   GN-(Wu-et-al.-2021)-Table-4         IS-9.22,-FID-5.87-reported
gn       yes  GN-(Wu-et-al.-2021)-Table-4         IS-9.35,-FID-4.86-reported
pgn      no   PGN-(Xia)-Table-V                   not-in-the-paper-(Table-V-reports-PGN-BigGAN-CR-only)
pgn      yes  PGN-(Xia)-Table-V                   IS-9.471,-FID-5.495-reported
"""
BIGGAN_NOTES = [
    "GN §4 / PGN §IV-B: BigGAN-32 (GN code models/biggan.py), hinge loss, Adam 1e-4 (G) / 2e-4 (D),",
    "betas (0, 0.999), batch 50, n_dis 4, 125k G steps, no LR decay, EMA 0.9999 from G step 1000",
    "(GN code config/GN-GAN_CIFAR10_BIGGAN.txt); GN acts on the class-wise D_y(x) (GN Eq. 16)",
    "SN of the projection embedding (constraint.spectral_embedding) applies only with a spectral variant",
]
TABLE5 = """
# stem            label            dataset    side options                 EMA-start FID(GN-GAN)
celebahq128_resnet CelebA-HQ-128   celeba_hq  128  -                       10000     14.78
celebahq256_resnet CelebA-HQ-256   celeba_hq  256  -                       10000     7.67
church256_resnet   LSUN-Church-256 lsun       256  category=church_outdoor 20000     5.41
"""
TABLE5_NOTES = [
    "GN §4: SNGAN ResNet (the GN code's plan: models/resnet.py ResGenerator/ResDiscriminator), hinge loss,",
    "Adam 2e-4 / 2e-4, betas (0, 0.9), batch 64 (the code's D batch; its G batch is 128), n_dis 5,",
    "100k G steps, linear LR decay from step 0, EMA 0.9999 (from the G step the code's config names)",
    "GN's FID protocol here (CelebA-HQ 30k vs 30k, Church 50k vs 126k) is not in metrics/protocols.py;",
    "bssn (FID of 10k generated vs 5k real) stands in",
]


def biggan_configs():
    for paper, with_cr, table, result in rows(BIGGAN_REPORTED):
        cr = {"cr": {"weight": 5.0, "max_shift": 0.2, "flip": True}} if with_cr == "yes" else {}
        tag, suffix = (f"{paper.upper()}-BigGAN-CR", "_cr") if cr else (f"{paper.upper()}-BigGAN", "")
        header = [f"{table.replace('-', ' ')}, conditional CIFAR-10, {tag}: {result.replace('-', ' ')}"]
        header += [*BIGGAN_NOTES, FLIP_NOTE, *([CR_NOTE] if cr else [])]
        optim = {**adam(1e-4, 2e-4, [0.0, 0.999], 4, "none", 0.9999), "ema_start": 1000}
        cfg = {
            "name": f"{paper}_cifar10_biggan{suffix}",
            "data": {**data("cifar10", 32, "train"), "batch_size": 50, "augment": "flip"},
            "model": {"arch": "biggan", "options": {"num_classes": 10}},
        }
        cfg.update(gradnorm(paper), loss={"name": "hinge"}, **cr, **tail(optim, 125_000, "gn"))
        yield f"{paper}/cifar10_biggan{suffix}.yaml", header, cfg


def table5_configs():
    for stem, label, dataset, side, options, ema_start, fid in rows(TABLE5):
        extra = dict(item.split("=") for item in options.split(",")) if options != "-" else {}
        header = [f"GN (Wu et al. 2021) Table 5, {label.replace('-', ' ')}, GN-GAN: FID {fid} reported"]
        header += [*TABLE5_NOTES, "Reals are flipped at random (p = 0.5), as GN §4 says: data.augment flip"]
        optim = {**adam(2e-4, 2e-4, [0.0, 0.9], 5, "linear", 0.9999), "ema_start": int(ema_start)}
        model = {"arch": "sngan-resnet", "options": {"init": "kaiming", "pooling": "avg", "plan": "gngan"}}
        split = "all" if dataset == "celeba_hq" else "train"
        cfg = {
            "name": f"gn_{stem}",
            "data": {**data(dataset, int(side), split, **extra), "augment": "flip"},
            "model": model,
        }
        cfg.update(gradnorm("gn"), loss={"name": "hinge"}, **tail(optim, 100_000, "bssn"))
        yield f"gn/{stem}.yaml", header, cfg


def gn_extra_configs():
    yield from biggan_configs()
    yield from table5_configs()
