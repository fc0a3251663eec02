"""Errors that are the user's to fix (bad config, missing file), as opposed to bugs.

The CLI prints a :class:`LipganError` as one line and exits with status 2; every other exception is a bug
and keeps its traceback.
"""

import errno
import threading


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


# File-system failures that are the machine's state, not a bug: a read-only or full disk, a file where a
# folder should be, no permission.
FILE_SYSTEM_ERRNOS = {
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EACCES,
    errno.EPERM,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EEXIST,
    errno.ENOENT,
}


def is_file_system_fault(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in FILE_SYSTEM_ERRNOS


def quiet_file_system_errors(hook_args) -> None:
    """TensorBoard's writer thread meets a full or read-only disk too; the main thread reports it in one
    line, so the thread's traceback would only repeat it. Every other thread error keeps its traceback."""
    if is_file_system_fault(hook_args.exc_value):
        return
    threading.__excepthook__(hook_args)
