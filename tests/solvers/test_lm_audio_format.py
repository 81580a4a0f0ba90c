"""The LM takes its sample rate and channels from its codec: the README's command on an
8 kHz codec trains as written, a contradicting value is refused before anything is built, and the
signatures of the LM XPs that already matched their codec do not change."""

import json

import pytest
import torch

from audiocraft_mmd.errors import ConfigError

from common_utils import TINY_CODEC, TINY_LM, datasource, dora


@pytest.fixture(scope="module")
def dora_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("dora_lm_format")


@pytest.fixture(scope="module")
def codec_8k(tiny_egs, dora_dir):
    """A tiny 8 kHz codec trained on the 16 kHz tiny data (resampled on loading, as the study's)."""
    run = dora(["run", *TINY_CODEC, "sample_rate=8000", *datasource(tiny_egs)], dora_dir)
    assert run.returncode == 0, run.stderr[-6000:]
    (xp_folder,) = (dora_dir / "xps").iterdir()
    return xp_folder.name


def test_the_readme_command_trains_an_lm_on_an_8khz_codec(tiny_egs, dora_dir, codec_8k):
    # `dora run solver=musicgen/mmd compression_model_checkpoint=//sig/SIG`: no sample_rate given.
    run = dora(["run", *TINY_LM, *datasource(tiny_egs), f"compression_model_checkpoint=//sig/{codec_8k}",
                "codebooks_pattern.modeling=delay"], dora_dir)
    assert run.returncode == 0, run.stderr[-6000:]
    (lm_folder,) = [p for p in (dora_dir / "xps").iterdir() if p.name != codec_8k]
    history = json.loads((lm_folder / "history.json").read_text())
    assert {"train", "valid", "evaluate", "generate"} <= set(history[0])
    assert f"sample_rate=8000, the codec's (//sig/{codec_8k})" in run.stderr
    state = torch.load(lm_folder / "checkpoint.th", map_location="cpu", weights_only=True)
    assert (state["xp.cfg"].sample_rate, state["xp.cfg"].channels) == (8000, 1)  # loaders rebuild from it
    import soundfile
    sample = next((lm_folder / "samples").rglob("*.wav"))
    assert soundfile.info(str(sample)).samplerate == 8000


def test_a_contradicting_sample_rate_is_refused_before_anything_is_built(tiny_egs, dora_dir, codec_8k):
    before = {p.name for p in (dora_dir / "xps").iterdir()}
    run = dora(["run", *TINY_LM, *datasource(tiny_egs), f"compression_model_checkpoint=//sig/{codec_8k}",
                "codebooks_pattern.modeling=delay", "sample_rate=16000"], dora_dir, timeout=300)
    assert run.returncode != 0
    assert f"sample_rate=16000 contradicts the codec //sig/{codec_8k}, whose sample_rate is 8000" in run.stderr
    assert "AssertionError" not in run.stderr
    for folder in (dora_dir / "xps").iterdir():
        if folder.name not in before:  # Dora made the XP folder; nothing was trained or written in it
            assert not (folder / "checkpoint.th").exists() and not (folder / "history.json").exists()


def test_compare_patterns_and_export_refuse_a_contradicting_format(dora_dir, codec_8k, monkeypatch, tmp_path):
    from audiocraft_mmd import export, train
    from audiocraft_mmd.metrics import lm_measures
    monkeypatch.setattr(train.main.dora, "dir", dora_dir)
    monkeypatch.setenv("AUDIOCRAFT_DORA_DIR", str(dora_dir))
    codec = f"//sig/{codec_8k}"
    assert "sample_rate=8000" in lm_measures.lm_overrides(codec, "delay", ["sample_rate=8000"])
    with pytest.raises(ConfigError, match=f"channels=2 contradicts the codec {codec}, whose channels is 1"):
        lm_measures.lm_overrides(codec, "delay", ["channels=2"])
    (lm_folder,) = [p for p in (dora_dir / "xps").iterdir()
                    if p.name != codec_8k and (p / "checkpoint.th").exists()]
    other_codec = tmp_path / "codec_16k.th"  # the same codec, its config saying 16 kHz
    state = torch.load(dora_dir / "xps" / codec_8k / "checkpoint.th", map_location="cpu", weights_only=True)
    state["xp.cfg"].sample_rate = 16000
    torch.save(state, other_codec)
    with pytest.raises(ConfigError, match=r"sample_rate=8000 contradicts the codec .*codec_16k.th, whose "
                                          r"sample_rate is 16000"):
        export.export(tmp_path / "out", lm=f"//sig/{lm_folder.name}", codec=str(other_codec))
    assert not (tmp_path / "out").exists()  # refused before anything was written


# Signatures computed before the LM took its format from the codec (commit a3fd147), for the XPs the
# project creates: the README's command, the study's LMs and probes, the paper-scale LMs (which pass
# the codec's sample_rate=32000 explicitly) and the 8 kHz work-around users needed before.
UNCHANGED_SIGNATURES = {
    "aa0fe1bf": ["solver=musicgen/mmd"],
    "cb761db2": ["solver=musicgen/mmd", "sample_rate=8000"],
    "ffa77064": ["solver=musicgen/study", "codebooks_pattern.modeling=delay", "seed=2036"],
    "a7ead96f": ["solver=musicgen/study", "codebooks_pattern.modeling=parallel", "seed=2037",
                 "pattern_consistency.allow_mismatch=true"],
    "0de1ef91": ["solver=musicgen/study", "codebooks_pattern.modeling=unroll", "seed=2036",
                 "optim.updates_per_epoch=100", "optim.lr=3e-3"],
    "7238709f": ["solver=musicgen/mmd", "codebooks_pattern.modeling=delay", "seed=2036", "sample_rate=32000",
                 "transformer_lm.dim=1024", "transformer_lm.num_heads=16", "transformer_lm.num_layers=24",
                 "dataset.segment_duration=10", "optim.epochs=200", "optim.updates_per_epoch=2000", "optim.lr=1e-4"],
}


@pytest.mark.parametrize("sig", list(UNCHANGED_SIGNATURES))
def test_signatures_of_existing_lm_xps_are_unchanged(sig):
    """Dora's signature is the delta of the overrides against the config composed from the config
    groups alone (dora/hydra.py, ``get_xp``), so a yaml default edited from 16000 to null moves no
    signature; only an explicit value equal to the old default (``sample_rate=16000`` on
    ``musicgen/mmd``) now shows in the delta."""
    from audiocraft_mmd import train
    argv = [UNCHANGED_SIGNATURES[sig][0], "compression_model_checkpoint=//sig/f02917f1",
            *UNCHANGED_SIGNATURES[sig][1:]]
    assert train.main.get_xp(argv).sig == sig
