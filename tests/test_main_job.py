"""The README's main job, for real: `dora run solver=compression/mmd` on the default real-music data.

Slow (1000 updates: about 15 minutes on 2 idle cores, plus the data preparation the first time):
`pytest -m slow`. The codec must reconstruct (evaluate SI-SNR >= +5 dB) with healthy codebooks
(entropy >= 6 bits of 8 each), as the README says it does.
"""

import json

import pytest

from common_utils import REPO, dora


@pytest.mark.slow
def test_main_job_trains_and_improves_validation_mel(tmp_path):
    run = dora(["run", "solver=compression/mmd"], tmp_path, timeout=3600)
    assert run.returncode == 0, run.stderr[-6000:]
    (xp_folder,) = (tmp_path / "xps").iterdir()
    history = json.loads((xp_folder / "history.json").read_text())
    assert {"train", "valid", "evaluate", "generate"} <= set(history[-1])
    assert history[-1]["valid"]["mel"] < history[0]["valid"]["mel"]
    assert all(f"usage_q{k}" in history[-1]["valid"] and f"entropy_q{k}" in history[-1]["evaluate"]
               for k in range(4))
    evaluate = history[-1]["evaluate"]
    assert evaluate["si_snr_db"] >= 5.0, evaluate
    assert min(evaluate[f"entropy_q{k}"] for k in range(4)) >= 6.0, evaluate
    assert (xp_folder / "checkpoint.th").exists()
    assert list((xp_folder / "samples").rglob("*.wav"))
    assert (REPO / "egs" / "debian_music_16k_mono" / "train" / "data.jsonl").exists()
