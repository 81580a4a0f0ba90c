"""The README's main job, for real: `dora run solver=compression/mmd` on the default real-music data.

Slow (1000 updates: about 14 minutes on 2 idle cores, plus the data preparation the first time):
`pytest -m slow tests/test_main_job.py`, which CI runs. The codec must train through every stage,
and the figures the README quotes for it must be the ones this run measured: CPU training is
deterministic for a signature, so they agree to the README's rounding.
"""

import json
import re

import pytest

from common_utils import REPO, dora

LSD = ["lsd_0_250", "lsd_250_1000", "lsd_1000_2000", "lsd_2000_4000"]
ENTROPIES = [f"entropy_q{k}" for k in range(4)]
# The README's phrase (one regex group per figure) -> the evaluate metrics it quotes, and their format.
README_FIGURES = {
    r"evaluate SI-SNR \*\*(\S+) dB\*\*": (["si_snr_db"], "{:+.2f}"),
    r"mel distance (\S+),": (["mel_distance"], "{:.3f}"),
    r"log-spectral distance (\S+) / (\S+) / (\S+) / (\S+) dB": (LSD, "{:.2f}"),
    r"frame-rate comb (\S+) dB": (["comb_db"], "{:+.1f}"),
    r"codebook entropies (\S+) / (\S+) / (\S+) / (\S+) bits": (ENTROPIES, "{:.2f}"),
    r"MI (\S+) bit \(parallel\) and (\S+) bit \(delay-aligned; its fast part (\S+), slow part (\S+)\)":
        (["mi_parallel", "mi_delay", "mi_fast_delay", "mi_slow_delay"], "{:.3f}"),
}


def readme_main_job_figures(text: str) -> dict:
    """``metric -> figure as written`` for every figure of :data:`README_FIGURES` in the README."""
    quoted = {}
    for phrase, (metrics, _) in README_FIGURES.items():
        match = re.search(phrase.replace(" ", r"\s+"), text)  # the README wraps its lines anywhere
        assert match, f"the README no longer quotes the main job's figures as {phrase!r}"
        quoted.update(zip(metrics, match.groups()))
    return quoted


def test_the_readme_quotes_every_main_job_figure():
    quoted = readme_main_job_figures((REPO / "README.md").read_text())
    assert len(quoted) == sum(len(metrics) for metrics, _ in README_FIGURES.values())


@pytest.mark.slow
def test_main_job_trains_and_measures_what_the_readme_says(tmp_path):
    run = dora(["run", "solver=compression/mmd"], tmp_path, timeout=3600)
    assert run.returncode == 0, run.stderr[-6000:]
    (xp_folder,) = (tmp_path / "xps").iterdir()
    assert xp_folder.name == "ec617973"  # the signature the README names
    history = json.loads((xp_folder / "history.json").read_text())
    assert len(history) == 20 and {"train", "valid", "evaluate", "generate"} <= set(history[-1])
    assert history[-1]["valid"]["mel"] < history[0]["valid"]["mel"]
    evaluate = history[-1]["evaluate"]
    measured = {metric: form.format(evaluate[metric])
                for metrics, form in README_FIGURES.values() for metric in metrics}
    assert readme_main_job_figures((REPO / "README.md").read_text()) == measured
    assert (xp_folder / "checkpoint.th").exists()
    assert list((xp_folder / "samples").rglob("*.wav"))
    assert (REPO / "egs" / "debian_music_16k_mono" / "train" / "data.jsonl").exists()
