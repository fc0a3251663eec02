"""Errors that are the user's to fix (bad config, missing file), as opposed to bugs.

The CLI prints a :class:`LipganError` as one line and exits with status 2; every other exception is a bug
and keeps its traceback.
"""


class LipganError(Exception):
    """A user mistake with a one-line explanation of how to fix it."""


class ConfigError(LipganError):
    """An unknown key, a bad value or an inconsistent combination of options."""


class MissingFileError(LipganError):
    """A dataset, checkpoint or weight file that is not where it should be."""


class TrainingDivergedError(LipganError):
    """A NaN or Inf appeared in a training quantity; the last good checkpoint is kept."""


class FileSystemError(LipganError):
    """A folder that cannot be written: a read-only or full disk, no permission, a file in the way."""


class CheckpointError(LipganError):
    """A checkpoint that is empty, truncated, unreadable, not lipgan's, corrupted, or not for this config."""
