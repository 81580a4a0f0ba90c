"""`solver=compression/encodec_mmd_32khz`: the paper's recipe, and a few CPU steps of it at reduced size."""

import math

import pytest
import torch

from audiocraft_mmd import train
from audiocraft_mmd.losses import PAPER_BANDWIDTHS

from common_utils import datasource, write_egs

RECIPE = "solver=compression/encodec_mmd_32khz"
# Reduced to fit a CPU test: every architectural choice stays, only widths, codebook size and batch shrink.
REDUCED = ["seanet.n_filters=4", "seanet.lstm=0", "rvq.bins=64", "msstftd.filters=4", "dataset.batch_size=2",
           "dataset.num_workers=0", "dataset.valid.num_samples=2", "dataset.evaluate.num_samples=2",
           "dataset.evaluate.batch_size=2", "optim.ema.device=cpu"]


def test_recipe_is_the_papers():
    cfg = train.main.get_xp([RECIPE]).cfg
    assert (cfg.sample_rate, cfg.channels) == (32000, 1)
    assert cfg.sample_rate / math.prod(cfg.seanet.ratios) == 50  # frames per second
    assert (cfg.seanet.dimension, cfg.seanet.n_filters, cfg.rvq.n_q, cfg.rvq.bins) == (128, 64, 4, 2048)
    assert not cfg.rvq.q_dropout
    assert dict(cfg.losses) == {"adv": 4.0, "feat": 4.0, "l1": 0.1, "logmel": 0.0, "mel": 0.0, "msspec": 2.0,
                                "sisnr": 0.0}
    assert list(cfg.adversarial.adversaries) == ["msstftd"]
    assert (cfg.optim.optimizer, cfg.optim.lr, list(cfg.optim.adam.betas)) == ("adam", 3e-4, [0.5, 0.9])
    assert (cfg.dataset.batch_size, cfg.dataset.segment_duration) == (64, 1.0)
    assert cfg.optim.epochs * cfg.optim.updates_per_epoch == pytest.approx(600_000, rel=1e-3)
    assert cfg.mmd.macro_batch == 32 and cfg.optim.updates_per_epoch % 32 == 0
    assert cfg.mmd.alignment == "delay" and tuple(cfg.mmd.bandwidths) == PAPER_BANDWIDTHS
    assert cfg.mmd.bandwidth_scale == "none"
    frames_after_delay = 50 - (cfg.rvq.n_q - 1)
    assert cfg.mmd.weight == pytest.approx(1000 * frames_after_delay ** 2)  # the paper's 1000, per row
    assert cfg.prepare_data.sample_rate == 32000 and cfg.prepare_data.name == "debian_music_32k_mono"


def test_reduced_recipe_trains_on_cpu(tmp_path, monkeypatch):
    egs = write_egs(tmp_path / "data", sample_rate=32000)
    monkeypatch.setattr(train.main.dora, "dir", tmp_path / "dora")
    xp = train.main.get_xp([RECIPE, *REDUCED, "optim.updates_per_epoch=3", "mmd.macro_batch=3", *datasource(egs)])
    with xp.enter():
        solver = train.get_solver(xp.cfg)
        before = {name: p.detach().clone() for name, p in solver.model.named_parameters()}
        solver.run_epoch()  # train and valid stages
        solver.commit()  # history and checkpoint
        trained, validated = solver.history[-1]["train"], solver.history[-1]["valid"]
    assert trained["mmd_rows"] == 3 * 2 * 47  # the macro-batch: M batches x B clips x (50 frames - 3 delays)
    assert validated["mmd_rows"] == 2 * 47  # valid batches: the statistic on each batch
    assert math.isfinite(trained["mmd"]) and math.isfinite(validated["mmd"])
    for key in ["d_msstftd", "adv_msstftd", "feat_msstftd", "msspec", "l1", "mmd_loss"]:
        assert math.isfinite(trained[key]), key
    assert trained["nonfinite_step"] == 0.0
    changed = [name for name, p in solver.model.named_parameters() if not torch.equal(before[name], p)]
    assert any(name.startswith("encoder") for name in changed) and any(name.startswith("decoder") for name in changed)
