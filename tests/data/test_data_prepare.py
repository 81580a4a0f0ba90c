"""Dataset preparation on small generated folders (no network)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
import shutil
import subprocess
import sys
import typing as tp

import numpy as np
import pytest
import soundfile as sf

from audiocraft_mmd.data import debian_music, manifest as mf
from audiocraft_mmd.data.convert import ffmpeg_binary
from audiocraft_mmd.data.fingerprint import Fingerprint, compute_fingerprint, find_duplicates, similarity
from audiocraft_mmd.data.prepare import (DatasetError, NoUsableAudioError, check_dataset, ensure_dataset,
                                         prepare_dataset)
from audiocraft_mmd import prepare_data

SR = 16000
MIN_DURATION = 2.0
GOOD = ["a/track0.wav", "a/track1.wav", "b/track2.flac", "b/track3.ogg", "track4.wav", "track5.wav",
        "track6.m4a"]


def music(seed: int, duration: float, sr: int, channels: int = 1) -> np.ndarray:
    """A music-like signal: notes with random pitches and envelopes, plus a little noise."""
    rng = np.random.default_rng(seed)
    n = int(duration * sr)
    out = np.zeros((n, channels), dtype=np.float64)
    t = np.arange(n) / sr
    for start in np.arange(0, duration, 0.25):
        f0 = 110 * 2 ** (rng.integers(0, 36) / 12)
        mask = (t >= start) & (t < start + rng.uniform(0.2, 0.6))
        env = np.exp(-(t[mask] - start) * rng.uniform(2, 8))
        for c in range(channels):
            out[mask, c] += rng.uniform(0.2, 0.5) * env * np.sin(2 * np.pi * f0 * t[mask] * (1 + 0.002 * c))
    out += 0.005 * rng.standard_normal(out.shape)
    return (0.7 * out / np.abs(out).max()).astype(np.float32)


def make_source(root: Path) -> Path:
    """A user folder with good tracks in several formats, bad files and duplicates."""
    src = root / "my music"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    (src / "copies").mkdir()
    sf.write(src / "a/track0.wav", music(0, 3.0, 44100, 2), 44100)
    sf.write(src / "a/track1.wav", music(1, 3.5, 22050, 1), 22050, subtype="PCM_24")
    sf.write(src / "b/track2.flac", music(2, 3.0, 48000, 2), 48000)
    sf.write(src / "b/track3.ogg", music(3, 4.0, 44100, 2), 44100, format="OGG", subtype="VORBIS")
    sf.write(src / "track4.wav", music(4, 3.0, SR, 1), SR)
    sf.write(src / "track5.wav", music(5, 2.5, SR, 1), SR)
    # A format soundfile cannot read: decoded by ffmpeg.
    subprocess.run([ffmpeg_binary(), "-v", "error", "-f", "f32le", "-ar", "44100", "-ac", "2", "-i", "pipe:0",
                    "-c:a", "aac", "-b:a", "128k", str(src / "track6.m4a")],
                   input=music(6, 3.0, 44100, 2).tobytes(), check=True)
    # Bad files.
    (src / "broken.wav").write_bytes(np.random.default_rng(0).bytes(5000))
    (src / "empty.flac").write_bytes(b"")
    sf.write(src / "silence.wav", np.zeros(3 * SR, dtype=np.float32), SR)
    sf.write(src / "short.wav", music(7, 0.5, SR), SR)
    # Duplicates: the same audio in another format, and a byte-identical copy.
    wav0, sr0 = sf.read(src / "a/track0.wav", dtype="float32")
    sf.write(src / "copies/track0 copy.flac", wav0, sr0)
    shutil.copy(src / "a/track1.wav", src / "copies/track1_same.wav")
    (src / "notes.txt").write_text("not audio\n")
    return src


def snapshot(folder: Path) -> tp.Dict[str, tp.Tuple[str, int]]:
    return {p.relative_to(folder).as_posix(): (hashlib.sha1(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("prep")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUDIOCRAFT_MMD_CACHE", str(root / "cache"))
        src = make_source(root)
        before = snapshot(src)
        kwargs = dict(source=src, name="mine", sample_rate=SR, channels=1, egs_root=root / "egs",
                      min_duration=MIN_DURATION, seed=3, workers=1)
        summary = prepare_dataset(**kwargs)
        yield dict(root=root, src=src, before=before, summary=summary, kwargs=kwargs, mp=mp)


def test_splits_are_disjoint_by_track(prepared):
    summary = prepared["summary"]
    assert summary.total_tracks == len(GOOD)
    paths = {split: [e["path"] for e in mf.read_manifest(summary.manifests[split])] for split in mf.SPLITS}
    assert all(len(p) >= 1 for p in paths.values())
    everything = [p for ps in paths.values() for p in ps]
    assert len(everything) == len(set(everything)) == len(GOOD)
    kept = sorted(Path(p).relative_to(summary.audio_root).as_posix() for p in everything)
    assert kept == sorted(g + ".flac" for g in GOOD)
    assert {split: len(p) for split, p in paths.items()} == summary.tracks
    assert summary.tracks["train"] == len(GOOD) - 3


def test_manifests_load_with_audiocraft(prepared):
    from audiocraft.data.audio_dataset import AudioDataset
    from audiocraft.data.info_audio_dataset import InfoAudioDataset
    summary = prepared["summary"]
    for split in mf.SPLITS:
        folder = summary.manifests[split].parent
        for entry in mf.read_manifest(summary.manifests[split]):
            assert os.path.isabs(entry["path"]) and entry["sample_rate"] == SR
            info = sf.info(entry["path"])
            assert info.samplerate == SR and info.channels == 1
            assert abs(info.frames / SR - entry["duration"]) < 1e-3 and entry["duration"] >= MIN_DURATION
        dataset = AudioDataset.from_meta(folder, segment_duration=1.0, sample_rate=SR, channels=1, num_samples=4)
        wav = dataset[0]
        assert wav.shape == (1, SR) and wav.abs().max() > 0.01
        info_dataset = InfoAudioDataset.from_meta(folder, segment_duration=1.0, sample_rate=SR, channels=1,
                                                  num_samples=2, return_info=True)
        wav, info = info_dataset[1]
        assert wav.shape == (1, SR) and info.sample_rate == SR


def test_bad_files_and_duplicates_reported(prepared):
    summary = prepared["summary"]
    reasons = {Path(s.path).name: s.reason for s in summary.skipped}
    assert set(reasons) == {"broken.wav", "empty.flac", "silence.wav", "short.wav"}
    assert reasons["broken.wav"].startswith("unreadable")
    assert reasons["empty.flac"].startswith("empty")
    assert reasons["silence.wav"].startswith("silent")
    assert reasons["short.wav"].startswith("too short")
    dups = {Path(d.path).name: (Path(d.duplicate_of).name, d.reason) for d in summary.duplicates}
    assert dups["track0 copy.flac"][0] == "track0.wav" and dups["track0 copy.flac"][1].startswith("same audio")
    assert dups["track1_same.wav"] == ("track1.wav", "identical file")
    assert len(dups) == 2
    record = json.loads((summary.egs_dir / "dataset.json").read_text())
    assert len(record["skipped"]) == 4 and len(record["duplicates"]) == 2
    assert "broken.wav" in summary.format() and "track0 copy.flac" in summary.format()


def test_source_untouched(prepared):
    assert snapshot(prepared["src"]) == prepared["before"]


def test_idempotent(prepared):
    summary = prepared["summary"]
    outputs = [summary.audio_root, summary.egs_dir]
    before = {str(folder): snapshot(folder) for folder in outputs}
    again = prepare_dataset(**prepared["kwargs"])
    assert again.converted == 0 and again.reused == len(GOOD) + 4 + 1  # + the converted copy
    assert {str(folder): snapshot(folder) for folder in outputs} == before
    assert again.tracks == summary.tracks
    assert [(s.path, s.reason) for s in again.skipped] == [(s.path, s.reason) for s in summary.skipped]
    assert snapshot(prepared["src"]) == prepared["before"]


def test_ensure_dataset_returns_when_ready(prepared):
    kwargs = {k: v for k, v in prepared["kwargs"].items() if k != "workers"}
    ready, why = check_dataset(**kwargs)
    assert ready is not None, why
    summary = ensure_dataset(**kwargs)
    assert not summary.prepared and summary.tracks == prepared["summary"].tracks
    # Another seed is another dataset: prepared again (reusing the converted audio).
    _, why = check_dataset(**{**kwargs, "seed": 4})
    assert "seed" in why


def test_ensure_dataset_other_rate(prepared, tmp_path):
    kwargs = {**prepared["kwargs"], "name": "mine8k", "sample_rate": 8000, "egs_root": tmp_path / "egs"}
    summary = ensure_dataset(**kwargs)
    assert summary.prepared and summary.total_tracks == len(GOOD)
    entry = mf.read_manifest(summary.manifests["train"])[0]
    assert entry["sample_rate"] == 8000 and sf.info(entry["path"]).samplerate == 8000
    assert not ensure_dataset(**kwargs).prepared


def test_refuses_foreign_manifest_and_audio_root(prepared, tmp_path):
    kwargs = {**prepared["kwargs"], "egs_root": tmp_path / "egs"}
    foreign = tmp_path / "egs" / "mine" / "valid" / "data.jsonl"
    foreign.parent.mkdir(parents=True)
    foreign.write_text('{"path": "/mine.wav", "duration": 10, "sample_rate": 16000}\n')
    with pytest.raises(DatasetError, match="not written by prepare_data"):
        prepare_dataset(**kwargs)
    assert foreign.read_text().startswith('{"path": "/mine.wav"')
    user_dir = tmp_path / "user_files"
    user_dir.mkdir()
    (user_dir / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not written by prepare_data"):
        prepare_dataset(**{**kwargs, "name": "other", "audio_root": user_dir})
    with pytest.raises(DatasetError, match="overlap"):
        prepare_dataset(**{**kwargs, "name": "other", "audio_root": prepared["src"] / "converted"})
    assert (user_dir / "keep.txt").read_text() == "mine" and len(list(user_dir.iterdir())) == 1


def test_no_usable_file_names_the_folder(prepared, tmp_path):
    bad = tmp_path / "bad folder"
    bad.mkdir()
    (bad / "x.wav").write_bytes(b"RIFF garbage")
    (bad / "y.mp3").write_bytes(b"")
    sf.write(bad / "z.flac", np.zeros(3 * SR, dtype=np.float32), SR)
    with pytest.raises(NoUsableAudioError, match="bad folder") as info:
        prepare_dataset(bad, "bad", SR, 1, egs_root=tmp_path / "egs", min_duration=MIN_DURATION, workers=1)
    assert "x.wav" in str(info.value) and "silent" in str(info.value)
    empty = tmp_path / "nothing here"
    empty.mkdir()
    (empty / "readme.txt").write_text("hi")
    with pytest.raises(NoUsableAudioError, match="nothing here"):
        prepare_dataset(empty, "none", SR, 1, egs_root=tmp_path / "egs", workers=1)
    with pytest.raises(DatasetError, match="does not exist"):
        prepare_dataset(tmp_path / "missing", "none", SR, 1, egs_root=tmp_path / "egs")
    assert not (tmp_path / "egs").exists()


def test_too_few_tracks(prepared, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    for i in range(3):
        sf.write(small / f"{i}.wav", music(10 + i, 2.5, SR), SR)
    with pytest.raises(NoUsableAudioError, match="at least 4"):
        prepare_dataset(small, "small", SR, 1, egs_root=tmp_path / "egs", min_duration=MIN_DURATION, workers=1)


def test_cli_with_process_pool(prepared, tmp_path, capsys):
    src = tmp_path / "cli"
    shutil.copytree(prepared["src"] / "a", src / "a")
    shutil.copytree(prepared["src"] / "b", src / "b")
    code = prepare_data.main(["--source", str(src), "--egs", str(tmp_path / "egs"), "--sample-rate", "8000",
                              "--channels", "2", "--min-duration", "2", "--workers", "2", "--seed", "1"])
    out = capsys.readouterr().out
    assert code == 0 and "4 tracks" in out and "datasource.train=" in out
    manifest = tmp_path / "egs" / "cli_8k_stereo" / "train" / "data.jsonl"
    entry = mf.read_manifest(manifest)[0]
    assert sf.info(entry["path"]).channels == 2
    code = prepare_data.main(["--source", str(tmp_path / "nope"), "--egs", str(tmp_path / "egs")])
    assert code == 1 and "nope" in capsys.readouterr().err


def test_cli_help():
    proc = subprocess.run([sys.executable, "-m", "audiocraft_mmd.prepare_data", "--help"],
                          capture_output=True, text=True, check=True)
    for option in ["--source", "--name", "--sample-rate", "--channels", "--egs", "--audio-root", "--seed",
                   "--min-duration"]:
        assert option in proc.stdout


def test_split_assignment():
    fractions = mf.normalize_fractions(None)
    assert mf.split_counts(4, fractions) == {"train": 1, "valid": 1, "evaluate": 1, "generate": 1}
    assert mf.split_counts(115, fractions) == {"train": 92, "valid": 9, "evaluate": 9, "generate": 5}
    with pytest.raises(mf.SplitError):
        mf.split_counts(3, fractions)
    ids = [f"track{i}" for i in range(50)]
    a = mf.assign_splits(ids, 0, fractions)
    assert a == mf.assign_splits(ids, 0, fractions) and a != mf.assign_splits(ids, 1, fractions)
    assert sorted(i for v in a.values() for i in v) == list(range(50))
    # Adding a track moves few others to another split.
    new_ids = ids + ["new"]
    b = mf.assign_splits(new_ids, 0, fractions)
    where_a = {ids[i]: split for split, v in a.items() for i in v}
    where_b = {new_ids[i]: split for split, v in b.items() for i in v}
    assert sum(where_a[t] != where_b[t] for t in ids) <= 3


def test_fingerprint_matches_copies_not_different_tracks():
    a = music(0, 20.0, SR)[:, 0]
    fa = compute_fingerprint(a, SR)
    # Same audio: quieter, offset by 0.3 s of silence, slightly noisy.
    shifted = np.concatenate([np.zeros(int(0.3 * SR), np.float32), 0.5 * a])
    shifted += 1e-3 * np.random.default_rng(1).standard_normal(shifted.size).astype(np.float32)
    assert similarity(fa, Fingerprint.decode(compute_fingerprint(shifted, SR).encode())) > 0.95
    assert similarity(fa, compute_fingerprint(music(1, 20.0, SR)[:, 0], SR)) is None
    rng = np.random.default_rng(2)
    n1, n2 = (rng.standard_normal(20 * SR).astype(np.float32) * 0.1 for _ in range(2))
    assert similarity(compute_fingerprint(n1, SR), compute_fingerprint(n2, SR)) is None
    t = np.arange(20 * SR) / SR
    s1, s2 = (np.sin(2 * np.pi * f * t).astype(np.float32) for f in (220, 1000))
    assert similarity(compute_fingerprint(s1, SR), compute_fingerprint(s2, SR)) is None
    assert similarity(compute_fingerprint(s1, SR), compute_fingerprint(0.3 * s1, SR)) is not None
    fps = [fa, compute_fingerprint(music(1, 20.0, SR)[:, 0], SR), compute_fingerprint(shifted, SR)]
    assert [(i, k) for i, k, _ in find_duplicates(fps)] == [(2, 0)]


def test_debian_package_lookup(monkeypatch):
    """The Wesnoth music package is looked up (Debian 13 ships another branch than Debian 12)."""
    available = {"wesnoth-1.18-music": "1:1.18.4-1", "wesnoth-1.18-data": "1:1.18.4-1"}

    def fake_run(cmd, cwd=None, check=True):
        out = ""
        if cmd[:2] == ["apt-cache", "pkgnames"]:
            out = "\n".join(["wesnoth-1.18-music", "wesnoth-1.18-data", "wesnoth-music", "wesnoth-1.16-music"])
        elif cmd[:2] == ["apt-cache", "policy"]:
            version = available.get(cmd[2])
            out = f"{cmd[2]}:\n  Installed: (none)\n  Candidate: {version or '(none)'}\n"
        elif cmd[:2] == ["apt-cache", "depends"]:
            out = "wesnoth-music\n  Depends: wesnoth-1.18-music\n  Depends: wesnoth-1.18-data\n"
        return subprocess.CompletedProcess(cmd, 0 if cmd[0] == "apt-cache" else 1, out, "")

    monkeypatch.setattr(debian_music, "_run", fake_run)
    assert debian_music.find_wesnoth_music() == "wesnoth-1.18-music"
    assert debian_music.candidate_version("ufoai-music") is None
    # No package index and not root: a clear error (root would run apt-get update once).
    monkeypatch.setattr(debian_music.os, "geteuid", lambda: 1000)
    with pytest.raises(debian_music.DebianUnavailableError, match="apt-get update"):
        debian_music._ensure_package_index()
    monkeypatch.setattr(debian_music.shutil, "which", lambda tool: None)
    with pytest.raises(debian_music.DebianUnavailableError, match="--source"):
        debian_music.fetch_debian_music(Path("/nonexistent"))


@pytest.mark.slow
def test_real_debian_music(tmp_path):
    """The real default set (downloads about 450 MB with apt the first time)."""
    summary = prepare_dataset("debian_music", "debian_music_test", 16000, 1, egs_root=tmp_path / "egs",
                              audio_root=tmp_path / "audio")
    assert summary.total_tracks > 100 and summary.total_hours > 8
