"""Bad manifests and bad audio stop a run at start-up with the split and the files named."""

import json
from pathlib import Path
import shutil

import numpy as np
import pytest
import soundfile as sf

from audiocraft_mmd import train
from audiocraft_mmd.data.check import check_datasource, check_split
from audiocraft_mmd.errors import ConfigError, DataError

from common_utils import TINY_RUN, datasource, dora, write_tones


def write_manifest(folder: Path, paths, durations=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"path": str(p), "duration": d, "sample_rate": 16000})
             for p, d in zip(paths, durations or [6.0] * len(paths))]
    (folder / "data.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_good_manifest_passes(tmp_path):
    paths = write_tones(tmp_path / "audio", num_files=3, duration=2.0, seed=0)
    check = check_split("train", write_manifest(tmp_path / "egs", paths, [2.0] * 3), min_duration=0.5)
    assert check.num_files == 3 and not check.problems and not check.too_short


@pytest.mark.parametrize("make_bad, problem", [
    (lambda p: p.unlink(), "missing"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_bytes(b"RIFF\x00\x00 not really a wave file" * 20), "unreadable"),
])
def test_bad_file_is_named(tmp_path, make_bad, problem):
    paths = write_tones(tmp_path / "audio", num_files=3, duration=2.0, seed=0)
    make_bad(paths[1])
    with pytest.raises(DataError, match=rf"(?s)datasource\.valid: 1 of the 3 files.*{paths[1].name}: {problem}"):
        check_split("valid", write_manifest(tmp_path / "egs", paths))


def test_empty_missing_and_malformed_manifests(tmp_path):
    with pytest.raises(DataError, match="no manifest"):
        check_split("train", tmp_path / "nowhere")
    with pytest.raises(DataError, match="lists no audio file"):
        check_split("train", write_manifest(tmp_path / "empty", []))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "data.jsonl").write_text('{"path": "a.wav", "duration": 1}\n{"path": "b.wav"\n')
    with pytest.raises(DataError, match="line 2 .* not JSON"):
        check_split("train", tmp_path / "bad")


def test_all_files_too_short_is_an_error_some_is_a_warning(tmp_path, caplog):
    paths = write_tones(tmp_path / "audio", num_files=2, duration=0.2, seed=0)
    with pytest.raises(DataError, match="shorter than 0.5 s"):
        check_split("train", write_manifest(tmp_path / "short", paths, [0.2, 0.2]), min_duration=0.5)
    long = write_tones(tmp_path / "long", num_files=1, duration=2.0, seed=1)
    check = check_split("train", write_manifest(tmp_path / "mixed", [*paths, *long], [0.2, 0.2, 2.0]),
                        min_duration=0.5)
    assert check.too_short == [str(p) for p in paths]
    assert "will be skipped" in caplog.text


def test_silent_and_odd_format_files(tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    stereo_44k = tmp_path / "stereo.wav"  # another rate and channel count: AudioCraft converts it
    sf.write(stereo_44k, 0.1 * np.random.default_rng(0).standard_normal((44100, 2)).astype(np.float32), 44100)
    folder = tmp_path / "egs"
    folder.mkdir()
    (folder / "data.jsonl").write_text(
        json.dumps({"path": str(silent), "duration": 1.0, "sample_rate": 16000, "amplitude": 0}) + "\n"
        + json.dumps({"path": str(stereo_44k), "duration": 1.0, "sample_rate": 44100}) + "\n")
    with pytest.raises(DataError, match="silent.wav: silent") as error:
        check_split("train", folder)
    assert "stereo.wav" not in str(error.value)


def test_dora_run_stops_at_start_naming_the_corrupt_file(tiny_egs, tmp_path):
    egs = tmp_path / "egs"
    shutil.copytree(tiny_egs, egs)
    (entry, *_) = [json.loads(line) for line in (egs / "train" / "data.jsonl").read_text().splitlines()]
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"\x00\x01garbage" * 100)
    manifest = egs / "train" / "data.jsonl"
    manifest.write_text(manifest.read_text() + json.dumps({**entry, "path": str(corrupt)}) + "\n")
    run = dora(["run", "solver=compression/mmd", *TINY_RUN, *datasource(egs)], tmp_path / "dora", timeout=300)
    assert run.returncode != 0
    assert "DataError" in run.stderr and "corrupt.wav: unreadable" in run.stderr, run.stderr[-3000:]
    assert "Train |" not in run.stderr


@pytest.mark.parametrize("key, value", [("sample_rate", 32000), ("channels", 2)])
def test_model_above_the_data_is_a_config_error(tiny_egs, key, value):
    cfg = train.main.get_xp(["solver=compression/mmd", *datasource(tiny_egs)]).cfg
    check_datasource(cfg)
    cfg[key] = value
    with pytest.raises(ConfigError, match=rf"{key}={value} is above datasource\.max_{key}"):
        check_datasource(cfg)
