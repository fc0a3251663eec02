"""The configs that ship with lipgan and what their headers say (`lipgan configs`).

Every shipped YAML file opens with `#` comment lines, and the first one names its source, e.g.

    # GraN (Bhaskara et al. 2022) Table 2, CIFAR-10, GraND-GAN: IS 8.031, FID 14.965, KID(x1000) 12.3 reported

From that line come:
- the paper: the first of the papers' short names (docs/methods.md, top) it mentions (`GraN-GAN` is GraN);
- the table: the first run of Table / Fig. / App. / § references (`App. F Table 6`, `Fig. 2 / App. J`),
  prefixed by the paper it is quoted from where that is another one (`PGN Table II` in a GN config);
- the reported numbers: `METRIC NUMBER, ...` between the colon and the word `reported`.
Whatever the line does not hold (a hand-written config, "did not reach FID < 70", "no FID reported") reads
'-'. A file with a top-level `base` key is a grid for `lipgan sweep`; any other is a config for `lipgan train`
(the typed config has no `base` key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from lipgan.training.config import SHIPPED_CONFIGS

MISSING = "-"
PAPER = r"(?<![\w-])(?:GraN|PGN|GN|BSSN|LipReg)(?!\w)"
REFERENCE = r"(?:Table [0-9IVX]+(?: ?\([a-z]\))?|Fig\. ?\d+|App\. [A-Z]\b|§ ?\d+(?:\.\d+)*)"
PAPER_PATTERN = re.compile(PAPER)
TABLE_PATTERN = re.compile(rf"(?:(?P<source>{PAPER}) )?(?P<refs>{REFERENCE}(?:(?: / | ){REFERENCE})*)")
REPORTED_PATTERN = re.compile(
    r":\s*(?P<numbers>[A-Za-z][\w()]* \d+(?:\.\d+)?(?:, [A-Za-z][\w()]* \d+(?:\.\d+)?)*) reported\b"
)
COLUMNS = ("name", "use", "paper", "table", "reported")


@dataclass(frozen=True)
class ShippedConfig:
    name: str  # the path under SHIPPED_CONFIGS without `.yaml`: what `lipgan train` / `lipgan sweep` take
    use: str  # "train" or "sweep"
    paper: str
    table: str
    reported: str  # e.g. "IS 8.031, FID 14.965, KID(x1000) 12.3"

    def row(self) -> tuple[str, ...]:
        return tuple(getattr(self, column) for column in COLUMNS)


def header_lines(text: str) -> list[str]:
    """The leading `#` comment lines of a YAML file, without the `#` and the surrounding spaces."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return lines


def paper_of(line: str) -> str:
    match = PAPER_PATTERN.search(line)
    return match.group(0) if match else MISSING


def table_of(line: str, paper: str) -> str:
    match = TABLE_PATTERN.search(line)
    if match is None:
        return MISSING
    source = match.group("source")
    return f"{source} {match.group('refs')}" if source and source != paper else match.group("refs")


def reported_of(line: str) -> str:
    match = REPORTED_PATTERN.search(line)
    return match.group("numbers") if match else MISSING


def describe(path: Path, root: Path = SHIPPED_CONFIGS) -> ShippedConfig:
    """What the header of the config at `path` (a file under `root`) says."""
    text = path.read_text(encoding="utf-8")
    first = (header_lines(text) or [""])[0]
    values = yaml.safe_load(text)
    paper = paper_of(first)
    return ShippedConfig(
        name=path.relative_to(root).with_suffix("").as_posix(),
        use="sweep" if isinstance(values, dict) and "base" in values else "train",
        paper=paper,
        table=table_of(first, paper),
        reported=reported_of(first),
    )


def shipped_configs(root: Path = SHIPPED_CONFIGS) -> list[ShippedConfig]:
    """Every YAML file under `root`, by name."""
    return sorted((describe(path, root) for path in root.rglob("*.yaml")), key=lambda c: c.name)


def matching(configs: list[ShippedConfig], pattern: str | None) -> list[ShippedConfig]:
    """The configs whose name or paper holds `pattern` (case-insensitive); all of them for None."""
    if not pattern:
        return list(configs)
    needle = pattern.lower()
    return [c for c in configs if needle in c.name.lower() or needle in c.paper.lower()]


def format_table(configs: list[ShippedConfig]) -> str:
    """An aligned plain-text table, one config per line under a header line."""
    rows = [COLUMNS, *(c.row() for c in configs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    lines = ["  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]) for row in rows]
    return "\n".join(lines)
