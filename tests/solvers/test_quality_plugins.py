"""Opt-in audio-quality plugins of the compression solver's evaluate stage."""

import sys

import omegaconf
import pytest
import torch

from common_utils import require_modules

from audiocraft_mmd.errors import ConfigError
from audiocraft_mmd.solvers.evaluation import EVALUATION_PLUGINS, EvaluationBatch
from audiocraft_mmd.solvers.quality_plugins import visqol_api, visqol_scores


def test_plugins_are_registered():
    assert {"reconstruction", "music_distance", "visqol"} <= set(EVALUATION_PLUGINS)


def test_evaluate_stage_reports_quality(tiny_solver):
    require_modules("musicnn", "visqol", install="requirements/lock.txt, requirements/no-deps.txt")
    solver = tiny_solver
    with omegaconf.open_dict(solver.cfg):
        solver.cfg.evaluate.plugins = ["reconstruction", "music_distance", "visqol"]
    batch = next(iter(solver.dataloaders["evaluate"]))
    plugins = {name: EVALUATION_PLUGINS.lookup(name)(solver) for name in solver.cfg.evaluate.plugins}
    for reconstruction, expect_perfect in ((batch.clone(), True), (0.5 * torch.randn_like(batch), False)):
        for plugin in plugins.values():
            plugin.__init__(solver)
            plugin.update(EvaluationBatch(batch, reconstruction, None))
        metrics = {k: v for plugin in plugins.values() for k, v in plugin.compute().items()}
        if expect_perfect:
            assert metrics["si_snr_db"] > 40 and metrics["mel_distance"] < 1e-4
            # Paired sets: cross pairs (x_i, x_i) are left out, so a perfect codec reads 0.
            assert abs(metrics["musicnn_kernel"]) < 1e-9 and metrics["visqol_moslqo"] > 4.5
            perfect = metrics
        else:
            assert metrics["si_snr_db"] < 0 and metrics["mel_distance"] > 0.1
            assert metrics["musicnn_kernel"] > perfect["musicnn_kernel"] + 0.1
            assert metrics["musicnn_frechet"] > perfect["musicnn_frechet"] + 1
            assert metrics["visqol_moslqo"] < perfect["visqol_moslqo"] - 1


def test_silent_evaluate_segments_are_left_out_not_fatal(tiny_solver):
    require_modules("musicnn", "visqol", install="requirements/lock.txt, requirements/no-deps.txt")
    batch = next(iter(tiny_solver.dataloaders["evaluate"]))
    batch[0].zero_()  # a silent segment, as the start of a track can be
    for name, skipped in (("music_distance", "musicnn_skipped"), ("visqol", "visqol_skipped")):
        plugin = EVALUATION_PLUGINS.lookup(name)(tiny_solver)
        plugin.update(EvaluationBatch(batch, batch.clone(), None))
        metrics = plugin.compute()
        assert metrics[skipped] == 1 and len(metrics) == (3 if name == "music_distance" else 2), metrics


def test_the_solver_runs_the_plugins_in_its_evaluate_stage(tiny_solver, monkeypatch):
    with omegaconf.open_dict(tiny_solver.cfg):
        tiny_solver.cfg.evaluate.plugins = ["reconstruction"]
    metrics = tiny_solver.run_stage("evaluate", tiny_solver.evaluate)
    assert {"si_snr_db", "mel_distance", "sisnr"} <= set(metrics)
    assert metrics["si_snr_db"] == pytest.approx(-metrics["sisnr"], rel=1e-4)


def test_missing_visqol_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "visqol", None)  # import fails
    with pytest.raises(ConfigError, match="pip install visqol-python==3.8.0"):
        visqol_api()


def test_visqol_orders_noise_levels():
    require_modules("visqol", install="pip install visqol-python==3.8.0")
    g = torch.Generator().manual_seed(0)
    t = torch.arange(3 * 16000) / 16000
    clean = (0.3 * torch.sin(2 * torch.pi * 220 * t) * (1 + torch.sin(2 * torch.pi * 3 * t)))[None, None]
    clean = clean + 0.05 * torch.sin(2 * torch.pi * 660 * t)
    api = visqol_api()
    scores = [visqol_scores(api, clean, clean + level * torch.randn(clean.shape, generator=g), 16000)[0]
              for level in (0.001, 0.03, 0.3)]
    assert scores[0] > scores[1] > scores[2], scores


def test_bands_plugin_sees_a_lowpass_and_a_buzz_where_they_are(tiny_solver):
    import julius
    from audiocraft_mmd.solvers.evaluation import build_evaluation_plugins
    rate, frame_rate = int(tiny_solver.cfg.sample_rate), float(tiny_solver.model.frame_rate)
    audio = 0.1 * torch.randn(4, 1, rate, generator=torch.Generator().manual_seed(0))
    pulses = torch.zeros_like(audio)
    pulses[..., ::int(rate / frame_rate)] = 2.  # each harmonic line ~14 dB above the noise in its bin
    metrics = {}
    for name, output in (("lowpass", julius.lowpass_filter(audio, 1000 / rate)), ("buzz", audio + pulses)):
        (plugin,) = build_evaluation_plugins(["bands"], tiny_solver).values()
        for start in (0, 2):  # two evaluate batches
            plugin.update(EvaluationBatch(audio[start:start + 2], output[start:start + 2], captured=None))
        metrics[name] = plugin.compute()
    low, buzz = metrics["lowpass"], metrics["buzz"]
    assert low["lsd_0_250"] < 1 and low["lsd_2000_4000"] > 20  # worse above the cut-off only
    assert low["band_snr_0_250"] > 30 and low["band_snr_2000_4000"] < 1
    assert buzz["comb_db"] > buzz["comb_reference_db"] + 8 and abs(low["comb_db"]) < 2
