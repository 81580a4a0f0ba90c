"""A run killed with SIGKILL mid-epoch resumes, with the same command, into exactly the run that was
never killed; checkpoints are never left half-written.

The two runs compute their first epoch independently, so its equality also shows that the same
seed gives the same losses on CPU.
"""

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
import typing as tp

import pytest
import torch

from common_utils import REPO, TINY_RUN, datasource, dora, without_durations

# Two short epochs, train and valid stages only, a checkpoint after each epoch.
RESUMABLE_RUN = ["solver=compression/mmd", *TINY_RUN, "optim.epochs=2", "optim.updates_per_epoch=4",
                 "evaluate.every=100", "generate.every=100"]
# The loss's variants with a state of their own, each resumed as the default loss is.
VARIANTS = {"default": [],
            "past_predictor": ["mmd.condition=past", "mmd.predictability=0.5", "mmd.predictor.hidden=16"]}


def history(dora_dir: Path) -> list:
    (xp_folder,) = (dora_dir / "xps").iterdir()
    return json.loads((xp_folder / "history.json").read_text())


# The predictor's exact resume is checked in-process in the default run (tests/solvers/test_past_predictor.py);
# its SIGKILL run (75 s on an idle 2-core machine) is in the slow set.
@pytest.fixture(scope="module", params=["default", pytest.param("past_predictor", marks=pytest.mark.slow)])
def variant(request) -> tp.List[str]:
    return VARIANTS[request.param]


@pytest.fixture(scope="module")
def uninterrupted(variant, tiny_egs, tmp_path_factory) -> list:
    dora_dir = tmp_path_factory.mktemp("uninterrupted")
    run = dora(["run", *RESUMABLE_RUN, *variant, *datasource(tiny_egs)], dora_dir)
    assert run.returncode == 0, run.stderr[-4000:]
    return history(dora_dir)


def test_sigkill_mid_epoch_then_same_command_resumes_exactly(uninterrupted, variant, tiny_egs, tmp_path):
    argv = [sys.executable, "-m", "dora", "run", *RESUMABLE_RUN, *variant, *datasource(tiny_egs)]
    env = {**os.environ, "AUDIOCRAFT_DORA_DIR": str(tmp_path)}
    process = subprocess.Popen(argv, cwd=REPO, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    try:
        while time.time() < deadline and process.poll() is None:
            logs = list(tmp_path.glob("xps/*/solver.log.0"))
            if logs and "Train | Epoch 2 | 2/4" in logs[0].read_text():
                break
            time.sleep(0.2)
        assert process.poll() is None, "the run ended before it could be killed mid-epoch"
        os.killpg(process.pid, signal.SIGKILL)  # the run and its data-loader workers, no clean-up
        process.wait()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert len(history(tmp_path)) == 1  # epoch 1 committed, epoch 2 lost with the kill

    run = dora(["run", *RESUMABLE_RUN, *variant, *datasource(tiny_egs)], tmp_path)
    assert run.returncode == 0, run.stderr[-4000:]
    resumed = history(tmp_path)
    assert len(resumed) == 2
    # Model, optimizer, model EMA, EMA codebooks, balancer averages, the loss's RNG (and the variant's
    # own state: the predictor and its optimiser) all resumed: every metric of both epochs equals the
    # uninterrupted run's, bit for bit.
    assert without_durations(resumed) == without_durations(uninterrupted)


def test_interrupted_checkpoint_write_keeps_the_last_checkpoint(tiny_solver, monkeypatch):
    """AudioCraft writes checkpoints by write-and-rename; our extra state does not change that."""
    from audiocraft.utils import checkpoint

    path = Path(tiny_solver.checkpoint_path())
    checkpoint.save_checkpoint(tiny_solver.state_dict(), path)
    before = path.read_bytes()

    def dies_half_way(state, file, *args, **kwargs):
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt  # stands for the kill arriving mid-write

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint(tiny_solver.state_dict(), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    tiny_solver.load_state_dict(checkpoint.load_checkpoint(path))
