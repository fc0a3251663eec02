"""The methods `lipgan bench` times, each a named set of config overrides (docs/methods.md §2, §3, §4, §2.8).

A method is only config: the bench builds its nets, critic, regularizers and optimizers through the training
code from `load_config(None, overrides)`, so what is timed is what `lipgan train` runs with those settings.
Every method sets every constraint key it depends on (the config's default is GraN), so none inherits
another's constraint.
"""

from __future__ import annotations

from dataclasses import dataclass

from lipgan.registry import Registry


@dataclass(frozen=True)
class BenchMethod:
    name: str
    summary: str  # one line for --help and the docs
    overrides: tuple[str, ...]  # dotted key=value settings of the method, applied last


BENCH_METHODS: Registry[BenchMethod] = Registry("bench method")


def _method(
    name: str,
    summary: str,
    gradnorm: str | None = None,
    spectral: str | None = None,
    penalty: tuple[float, float, str] | None = None,
    fast_path: bool = True,
    dstep: str = "tangent",
) -> BenchMethod:
    weight, center, at = penalty if penalty is not None else (0.0, 1.0, "interpolates")
    overrides = (
        f"constraint.gradnorm={gradnorm or 'null'}",
        f"constraint.spectral={spectral or 'null'}",
        f"penalty.weight={weight}",
        f"penalty.center={center}",
        f"penalty.at={at}",
        f"constraint.generator_fast_path={str(fast_path).lower()}",
        f"constraint.dstep={dstep}",
    )
    method = BenchMethod(name, summary, overrides)
    return BENCH_METHODS.register(name)(method)


# The order of the tables: the unconstrained baseline, the per-layer constraints, the penalties, the
# gradient normalizations, and last the reference technique every other method is compared against.
DEFAULT_METHODS = (
    _method("vanilla", "no constraint: D's raw output").name,
    _method("sn", "spectral normalization of every layer, reshaped kernel (§3.2)", spectral="sn").name,
    _method("bsn", "bidirectional spectral normalization (§3.4)", spectral="bsn").name,
    _method("sn-strict", "SN of the convolution operator (§3.3)", spectral="sn-strict").name,
    _method(
        "wgan-gp", "penalty 10·E(‖∇D‖−1)² at interpolates (§4.2)", penalty=(10.0, 1.0, "interpolates")
    ).name,
    _method("r1", "penalty 10·E‖∇D‖² at the reals (§4.4)", penalty=(10.0, 0.0, "real")).name,
    _method("gn", "GN, tangent D step (§2.11), G step without double backward (§2.8)", gradnorm="gn").name,
    _method("gran", "GraN, tangent D step (§2.11), G step of §2.8", gradnorm="gran").name,
    _method("pgn", "PGN, tangent D step (§2.11), G step of §2.8", gradnorm="pgn").name,
    _method(
        "official-gn",
        "GN as the official GNGAN-PyTorch code runs it: double backward in the D and the G step",
        gradnorm="gn",
        fast_path=False,
        dstep="double-backward",
    ).name,
)
# candidates for the D step (docs/performance.md), timed on request (--methods), not in the default tables
CANDIDATES = tuple(
    _method(
        f"{name}-db",
        f"{label}, the reference double-backward D step (§2.11), G step of §2.8",
        gradnorm=name,
        dstep="double-backward",
    ).name
    for name, label in (("gn", "GN"), ("gran", "GraN"), ("pgn", "PGN"))
)
BASELINE = "vanilla"  # the "× vanilla" columns divide by its time
REFERENCE = "official-gn"  # the "speed-up" columns are its time divided by each method's
