"""What a test needs beyond the package (a browser, Slurm, a Debian package, an optional Python package).

Locally a missing dependency skips the test with the reason. Under ``CI=true`` it fails instead: CI
installs every dependency first (``scripts/ci_packages``), so a skip there would hide a broken set-up
behind a green run.
"""

import importlib.util
import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(reason: str, module_level: bool = False) -> None:
    """Skips the test (or its module) with ``reason``; fails it under ``CI=true``."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing dependency fails the run instead of skipping)", pytrace=False)
    pytest.skip(reason, allow_module_level=module_level)


def require_modules(*names: str, install: str = "", module_level: bool = False) -> None:
    """:func:`unavailable` unless every Python module of ``names`` can be imported."""
    missing = [name for name in names if importlib.util.find_spec(name) is None]
    if missing:
        unavailable(f"{', '.join(missing)} not installed" + (f" ({install})" if install else ""), module_level)
