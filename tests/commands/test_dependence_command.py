"""`python -m audiocraft_mmd.dependence` on a tiny codec built here (the dora-run codec is tested in
test_dora_run.py): bad inputs fail clearly, reports are never overwritten silently."""

import json

import pytest
import torch

from audiocraft_mmd.data.sources import AudioSourceError, read_audio_meta
from audiocraft_mmd.dependence import load_codec, main
from audiocraft_mmd.utils.checkpoints import CheckpointError

from common_utils import build_checkpoint


@pytest.fixture(scope="module")
def codec_checkpoint(tmp_path_factory):
    return build_checkpoint(tmp_path_factory.mktemp("codec") / "checkpoint.th", 4)


def run(capsys, *args):
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


FAST = ["--segment", "2", "--permutations", "5", "--ci-blocks", "3", "--kernel-rows", "64"]


def test_audio_at_another_rate_is_resampled_with_a_note(tiny_egs, tmp_path, capsys):
    codec = build_checkpoint(tmp_path / "codec_8k.th", 4, sample_rate=8000)
    code, _, stderr = run(capsys, "--checkpoint", codec, "--data", tiny_egs / "evaluate", "--out", tmp_path / "r",
                          *FAST)
    assert code == 0, stderr
    assert "is 16000 Hz, 1 channel(s): converted to the codec's 8000 Hz" in stderr
    assert stderr.count("note:") == 1  # once per format, not per file
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["codecs"][0]["sample_rate"] == 8000


def test_command_writes_report_and_figure_and_refuses_to_overwrite(codec_checkpoint, tiny_egs, tmp_path, capsys):
    out = tmp_path / "report"
    code, stdout, stderr = run(capsys, "--checkpoint", codec_checkpoint, "--data", tiny_egs / "evaluate",
                               "--out", out, "--delays", "0,2,1,3", "--lags", "0,1,50", *FAST)
    assert code == 0, stderr
    assert "lagged MI" in stdout
    assert "[dependence] 2/2 tracks" in stderr  # progress
    report = json.loads((out / "report.json").read_text())
    (codec,) = report["codecs"]
    assert codec["num_codebooks"] == 4 and codec["bins"] == 256 and codec["segments"] == 6
    assert set(codec["alignments"]) == {"parallel", "delay", "custom"}
    delay = codec["alignments"]["delay"]
    assert delay["delays"] == [0, 1, 2, 3] and len(delay["pairs"]) == 6
    assert delay["frames"] == 6 * (100 - 3)
    assert all(pair["ci_low"] <= pair["mi"] <= pair["ci_high"] for pair in delay["pairs"])
    assert codec["alignments"]["custom"]["delays"] == [0, 2, 1, 3]
    assert 0 < codec["kernel_tests"]["delay"]["p_value"] <= 1
    assert len(codec["usage"]["entropy"]) == 4
    assert [lag["lag"] for lag in codec["lagged"]] == [0, 1, 50]
    assert codec["lagged"][0]["auto_mi"] is None and codec["lagged"][2]["frames"] == 6 * (100 - 50)
    split = codec["fast_slow"]["delay"]  # default gap: a quarter of the 97 aligned steps
    assert split["gap"] == 24 and split["frames"] == 6 * 97
    assert split["total"] == pytest.approx(delay["mean_mi"]) and \
        split["fast"] == pytest.approx(split["total"] - split["slow"])
    assert split["intervals"]["fast"][0] <= split["fast"] <= split["intervals"]["fast"][1]
    assert "fast MI" in stdout
    assert (out / "dependence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    before = (out / "report.json").read_bytes()
    code, _, stderr = run(capsys, "--checkpoint", codec_checkpoint, "--data", tiny_egs / "evaluate", "--out", out,
                          *FAST)
    assert code == 2 and "--overwrite" in stderr
    assert (out / "report.json").read_bytes() == before


def test_single_codebook_codec_is_refused(tiny_egs, tmp_path, capsys):
    checkpoint = build_checkpoint(tmp_path / "one.th", 1)
    code, _, stderr = run(capsys, "--checkpoint", checkpoint, "--data", tiny_egs / "evaluate",
                          "--out", tmp_path / "out", *FAST)
    assert code == 2 and "K = 1" in stderr
    assert not (tmp_path / "out").exists()


def test_wrong_length_delays_are_refused(codec_checkpoint, tiny_egs, tmp_path, capsys):
    code, _, stderr = run(capsys, "--checkpoint", codec_checkpoint, "--data", tiny_egs / "evaluate",
                          "--out", tmp_path / "out", "--delays", "0,1", *FAST)
    assert code == 2 and "--delays has 2 values" in stderr


def test_lags_beyond_the_segment_are_refused(codec_checkpoint, tiny_egs, tmp_path, capsys):
    code, _, stderr = run(capsys, "--checkpoint", codec_checkpoint, "--data", tiny_egs / "evaluate",
                          "--out", tmp_path / "out", "--lags", "0,100", *FAST)
    assert code == 2 and "--lags" in stderr and "--segment" in stderr
    assert not (tmp_path / "out").exists()


def test_a_slow_gap_beyond_the_segment_is_refused(codec_checkpoint, tiny_egs, tmp_path, capsys):
    code, _, stderr = run(capsys, "--checkpoint", codec_checkpoint, "--data", tiny_egs / "evaluate",
                          "--out", tmp_path / "out", "--slow-gap", "1.5", *FAST)
    assert code == 2 and "--slow-gap 1.5 s (75 frames at 50 Hz)" in stderr and "--segment" in stderr
    assert not (tmp_path / "out").exists()


def test_missing_and_empty_manifests_fail_clearly(tmp_path):
    with pytest.raises(AudioSourceError, match="does not exist"):
        read_audio_meta(str(tmp_path / "nowhere"))
    with pytest.raises(AudioSourceError, match="no manifest"):
        read_audio_meta(str(tmp_path))
    (tmp_path / "data.jsonl").write_text("")
    with pytest.raises(AudioSourceError, match="lists no audio"):
        read_audio_meta(str(tmp_path))


def test_unknown_checkpoints_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOCRAFT_DORA_DIR", str(tmp_path))
    with pytest.raises(CheckpointError, match="unknown checkpoint"):
        load_codec(str(tmp_path / "missing.th"))
    not_a_checkpoint = tmp_path / "weights.th"
    torch.save({"something": 1}, not_a_checkpoint)
    with pytest.raises(CheckpointError, match="not an AudioCraft compression checkpoint"):
        load_codec(str(not_a_checkpoint))
