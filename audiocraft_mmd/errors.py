"""Exceptions raised by audiocraft_mmd."""


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the config key."""
