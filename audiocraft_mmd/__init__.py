"""audiocraft_mmd: an independence-promoting MMD loss for music codecs, built on AudioCraft.

Importing the package connects it to AudioCraft (see :mod:`audiocraft_mmd.integration`); AudioCraft
itself is imported lazily, by the modules that need it.
"""

from . import integration

__version__ = "0.1.0"

integration.install()
