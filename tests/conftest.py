"""Shared fixtures: tiny generated audio datasets (no network, no real data), tiny solvers and XPs.

Shared helpers (functions, constants) are in ``common_utils``; this file is at the root of tests/
so that its fixtures reach every folder, and pytest puts this folder on ``sys.path`` for ``common_utils``.
"""

import contextlib
from pathlib import Path

import pytest

import audiocraft_mmd  # noqa: F401  (connects AudioCraft before any test imports it)
from common_utils import TINY_CODEC, TINY_RUN, datasource, run_new_xp, write_egs


@pytest.fixture(scope="session")
def tiny_egs(tmp_path_factory) -> Path:
    """Tiny 16 kHz manifests (see :func:`common_utils.write_egs`)."""
    return write_egs(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture
def make_tiny_solver(tiny_egs, tmp_path, monkeypatch):
    """Builds, in this process, the solver of a tiny `dora run solver=compression/mmd <overrides>`."""
    from audiocraft_mmd import train

    monkeypatch.setattr(train.main.dora, "dir", tmp_path)
    with contextlib.ExitStack() as stack:  # each solver is used inside its XP, as under `dora run`

        def make(*overrides: str):
            xp = train.main.get_xp(["solver=compression/mmd", *TINY_RUN, *datasource(tiny_egs), *overrides])
            stack.enter_context(xp.enter())
            return train.get_solver(xp.cfg)

        yield make


@pytest.fixture
def tiny_solver(make_tiny_solver):
    """The MMD compression solver of a tiny `dora run solver=compression/mmd`, built in this process."""
    return make_tiny_solver()


@pytest.fixture(scope="session")
def dora_dir(tmp_path_factory) -> Path:
    """The Dora folder shared by the MusicGen tests (their codec and LM XPs)."""
    return tmp_path_factory.mktemp("dora_musicgen")


@pytest.fixture(scope="session")
def codec_sig(tiny_egs, dora_dir) -> str:
    """A tiny compression XP trained with the loss aligned as the delay pattern (mmd.alignment=delay),
    trained once for every MusicGen test module."""
    run, xp_folder = run_new_xp(["run", *TINY_CODEC, *datasource(tiny_egs)], dora_dir)
    assert run.returncode == 0, run.stderr[-6000:]
    return xp_folder.name


@pytest.fixture
def grid_dora_dir(tmp_path, monkeypatch) -> Path:
    """A new Dora folder for this test, set as the entry point's (the grids' XPs are created there)."""
    from audiocraft_mmd import train
    monkeypatch.setattr(train.main.dora, "dir", tmp_path / "dora")
    return tmp_path / "dora"
