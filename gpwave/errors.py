"""Exceptions gpwave raises for bad input; the CLI prints them without a traceback."""

from __future__ import annotations

from pathlib import Path


class GpwaveError(Exception):
    """Base class of every error gpwave reports to the user."""


class AudioError(GpwaveError, ValueError):
    """An audio file that cannot be used, with the file and the problem.

    Args:
        path: The offending file.
        problem: What is wrong with it, in words.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DataError(GpwaveError, ValueError):
    """A data folder, manifest or protocol file that cannot be used."""


class ChecksumError(GpwaveError):
    """A downloaded or stored file whose checksum does not match its manifest."""


class CheckpointError(GpwaveError):
    """A checkpoint that cannot be loaded or does not match the run."""


class ConfigError(GpwaveError, ValueError):
    """A configuration value or key that is not allowed.

    The message is one line naming the key, the value and what is allowed, e.g.
    ``epochs='ten': expected an integer >= 1``.
    """


class AudioWarning(UserWarning):
    """An audio file that can be used only in part (e.g. truncated mid-data)."""
