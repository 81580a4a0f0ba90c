"""`python -m audiocraft_mmd.codec_quality`: a codec against Opus on the same clips, per band; bad inputs."""

import json

import pytest
import torch

from common_utils import build_checkpoint, unavailable

from audiocraft_mmd.codec_quality import main, markdown
from audiocraft_mmd.metrics import opus


@pytest.fixture(scope="module")
def codec(tmp_path_factory):
    return build_checkpoint(tmp_path_factory.mktemp("codec") / "codec.th", 4)



def test_a_codec_and_opus_on_the_same_clips(codec, tiny_egs, tmp_path):
    try:
        opus.ffmpeg_binary()
        multiples, missing = "1,2", ""
    except opus.OpusUnavailable as error:
        multiples, missing = "", f"the codec's rows only, no Opus round trip here: {error}"
    out = tmp_path / "report"
    assert main(["--codec", str(codec), "--data", str(tiny_egs / "evaluate"), "--clips", "3", "--seconds", "1",
                 "--opus", multiples, "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["clips"] == 3 and report["sample_rate"] == 16000 and report["frame_rate"] == 50
    bands = [f"{lo:g}-{hi:g}" for lo, hi in report["bands"]]
    assert bands == ["0-250", "250-1000", "1000-2000", "2000-4000", "4000-8000"]
    codec_row = report["systems"][0]
    assert codec_row["kind"] == "codec" and codec_row["kbps"] == pytest.approx(50 * 4 * 8 / 1000)
    assert list(codec_row["lsd_db"]) == bands and list(codec_row["snr_db"]) == bands
    assert len(codec_row["entropy_bits"]) == 4 and all(0 <= h <= 8 for h in codec_row["entropy_bits"])
    if multiples:  # Opus asked for 1x and 2x the codec's nominal rate; what it spent is measured
        assert [row["nominal_kbps"] for row in report["systems"][1:]] == pytest.approx([1.6, 3.2])
        assert all(row["payload_kbps"] > 0 and row["file_kbps"] > row["payload_kbps"] for row in report["systems"][1:])
    table = (out / "report.md").read_text()
    assert table == markdown(report) and table.count("\n| ") == len(report["systems"]) + 2  # header, rule, rows
    if missing:  # the Opus rows went unchecked: say so (a failure under CI=true), not a silent pass
        unavailable(missing)


def test_refuses_to_overwrite_and_names_bad_inputs(codec, tiny_egs, tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.json").write_text("{}")
    args = ["--data", str(tiny_egs / "evaluate"), "--clips", "1", "--seconds", "1", "--opus", ""]
    assert main(["--codec", str(codec), *args, "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and (out / "report.json").read_text() == "{}"
    assert main(["--codec", str(tmp_path / "missing.th"), *args, "--out", str(tmp_path / "a")]) == 2
    assert "unknown checkpoint" in capsys.readouterr().err
    assert main(["--codec", str(codec), *args[:-1], "1,x", "--out", str(tmp_path / "b")]) == 2
    assert "--opus must be comma-separated" in capsys.readouterr().err
    other = build_checkpoint(tmp_path / "codec_8k.th", 4, sample_rate=8000)
    assert main(["--codec", str(codec), "--codec", str(other), *args, "--out", str(tmp_path / "c")]) == 2
    assert "share a sample rate" in capsys.readouterr().err
    assert main(["--codec", str(codec), "--data", str(tiny_egs / "evaluate"), "--seconds", "60",
                 "--out", str(tmp_path / "d")]) == 2
    assert "lasts 60" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in "abcd")


def test_paired_figures_pair_files_by_name(tmp_path):
    import soundfile as sf
    from audiocraft_mmd.metrics.codec_quality import paired_figures
    g = torch.Generator().manual_seed(0)
    for folder in ("reference", "candidate"):
        (tmp_path / folder).mkdir()
    for name in ("a", "b"):
        wav = 0.3 * torch.randn(8000, generator=g)
        sf.write(tmp_path / "reference" / f"{name}.wav", wav.numpy(), 8000)
        sf.write(tmp_path / "candidate" / f"{name}.wav", (wav + 0.03 * torch.randn(8000, generator=g)).numpy(), 8000)
    references = sorted((tmp_path / "reference").glob("*.wav"))
    candidates = sorted((tmp_path / "candidate").glob("*.wav"))
    figures = paired_figures(references, candidates, 100.)
    assert figures["pairs"] == 2 and figures["si_snr_db"] == pytest.approx(20, abs=0.5)
    assert list(figures["snr_db"]) == ["0-250", "250-1000", "1000-2000", "2000-4000"]  # every band up to 4 kHz
    assert all(value == pytest.approx(20, abs=1.5) for value in figures["snr_db"].values())  # white noise, 20 dB
    assert paired_figures(references, candidates[:1], 100.) is None  # not one to one: no pairs
