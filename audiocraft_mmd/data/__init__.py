"""Dataset preparation: audio folders (or the default Debian music set) to AudioCraft manifests.

The entry points live in :mod:`audiocraft_mmd.data.prepare` (``prepare_dataset``, ``ensure_dataset``)
and the command line in :mod:`audiocraft_mmd.prepare_data`. Importing this package is cheap.
"""
