"""Exceptions that the CLI turns into one clear line instead of a traceback.

Every message names the file (and line or record where there is one) and what was expected.
"""


class YolokitError(Exception):
    """Base class: bad input or configuration that the user can fix."""


class ConfigError(YolokitError):
    """A .cfg / YAML / argument problem; the message names the file and line or key."""


class WeightsError(YolokitError):
    """A .weights or checkpoint file that does not fit the model it is loaded into."""


class DataError(YolokitError):
    """An annotation, image or video that cannot be read; the message names the file."""


class WriteError(YolokitError, OSError):
    """A file yolokit writes could not be written (disk full, quota, read-only, permissions). Still an
    ``OSError`` (``errno``, ``strerror``, ``filename``), so code that maps OSErrors keeps working, and one line
    at the CLI: ``cannot write PATH: the disk is full``."""

    REASONS = {28: "the disk is full", 122: "the disk quota is exceeded", 30: "read-only file system",
               13: "permission denied", 1: "permission denied", 27: "file too large"}

    def __str__(self) -> str:
        why = self.REASONS.get(self.errno, self.strerror or "write failed")
        return f"cannot write {self.filename}: {why}" if self.filename else f"cannot write: {why}"

