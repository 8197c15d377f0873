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
