"""What every `lipgan` command shares: the one-line argparse parser and the `[CONFIG] [key=value]` split."""

from __future__ import annotations

import argparse

from lipgan.errors import ConfigError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (and a pointer to --help), not the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        # argparse reports leftover arguments from the top-level parser; name the command they were given to
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(parsed, "command", None)
            prog = f"{self.prog} {command}" if command else self.prog
            self.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(extras)} (see {prog} --help)\n")
        return parsed


def split_train_args(items: list[str]) -> tuple[str | None, list[str]]:
    """`[CONFIG] [key=value ...]` -> (config, overrides)."""
    config = None
    if items and "=" not in items[0]:
        config, items = items[0], items[1:]
    stray = [item for item in items if "=" not in item]
    if stray:
        raise ConfigError(f"expected key=value overrides after the config, got {stray[0]!r}")
    return config, items
