"""python -m audiocraft_mmd.migrate_depth_xps: depth-LM XPs move to the signature of the config they trained with."""

import json

import pytest

from audiocraft_mmd import migrate_depth_xps
from audiocraft_mmd.train import main

BASE = ["solver=musicgen/study", "compression_model_checkpoint=//sig/feedf00d", "codebooks_pattern.modeling=depth"]
OLD_DEFAULTS = ["codebooks_pattern.depth.context=first", "codebooks_pattern.depth.dim=64"]


def fake_xp(xps, name, argv, depth, trained=True):
    """An XP folder as Dora and Hydra leave it: its argv and, if it ran, the config it ran with."""
    folder = xps / name
    folder.mkdir(parents=True)
    (folder / ".argv.json").write_text(json.dumps(argv))
    if trained:
        (folder / ".hydra").mkdir()
        (folder / ".hydra" / "config.yaml").write_text(json.dumps(
            {"codebooks_pattern": {"modeling": "depth" if depth else "parallel", "depth": depth or {"dim": 128}}}))
        (folder / "history.json").write_text("[]")
    return folder


@pytest.fixture
def xps(tmp_path, monkeypatch):
    monkeypatch.setattr(main.dora, "dir", tmp_path)
    return tmp_path / "xps"


def test_old_and_new_defaults_swap_signatures(xps, capsys):
    plain = main.get_xp(BASE).sig  # today: context every, dim 128
    pinned_old = main.get_xp(BASE + OLD_DEFAULTS).sig
    # Trained with the old defaults under the plain signature (no context key then); trained with
    # context every, dim 128 set explicitly under a signature that no longer exists.
    fake_xp(xps, plain, BASE, {"num_layers": 1, "dim": 64})
    fake_xp(xps, "0ld5e7", BASE + ["codebooks_pattern.depth.context=every", "codebooks_pattern.depth.dim=128"],
            {"dim": 128, "context": "every"})
    fake_xp(xps, "a11e1a7e", BASE[:2] + ["codebooks_pattern.modeling=parallel"], None)  # not a depth LM
    fake_xp(xps, pinned_old, BASE + OLD_DEFAULTS, None, trained=False)  # a placeholder from `grid status`
    assert migrate_depth_xps.main([]) == 0
    assert "2 move(s)" in capsys.readouterr().out and (xps / "0ld5e7").exists()  # listing moves nothing
    assert migrate_depth_xps.main(["--apply"]) == 0
    old = json.loads((xps / pinned_old / ".argv.json").read_text())
    assert main.get_xp(old).sig == pinned_old and "codebooks_pattern.depth.context=first" in old
    assert (xps / pinned_old / "history.json").exists()  # the run, not the placeholder
    assert main.get_xp(json.loads((xps / plain / ".argv.json").read_text())).sig == plain
    assert "every" in (xps / plain / ".hydra" / "config.yaml").read_text()
    assert sorted(p.name for p in xps.iterdir()) == sorted([plain, pinned_old, "a11e1a7e"])
    assert migrate_depth_xps.main([]) == 0
    assert "Every depth-LM XP" in capsys.readouterr().out


def test_a_move_onto_another_run_is_refused_before_anything_moves(xps, capsys):
    plain = main.get_xp(BASE).sig
    fake_xp(xps, plain, BASE, {"dim": 128, "context": "every"})  # already right
    fake_xp(xps, "0ld5e7", BASE, {"dim": 128, "context": "every"})  # the same config under another name
    assert migrate_depth_xps.main(["--apply"]) == 1
    error = capsys.readouterr().err
    assert "0ld5e7" in error and plain in error and "nothing was moved" in error
    assert (xps / "0ld5e7").exists() and (xps / plain).exists()
