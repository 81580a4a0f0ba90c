"""The XPs' source: ``study report`` stores the figures of the finished XPs it finds (here, smoke-study XPs
made by hand, their measurements already cached), and the stored files alone rebuild the same report."""

import json

from audiocraft_mmd.study import specs
from audiocraft_mmd.study.__main__ import main

from common_utils import dependence_report

SCALE = specs.SMOKE
SEED = SCALE.seeds[0]
CODECS = {SCALE.baseline(SEED): (5.25, 0.4), specs.CodecSpec(10., "delay", "dim", SEED): (4.75, 0.3)}


def finished(xp, history, checkpoint=None):
    """Makes ``xp`` look finished: its history for every epoch, and a checkpoint (with the XP config, which
    an LM's overrides read from its codec)."""
    import torch
    from omegaconf import OmegaConf
    xp.folder.mkdir(parents=True)
    (xp.folder / "history.json").write_text(json.dumps([history] * int(xp.cfg.optim.epochs)))
    torch.save(checkpoint or {"xp.cfg": OmegaConf.to_yaml(xp.cfg)}, xp.folder / "checkpoint.th")


def smoke_xps():
    """The smoke study's codecs and LMs, finished, with the dependence reports and generation figures that
    ``study report`` caches in their folders; returns the codecs' signatures."""
    from audiocraft_mmd.study.results import DEPENDENCE_FOLDER, LAGGED_FOLDER, LM_MEASURES
    sigs = {}
    for spec, (si_snr, mi) in CODECS.items():
        xp = specs.codec_xp(SCALE, spec)
        evaluate = {"si_snr_db": si_snr, "mel_distance": 1.25, "entropy_mean": 7., "mi_delay": mi,
                    "nmi_delay": mi / 7., "mmd_estimate": 0.5, "duration": 30.}
        finished(xp, {"train": {"duration": 90.}, "evaluate": evaluate})
        for folder, lags in ((DEPENDENCE_FOLDER, ()), (LAGGED_FOLDER, SCALE.lags)):
            (xp.folder / folder).mkdir()
            (xp.folder / folder / "report.json").write_text(json.dumps({"codecs": [dependence_report(mi, 7., lags)]}))
        sigs[spec] = xp.sig
    for spec, codec_sig in sigs.items():
        for pattern in SCALE.patterns:
            lm = specs.lm_xp(SCALE, codec_sig, pattern, SEED)
            ce = [3.0, 4.5, 4.5, 4.5] if pattern == "depth" else [3.0, 5.0, 5.0, 5.0]
            finished(lm, {"valid": {"ce": sum(ce) / 4, **{f"ce_q{k + 1}": v for k, v in enumerate(ce)},
                                    "duration": 20.}}, checkpoint={})
            cell = {"valid_ce": sum(ce) / 4, "valid_ce_per_codebook": ce, "steps_per_second": 100.,
                    "temporal_steps_per_second": 100., "depth_steps_per_second": 0., "gen_seconds": 1.5,
                    "rtf": 0.75, "kernel_distance": None}
            (lm.folder / LM_MEASURES).write_text(json.dumps(cell))
    return sigs


def test_report_stores_the_xps_figures_and_rebuilds_from_them_alone(grid_dora_dir, tmp_path, monkeypatch):
    sigs = smoke_xps()
    out = tmp_path / "docs" / "RESULTS.md"
    command = ["report", "--scale", "smoke", "--out", str(out), "--discussion", str(tmp_path / "none.md")]
    assert main(command) == 0
    report = out.read_text()
    assert "Incomplete" not in report and f"| baseline seed=2036 | {sigs[SCALE.baseline(SEED)]} | 5.25 |" in report
    stored = {path.stem: json.loads(path.read_text()) for path in (out.parent / "measurements").glob("*.json")}
    assert len(stored) == 2 + 4  # the two codecs, their four LMs
    codec = stored[sigs[SCALE.baseline(SEED)]]
    assert codec["kind"] == "codec" and codec["evaluate"]["si_snr_db"] == 5.25 and codec["minutes"] == 2.
    assert sorted(codec["dependence"]) == ["study_dependence", "study_lagged"]
    assert codec["provenance"]["command"] == "python -m audiocraft_mmd.study " + " ".join(command)
    lms = [record for record in stored.values() if record["kind"] == "lm"]
    assert all(lm["generation"]["rtf"] == 0.75 and lm["validation"]["valid_ce_per_codebook"][0] == 3.0 for lm in lms)

    texts = {path: path.read_text() for path in (out.parent / "measurements").glob("*.json")}
    assert main(command) == 0  # nothing new measured: no file rewritten, the same report
    assert {path: path.read_text() for path in texts} == texts and out.read_text() == report

    monkeypatch.setattr("audiocraft_mmd.train.main.dora.dir", tmp_path / "no_xps")
    rebuilt = tmp_path / "rebuilt" / "RESULTS.md"
    assert main([*command[:-4], "--from-measurements", "--measurements", str(out.parent / "measurements"),
                 "--out", str(rebuilt), "--discussion", str(tmp_path / "none.md")]) == 0
    assert rebuilt.read_text() == report


def test_independence_tables_from_the_xps_are_those_from_their_stored_figures(grid_dora_dir, tmp_path, monkeypatch):
    from audiocraft_mmd import train
    from audiocraft_mmd.study import independence
    from audiocraft_mmd.study.independence_specs import BASELINE, SCHEDULE, experiment_xp, experiments, lm_argv
    from audiocraft_mmd.study.results import DEPENDENCE_FOLDER
    seed = specs.SMALL.seeds[0]
    table = experiments(seed)
    sigs = {}
    for label, (si_snr, mi) in ((BASELINE, (5.25, 0.4)), (SCHEDULE, (4.75, 0.2))):
        xp = experiment_xp(table[label][0])
        evaluate = {"si_snr_db": si_snr, "entropy_mean": 7., "entropy_min": 6.5, "mi_fast_delay": mi / 2,
                    "duration": 30.}
        finished(xp, {"train": {"duration": 90.}, "evaluate": evaluate})
        (xp.folder / DEPENDENCE_FOLDER).mkdir()
        (xp.folder / DEPENDENCE_FOLDER / "report.json").write_text(
            json.dumps({"codecs": [dependence_report(mi, 7.)]}))
        sigs[label] = xp.sig
    for label, sig in sigs.items():
        for name in ("parallel", "depth"):
            ce = [3.0, 4.5, 4.5, 4.5] if name == "depth" else [3.0, 5.0, 5.0, 5.0]
            finished(train.main.get_xp(lm_argv(sig, name, seed)), {"valid": {
                "ce": sum(ce) / 4, **{f"ce_q{k + 1}": v for k, v in enumerate(ce)}, "duration": 20.}}, checkpoint={})
    measurements = tmp_path / "measurements"
    command = ["--measure", "--lms", "--measurements", str(measurements)]
    from_xps, from_files = tmp_path / "xps.md", tmp_path / "files.md"
    assert independence.main([*command, "--out", str(from_xps)]) == 0
    text = from_xps.read_text()
    assert f"| {seed} | {SCHEDULE} | {sigs[SCHEDULE]} | 4.75 |" in text
    assert f"| {seed} | {SCHEDULE} | parallel |" in text
    assert len(list(measurements.glob("*.json"))) == 2 + 4  # the two codecs, their parallel and depth LMs
    monkeypatch.setattr("audiocraft_mmd.train.main.dora.dir", tmp_path / "no_xps")
    assert independence.main([*command, "--from-measurements", "--out", str(from_files)]) == 0
    unfinished_with_their_signature = [line for line in text.splitlines() if "| not finished |" in line]
    # Without the XPs an unfinished codec's signature is unknown: the rest is the same.
    assert from_files.read_text() == "\n".join(
        " | ".join([*line.split(" | ")[:2], "-", *line.split(" | ")[3:]]) if line in unfinished_with_their_signature
        else line for line in text.split("\n"))
