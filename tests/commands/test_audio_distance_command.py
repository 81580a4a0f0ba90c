"""``python -m audiocraft_mmd.audio_distance`` on generated audio: report, sources, bad inputs."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from common_utils import require_modules, write_tones

require_modules("musicnn", install="pip install --no-deps musicnn==0.1.0", module_level=True)

from audiocraft_mmd import audio_distance  # noqa: E402
from audiocraft_mmd.data import sources  # noqa: E402
from audiocraft_mmd.metrics import music_distance  # noqa: E402


def run(capsys, *args):
    code = audio_distance.main([*map(str, args), "--bootstrap", "20"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio_distance")
    write_tones(root / "a", num_files=4, duration=4.0, seed=0)
    write_tones(root / "b", num_files=4, duration=4.0, seed=1)
    return root


def test_report_and_overwrite(folders, tmp_path, capsys):
    out = tmp_path / "report"
    code, stdout, stderr = run(capsys, "--reference", folders / "a", "--candidate", folders / "b", "--out", out)
    assert code == 0, stderr
    assert "[audio_distance reference] 4/4" in stderr and "[audio_distance candidate] 1/4" in stderr  # progress
    report = json.loads((out / "report.json").read_text())
    assert report["reference"]["clips"] == 4 and report["reference"]["patches"] == 4  # one 3 s patch per 4 s clip
    for name in ("frechet", "kernel"):
        value = report["distances"][name]
        # draws of one clip are skipped
        assert value["ci_low"] <= value["value"] <= value["ci_high"] and 0 < value["draws"] <= 20
    assert "kernel:" in stdout
    code, _, stderr = run(capsys, "--reference", folders / "a", "--candidate", folders / "b", "--out", out)
    assert code == 2 and "already exists: pass --overwrite" in stderr
    code, _, _ = run(capsys, "--reference", folders / "a", "--candidate", folders / "b", "--out", out, "--overwrite")
    assert code == 0


def test_sources_at_different_rates_are_compared_with_a_note(folders, tmp_path, capsys):
    write_tones(tmp_path / "8k", num_files=4, duration=4.0, seed=1, sample_rate=8000)
    code, _, stderr = run(capsys, "--reference", folders / "a", "--candidate", tmp_path / "8k", "--out", tmp_path / "r")
    assert code == 0, stderr
    assert "note: sample rates differ (reference 16000 Hz, candidate 8000 Hz)" in stderr and "above 4000 Hz" in stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["reference"]["sample_rates"] == [16000] and report["candidate"]["sample_rates"] == [8000]
    music_distance.note_sample_rates({"reference": {16000}, "candidate": {16000}})
    assert "note:" not in capsys.readouterr().err


def test_identical_sets_are_closer_than_different_ones(folders, tmp_path, capsys):
    def kernel(a, b, out):
        assert run(capsys, "--reference", a, "--candidate", b, "--out", tmp_path / out)[0] == 0
        return json.loads((tmp_path / out / "report.json").read_text())["distances"]["kernel"]["value"]
    noise = tmp_path / "noise"
    noise.mkdir()
    rng = np.random.default_rng(0)
    for index in range(4):
        sf.write(noise / f"n{index}.wav", (0.3 * rng.standard_normal(64000)).astype(np.float32), 16000)
    assert kernel(folders / "a", folders / "b", "ab") < kernel(folders / "a", noise, "an")


@pytest.mark.parametrize("problem, message", [
    ("empty", "holds no audio file"),
    ("missing", "does not exist"),
    ("silent", "silent"),
    ("corrupt", "cannot read audio"),
    ("short", "shorter than the 1 s minimum"),
    ("manifest", "is malformed"),
])
def test_bad_input_is_one_clear_line(problem, message, folders, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    if problem == "silent":
        sf.write(bad / "silence.wav", np.zeros(48000, np.float32), 16000)
    elif problem == "corrupt":
        (bad / "broken.wav").write_bytes(b"RIFF not really a wav file" * 10)
    elif problem == "short":
        sf.write(bad / "short.wav", 0.1 * np.ones(8000, np.float32), 16000)
    elif problem == "manifest":
        (bad / "data.jsonl").write_text('{"path": "x.wav", "dura\n')
    source = tmp_path / "nowhere" if problem == "missing" else bad
    code, _, stderr = run(capsys, "--reference", folders / "a", "--candidate", source, "--out", tmp_path / "out")
    assert code == 2
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], stderr
    if problem in ("silent", "corrupt"):
        assert "bad/" in lines[-1]  # names the file
    assert not (tmp_path / "out" / "report.json").exists()


def test_other_sample_rates_are_resampled(tmp_path):
    from audiocraft_mmd.metrics.music_embedding import MusicEmbedder
    embedder = MusicEmbedder()
    t = np.arange(int(4 * 44100)) / 44100
    wave = 0.3 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(2 * np.pi * 2 * t))
    high = embedder.embed(torch.from_numpy(np.stack([wave, wave])).float(), 44100)  # stereo, 44.1 kHz
    import julius
    low = embedder.embed(julius.resample_frac(torch.from_numpy(wave).float(), 44100, 16000)[None], 16000)
    assert high.shape == low.shape == (1, 200)
    assert torch.allclose(high, low, atol=1e-3)


def test_manifest_and_xp_sources(tiny_egs, tmp_path, monkeypatch):
    files = sources.resolve_source(str(tiny_egs / "evaluate"))
    assert len(files) == 2 and all(f.exists() for f in files)
    assert sources.resolve_source(str(tiny_egs / "evaluate" / "data.jsonl")) == files
    xp = tmp_path / "xps" / "abc123"
    for epoch in (1, 2):
        write_tones(xp / "samples" / str(epoch), num_files=epoch + 1, duration=2.0, seed=epoch)
    write_tones(xp / "samples" / "2" / "prompt", num_files=1, duration=2.0, seed=5)
    write_tones(xp / "samples" / "reference", num_files=2, duration=2.0, seed=6)
    (xp / "history.json").write_text("[]")
    latest = sources.resolve_source(str(xp))
    assert [f.parent.name for f in latest] == ["2"] * 3  # latest epoch, prompts left out
    assert len(sources.resolve_source(str(xp / "reference"))) == 2
    monkeypatch.setenv("AUDIOCRAFT_DORA_DIR", str(tmp_path))
    assert sources.resolve_source("//sig/abc123") == latest
    assert [f.parent.name for f in sources.resolve_source("//sig/abc123/reference")] == ["reference"] * 2
    with pytest.raises(sources.AudioSourceError, match="no XP nope"):
        sources.resolve_source("//sig/nope")


def test_segments_and_distance_to_a_source(folders, tmp_path):
    clips = list(sources.read_clips(sorted((folders / "a").glob("*.wav"))))
    pieces = list(sources.split_clips(clips, 1.5, max_pieces=2))
    assert len(pieces) == 8 and all(wav.shape[-1] == 24000 for _, wav, _ in pieces)
    assert len(list(sources.split_clips(clips, 10.0))) == 4  # shorter clips kept whole
    # In-memory "generations" (2 s) against a folder cut to the same length, as the LM's generate stage does.
    generated = [(f"gen{i}", wav[..., :32000], rate) for i, (_, wav, rate) in enumerate(clips)]
    same = music_distance.distance_to_source(generated, str(folders / "a"), draws=10)
    g = torch.Generator().manual_seed(0)
    noise = [(name, 0.3 * torch.randn(wav.shape, generator=g), rate) for name, wav, rate in generated]
    other = music_distance.distance_to_source(noise, str(folders / "a"), draws=10)
    assert same["musicnn_kernel"] < other["musicnn_kernel"] and same["musicnn_frechet"] < other["musicnn_frechet"]
    assert other["musicnn_kernel_ci_low"] <= other["musicnn_kernel"] <= other["musicnn_kernel_ci_high"]


def test_max_seconds_reads_the_start_of_each_file(folders, tmp_path, capsys):
    code, _, _ = run(capsys, "--reference", folders / "a", "--candidate", folders / "b", "--out", tmp_path / "r",
                     "--max-seconds", "1.5")
    assert code == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["candidate"]["seconds"] == 6.0 and report["candidate"]["patches"] == 4  # 4 files x 1.5 s, whole
