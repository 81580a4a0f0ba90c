"""Exceptions raised by audiocraft_mmd."""


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the config key."""


class DataError(ValueError):
    """A dataset manifest or one of its audio files is unusable; the message names the split and the file."""
