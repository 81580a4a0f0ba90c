"""The reproduction study: its grids, the best-codec selection, the target checks, and the whole pipeline
(``python -m audiocraft_mmd.study run --scale smoke``) on tiny data."""

import json
import os
import subprocess
import sys

import pytest

from audiocraft_mmd import grid as grid_command
from audiocraft_mmd.study import results, specs
from audiocraft_mmd.solvers.compression_mmd import validate_mmd_config

from common_utils import REPO, slurm_requests


def test_codec_grid_is_the_designed_sweep(grid_dora_dir):
    sheeps = grid_command.grid_sheeps("study_codecs")
    cfgs = [sheep.xp.cfg for sheep in sheeps]
    assert len({sheep.xp.sig for sheep in sheeps}) == len(sheeps) == 10
    assert sorted(cfg.seed for cfg in cfgs if cfg.mmd.weight == 0) == [2036, 2037]
    cells = {(cfg.mmd.alignment, cfg.mmd.weight, cfg.mmd.bandwidth_scale) for cfg in cfgs if cfg.mmd.weight > 0}
    assert cells == {(a, w, b) for a in ("parallel", "delay") for w in (1., 10.) for b in ("dim", "median")}
    requests = slurm_requests("study_codecs")
    for sheep in sheeps:
        cfg = sheep.xp.cfg
        assert cfg.sample_rate == 8000 and cfg.optim.epochs * cfg.optim.updates_per_epoch == 500
        assert cfg.seed == 2036 or cfg.mmd.weight == 0  # the sweep runs at the first seed
        assert "reconstruction" in cfg.evaluate.plugins and "dependence" in cfg.evaluate.plugins
        assert requests[sheep.xp.sig].gpus == 0
        validate_mmd_config(cfg)


def test_paper_scale_codec_grid_uses_the_paper_recipe(grid_dora_dir):
    cfgs = [sheep.xp.cfg for sheep in grid_command.grid_sheeps("study_codecs_paper")]
    assert len(cfgs) == 2 + 2 * 2 * 2
    assert {cfg.sample_rate for cfg in cfgs} == {32000}
    assert 1000 * 47 ** 2 in {cfg.mmd.weight for cfg in cfgs}
    for cfg in cfgs:
        validate_mmd_config(cfg)


def test_probes_change_one_thing_each_and_share_stage_one_references(grid_dora_dir):
    sheeps = grid_command.grid_sheeps("study_probes")
    stage1 = {sheep.xp.sig for sheep in grid_command.grid_sheeps("study_codecs")}
    assert len(sheeps) == 9 and len([s for s in sheeps if s.xp.sig in stage1]) == 2  # baseline, λ = 10
    changed = {(s.xp.cfg.mmd.weight, s.xp.cfg.mmd.macro_batch, s.xp.cfg.mmd.source, s.xp.cfg.rvq.bins,
                s.xp.cfg.encodec.quantizer) for s in sheeps if s.xp.sig not in stage1}
    assert changed == {(100., 0, "quantized", 256, "rvq"), (10., 0, "residual", 256, "rvq"),
                       (10., 5, "quantized", 256, "rvq"),
                       (0., 0, "quantized", 64, "rvq"), (10., 0, "quantized", 64, "rvq"),
                       (0., 0, "quantized", 256, "grouped"), (10., 0, "quantized", 256, "grouped")}
    for sheep in sheeps:
        validate_mmd_config(sheep.xp.cfg)


@pytest.mark.parametrize("grid", ["study_lms", "study_lm_probes"])
def test_lm_grids_wait_for_stage_one(grid_dora_dir, grid):
    with pytest.raises(SystemExit, match="stage 1 has not finished.*study_codecs"):
        grid_command.grid_sheeps(grid)


def fake_evaluation(figures):
    """``select_best``'s ``evaluate`` from {(weight, alignment, bandwidth): (SI-SNR, entropy, MI, NMI)}."""
    def evaluate(spec):
        si_snr, entropy, mi, nmi = figures[spec.variant()]
        return {"si_snr_db": si_snr, "entropy_mean": entropy, "mi_delay": mi, "nmi_delay": nmi}
    return evaluate


def small_figures():
    """Every codec of the small study's first seed: the baseline, and MMD codecs that change nothing."""
    figures = {(0., "delay", "dim"): (5., 7.5, 0.4, 0.05)}
    for spec in specs.SMALL.stage1():
        if not spec.is_baseline:
            figures[spec.variant()] = (4.9, 7.5, 0.39, 0.05)
    return figures


def test_selection_takes_the_lowest_mi_among_codecs_that_pass_the_gates():
    best = (10., "parallel", "median")
    collapsed = (10., "delay", "dim")  # lower MI, but it lost a bit of entropy
    noisy = (1., "delay", "median")  # lower MI, but it lost 2 dB
    figures = small_figures()
    figures.update({best: (4.5, 7.4, 0.2, 0.03), collapsed: (5., 6.0, 0.05, 0.008), noisy: (3., 7.5, 0.1, 0.01)})
    selection = specs.select_best(specs.SMALL, fake_evaluation(figures))
    assert selection.best.variant() == best and selection.qualified
    assert selection.best.seed == specs.SMALL.seeds[0]
    assert {tuple(c["spec"].variant()) for c in selection.candidates if not c["qualified"]} == {collapsed, noisy}


def test_selection_without_a_qualified_codec_says_so_and_uses_normalised_mi():
    figures = {variant: (0., 7.5, mi, nmi) for variant, (_, _, mi, nmi) in small_figures().items()}
    figures[(0., "delay", "dim")] = (5., 7.5, 0.4, 0.05)
    figures[(1., "parallel", "dim")] = (0., 7.5, 0.39, 0.01)
    selection = specs.select_best(specs.SMALL, fake_evaluation(figures))
    assert not selection.qualified and "no codec within" in selection.reason
    assert selection.best.variant() == (1., "parallel", "dim")


def codec_result(weight, seed, si_snr, entropy, mi_delay):
    spec = specs.CodecSpec(weight, "delay", "dim", seed)
    return results.CodecResult(spec=spec, sig=f"s{weight}{seed}", si_snr_db=si_snr, mel_distance=1.,
                             entropy=[entropy] * 4, usage=[1.] * 4,
                             mi={"parallel": (mi_delay, mi_delay, mi_delay), "delay": (mi_delay, mi_delay, mi_delay)},
                             normalized_mi={"parallel": mi_delay / entropy, "delay": mi_delay / entropy},
                             frames=1000, minutes=1.)


def test_targets_are_computed_per_seed_and_judged_honestly():
    codecs = [codec_result(0., 1, 5., 7., 0.4), codec_result(10., 1, 4.8, 7., 0.1),
              codec_result(0., 2, 5., 7., 0.4), codec_result(10., 2, 3.0, 7., 0.3)]
    ce = {(0., 1, "parallel"): 5.0, (0., 1, "unroll"): 4.0, (10., 1, "parallel"): 4.5, (10., 1, "unroll"): 4.0,
          (0., 2, "parallel"): 5.0, (0., 2, "unroll"): 4.0, (10., 2, "parallel"): 4.9, (10., 2, "unroll"): 4.0}
    lms = [results.LMResult(codec=next(c.spec for c in codecs if (c.spec.weight, c.spec.seed) == (w, s)),
                          pattern=p, sig="lm", cell={"valid_ce": value}) for (w, s, p), value in ce.items()]
    selection = specs.Selection(best=codecs[1].spec, qualified=True, reason="", candidates=[])
    study_results = results.StudyResults("small", codecs, [], selection, lms, [])
    comparison = results.main_comparison(study_results)
    assert comparison["seeds"] == [1, 2]
    assert comparison["per_seed"][1]["mi_reduction_delay"] == pytest.approx(0.75)
    assert comparison["per_seed"][2]["sisnr_loss_db"] == pytest.approx(2.)
    assert comparison["per_seed"][1]["gap_closed_parallel"] == pytest.approx(0.5)
    assert comparison["per_seed"][2]["gap_closed_parallel"] == pytest.approx(0.1)
    lines = "\n".join(results.target_lines(comparison))
    assert "75.0%, 25.0% (per seed): **met at some seeds only**" in lines
    assert "SI-SNR loss ≤ 0.5 dB: 0.20, 2.00 (per seed): **met at some seeds only**" in lines
    assert "Delay LM closes ≥ 30% of its cross-entropy gap to unroll: not measured" in lines
    # When unroll does not beat parallel on the baseline's tokens there is no gap to close: said, not hidden.
    for row in comparison["per_seed"].values():
        row.update(gap_parallel_baseline=-0.1, gap_closed_parallel=float("nan"))
    lines = "\n".join(results.target_lines(comparison))
    assert "to unroll: undefined: on the baseline's tokens the unroll LM is not better than the parallel LM " \
           "(cross-entropy parallel − unroll: -0.100, -0.100 nats per seed)" in lines


def test_depth_gap_is_on_codebooks_2_to_k_and_closed_per_seed():
    codecs = [codec_result(0., 1, 5., 7., 0.4), codec_result(10., 1, 4.8, 7., 0.1)]
    per_codebook = {(0., "parallel"): [3.0, 5.0, 5.0, 5.0], (0., "depth"): [3.5, 4.0, 4.0, 4.0],
                    (10., "parallel"): [3.0, 4.8, 4.8, 4.8], (10., "depth"): [3.5, 4.4, 4.4, 4.4]}
    lms = [results.LMResult(codec=next(c.spec for c in codecs if c.spec.weight == w), pattern=p, sig="lm",
                          cell={"valid_ce": sum(v) / 4, "valid_ce_per_codebook": v})
           for (w, p), v in per_codebook.items()]
    row = results.gap_closure(lms)
    assert row["gap_parallel_depth_baseline"] == pytest.approx(1.0)  # codebook 1 left out (depth is worse there)
    assert row["gap_parallel_depth_mmd"] == pytest.approx(0.4)
    assert row["gap_closed_parallel_depth"] == pytest.approx(0.6)
    assert "gap_parallel_baseline" not in row and "gap_delay_depth_baseline" not in row  # no unroll, no delay LM
    lines = "\n".join(results.target_lines({"per_seed": {1: {"entropy_change_bits": 0., **row}}}))
    assert "Parallel LM closes ≥ 30% of its cross-entropy gap to depth (codebooks 2..K): 60.0% (per seed): " \
           "**met at every seed**" in lines
    assert "depth LM beats parallel (codebooks 2..K) by more than the seed spread: gap +1.000 nats" in lines
    assert "Delay LM closes ≥ 30% of its cross-entropy gap to depth (codebooks 2..K): not measured" in lines


def smoke_study(tiny_egs, tmp_path, *options):
    """``study run [options]`` at the smoke scale in a fresh Dora folder; the command's base for ``report``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "AUDIOCRAFT_DORA_DIR": str(tmp_path / "dora"),
           "AUDIOCRAFT_MMD_CHECK_EGS": str(tiny_egs)}
    out = tmp_path / "docs" / "RESULTS.md"
    command = [sys.executable, "-m", "audiocraft_mmd.study", "--scale", "smoke", "--out", str(out),
               "--discussion", str(tmp_path / "none.md"), "--gen-samples", "2", "--gen-duration", "1"]
    # Two XPs at a time, one thread each, as the README runs the study: most of a tiny XP is its start-up.
    run = subprocess.run([*command[:3], "run", "--jobs", "2", *options, *command[3:]], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run, out, command, env


def test_smoke_study_runs_end_to_end_and_reports(tiny_egs, tmp_path):
    run, out, command, env = smoke_study(tiny_egs, tmp_path)
    assert "Best MMD codec: λ=10 delay dim seed=2036" in run.stdout
    report = out.read_text()
    for figure in study_report_figures():
        assert (out.parent / "figures" / figure).stat().st_size > 0 and f"figures/{figure}" in report
    assert "Incomplete" not in report
    codec_rows = [line for line in report.splitlines() if line.startswith("| baseline seed=2036 |")]
    assert len(codec_rows) == 5  # codec table, entropy table, two LMs, lag table
    lm_rows = [line for line in report.splitlines() if "| parallel |" in line or "| depth |" in line]
    assert len(lm_rows) == 4 and all("| 100 |" in row or "| 500 (100 + 400) |" in row for row in lm_rows)
    assert sum("| 500 (100 + 400) |" in row for row in lm_rows) == 2  # depth: temporal + depth steps
    assert "| lag 50 (0.5 s) |" in report
    assert "## LM probes" not in report  # without --probes (see the slow test below)
    assert "CE gap parallel − depth (codebooks 2..K), baseline" in report
    assert "depth LM beats parallel (codebooks 2..K) by more than the seed spread: gap" in report
    assert "Delay-aligned mean pairwise MI reduced by ≥ 50%" in report and "(per seed): **" in report
    # A second report reuses every measurement cached in the XP folders, and trains nothing.
    again = subprocess.run([*command[:3], "report", *command[3:]], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "measuring" not in again.stderr and "timing generation" not in again.stderr
    cached = list((tmp_path / "dora" / "xps").glob(f"*/{results.LM_MEASURES}"))
    assert len(cached) == 4 and all("valid_ce" in json.loads(p.read_text()) for p in cached)
    lagged = list((tmp_path / "dora" / "xps").glob(f"*/{results.LAGGED_FOLDER}/report.json"))
    assert len(lagged) == 2  # baseline and best codec
    # Every figure is stored beside the report, and rebuilds it without any XP.
    measurements = out.parent / "measurements"
    assert len(list(measurements.glob("*.json"))) == 2 + 4  # the two codecs and their LMs
    rebuilt = tmp_path / "rebuilt" / "RESULTS.md"
    from_files = subprocess.run([*command[:3], "report", "--from-measurements", "--measurements", str(measurements),
                                 *command[3:], "--out", str(rebuilt)], cwd=tmp_path,
                                env={**env, "AUDIOCRAFT_DORA_DIR": str(tmp_path / "no_xps")}, capture_output=True,
                                text=True, timeout=600)
    assert from_files.returncode == 0, from_files.stderr[-3000:]
    assert rebuilt.read_text() == out.read_text()


@pytest.mark.slow
def test_smoke_study_with_probes_reports_them(tiny_egs, tmp_path):
    _, out, _, _ = smoke_study(tiny_egs, tmp_path, "--probes")
    report = out.read_text()
    probe_rows = [line for line in report.splitlines() if line.startswith("| twice the updates |")]
    assert len(probe_rows) == 4 + 1  # 2 patterns x 2 codecs, then the parallel gap to depth


def test_lm_probe_tables_list_the_probes_lms_and_their_gaps():
    from audiocraft_mmd.study.report import lm_probe_tables
    codecs = [codec_result(0., 1, 5., 7., 0.4), codec_result(10., 1, 4.8, 7., 0.1)]
    probe = specs.LMProbe("twice the updates", ("optim.updates_per_epoch=8",))
    per_codebook = {(0., "parallel"): [3.0, 5.0, 5.0, 5.0], (0., "depth"): [3.5, 4.0, 4.0, 4.0],
                    (10., "parallel"): [3.0, 4.8, 4.8, 4.8], (10., "depth"): [3.5, 4.4, 4.4, 4.4]}
    lm_probes = [results.LMResult(codec=next(c.spec for c in codecs if c.spec.weight == w), pattern=p, sig="lm",
                                cell={"valid_ce": sum(v) / 4, "valid_ce_per_codebook": v}, minutes=1.5, probe=probe)
                 for (w, p), v in per_codebook.items()]
    selection = specs.Selection(best=codecs[1].spec, qualified=True, reason="", candidates=[])
    lms, gaps = lm_probe_tables(results.StudyResults("small", codecs, [], selection, [], [], lm_probes=lm_probes))
    assert sum(line.startswith("| twice the updates |") for line in lms.splitlines()) == 4
    assert "| 3.000 / 5.000 / 5.000 / 5.000 | 1.5 |" in lms
    (row,) = [line for line in gaps.splitlines() if line.startswith("| twice the updates |")]
    assert row == "| twice the updates | 1 | parallel | depth | +1.000 | +0.400 | 60.0% |"


def test_lm_probes_are_looked_for_only_on_finished_codecs():
    """A stopped run can leave a compared codec's XP without a checkpoint: its probes' LMs are not looked for
    (building their config would read the missing checkpoint)."""
    class Source:
        def __init__(self):
            self.asked = []

        def lm(self, key, argv):
            self.asked.append(key.codec_sig)
            return None

    scale = specs.SMALL
    selection = specs.Selection(best=specs.CodecSpec(1., "parallel", "dim", scale.seeds[0]), qualified=True,
                                reason="", candidates=[])
    compared = scale.compared(selection.best)
    finished = {spec: codec_result(spec.weight, spec.seed, 1., 7., 0.4) for spec in compared[:2]}
    source = Source()
    assert results.lm_probe_results(scale, selection, finished, source) == []
    assert set(source.asked) == {codec.sig for codec in finished.values()} and len(compared) > 2
    assert len(source.asked) == 2 * len(scale.lm_probes) * len(scale.patterns)


def study_report_figures():
    from audiocraft_mmd.study.report import FIGURE_NAMES
    return FIGURE_NAMES.values()
