"""docs/methods.md is the method reference the code cites: every `docs/methods.md §N.M` cited in the sources
names one of its headings, and nothing cites the steering notes that are not part of the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
METHODS = ROOT / "docs" / "methods.md"
HEADING = re.compile(r"^#{2,4} (§\d+(?:\.\d+)*) \S", re.MULTILINE)
# "docs/methods.md §2.8", "docs/methods.md §6.5, §11", "docs/methods.md §3.2–§3.4"
CITATION = re.compile(r"docs/methods\.md((?:(?:,|–| and)? ?§\d+(?:\.\d+)*)+)")
SECTION = re.compile(r"§\d+(?:\.\d+)*")
# The steering notes live outside the repository; the names are split so that this file does not cite them.
FOREIGN = ("PAPERS" + ".md", "DESIGN" + ".md")


def text_files(*folders: str) -> list[Path]:
    files = []
    for folder in folders:
        path = ROOT / folder
        files += [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [p for p in files if "__pycache__" not in p.parts]


def headings() -> list[str]:
    return HEADING.findall(METHODS.read_text())


def citations(files: list[Path]) -> dict[str, list[str]]:
    """Section -> the files citing it as `docs/methods.md §...`."""
    cited: dict[str, list[str]] = {}
    for path in files:
        if path.suffix not in (".py", ".md"):
            continue
        for match in CITATION.finditer(path.read_text()):
            for section in SECTION.findall(match.group(1)):
                cited.setdefault(section, []).append(str(path.relative_to(ROOT)))
    return cited


def test_headings_are_unique_and_numbered_in_order():
    numbers = [tuple(int(part) for part in h[1:].split(".")) for h in headings()]
    assert len(numbers) == len(set(numbers)) > 50
    assert numbers == sorted(numbers)
    tops = [n[0] for n in numbers if len(n) == 1]
    assert tops == list(range(1, len(tops) + 1))
    for number in numbers:  # every §N.M sits under its §N, numbered from 1 without gaps
        if len(number) == 2:
            siblings = [n[1] for n in numbers if len(n) == 2 and n[0] == number[0]]
            assert (number[0],) in numbers and siblings == list(range(1, len(siblings) + 1))


def test_every_cited_section_is_a_heading():
    cited = citations(text_files("src", "tests", "docs", "README.md", "benchmarks", "scripts"))
    assert len(cited) > 20  # the sources do cite it
    missing = {section: where for section, where in cited.items() if section not in headings()}
    assert missing == {}


def test_the_citation_pattern_reads_lists_and_ranges():
    text = "see docs/methods.md §6.5, §11 and docs/methods.md §2.8; docs/methods.md §3.2–§3.4."
    found = [SECTION.findall(m.group(1)) for m in CITATION.finditer(text)]
    assert found == [["§6.5", "§11"], ["§2.8"], ["§3.2", "§3.4"]]


@pytest.mark.parametrize("folder", ["src", "docs", "README.md"])
def test_nothing_cites_the_notes_outside_the_repository(folder):
    offenders = [
        str(path.relative_to(ROOT))
        for path in text_files(folder)
        if any(name.encode() in path.read_bytes() for name in FOREIGN)
    ]
    assert offenders == []
