"""``python -m audiocraft_mmd.plot``: curves of one or several XPs from their history.json; clear errors."""

import json
from pathlib import Path

import numpy as np
import pytest

from audiocraft_mmd import plot


def write_xp(folder: Path, argv, epochs: int = 4, offset: float = 0.) -> Path:
    """An XP folder whose history has the keys a codec XP logs (train / valid every epoch, evaluate every 2)."""
    folder.mkdir(parents=True)
    history = []
    for epoch in range(1, epochs + 1):
        codebooks = {f"usage_q{k}": 0.5 + 0.1 * k + offset for k in range(4)}
        entry = {"train": {"mmd": 1. / epoch + offset, "mmd_grad_ratio": 2. * epoch, "mel": 1.2 - 0.05 * epoch,
                           "sisnr": -30. + epoch, **codebooks},
                 "valid": {"mel": 1.25 - 0.04 * epoch + offset, "mmd": 1.1 / epoch, **codebooks}}
        if epoch % 2 == 0:
            entry["evaluate"] = {"sisnr": -29. + epoch, "mi_parallel": 1. - 0.1 * epoch + offset,
                                 "mi_delay": 0.5 - 0.05 * epoch, "entropy_q0": 2. + 0.1 * epoch,
                                 "entropy_mean": 2.5, "mmd_estimate": 0.01}
        history.append(entry)
    (folder / "history.json").write_text(json.dumps(history))
    (folder / ".argv.json").write_text(json.dumps(argv))
    return folder


def pixel_variance(path: Path) -> float:
    import matplotlib.image
    return float(np.var(matplotlib.image.imread(str(path))[..., :3]))


def test_two_xps_are_overlaid_one_png_per_group(tmp_path, capsys):
    a = write_xp(tmp_path / "xps" / "aaaa1111", ["solver=compression/mmd", "mmd.weight=0", "num_threads=1"])
    b = write_xp(tmp_path / "xps" / "bbbb2222", ["solver=compression/mmd", "mmd.weight=10"], offset=0.2)
    assert plot.main(["--xp", str(a), "--xp", str(b), "--out", str(tmp_path / "out")]) == 0
    written = sorted(Path(line).name for line in capsys.readouterr().out.split())
    assert written == ["codebooks.png", "dependence.png", "loss.png", "reconstruction.png"]  # no LM metric: no lm.png
    for name in written:
        assert pixel_variance(tmp_path / "out" / name) > 1e-3, name  # not a blank image
    assert plot.xp_labels([a, b]) == ["aaaa1111 mmd.weight=0", "bbbb2222 mmd.weight=10"]
    assert plot.group_metrics(["usage_q1", "usage_q0", "entropy_mean", "mmd"], plot.GROUPS["codebooks"]) == \
        ["usage_q0", "usage_q1", "entropy_mean"]


def test_a_signature_resolves_in_dora_s_folder_and_defaults_to_the_xp_s_curves(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AUDIOCRAFT_DORA_DIR", str(tmp_path))
    folder = write_xp(tmp_path / "xps" / "cccc3333", ["solver=musicgen/mmd"])
    assert plot.main(["--xp", "cccc3333"]) == 0
    assert (folder / "curves" / "loss.png").exists()
    assert plot.main(["--xp", "dddd4444"]) == 2
    assert f"no XP dddd4444: {tmp_path / 'xps' / 'dddd4444'} does not exist" in capsys.readouterr().err


def test_missing_or_empty_history_names_the_file(tmp_path, capsys):
    folder = tmp_path / "xps" / "eeee5555"
    folder.mkdir(parents=True)
    assert plot.main(["--xp", str(folder), "--out", str(tmp_path / "out")]) == 2
    assert f"{folder / 'history.json'} does not exist" in capsys.readouterr().err
    (folder / "history.json").write_text("[]")
    assert plot.main(["--xp", str(folder), "--out", str(tmp_path / "out")]) == 2
    assert f"{folder / 'history.json'} holds no epoch (empty history)" in capsys.readouterr().err
    (folder / "history.json").write_text("[{\"train\": ")
    with pytest.raises(plot.PlotError, match="history.json is not valid JSON"):
        plot.plot_curves([folder], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written on an error
