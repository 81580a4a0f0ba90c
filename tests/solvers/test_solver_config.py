"""The config tree: baseline vs. MMD solver, and bad `mmd.*` values rejected before training."""

import omegaconf
import pytest

from audiocraft_mmd import train
from audiocraft_mmd.errors import ConfigError
from audiocraft_mmd.solvers.compression_mmd import alignment_delays, validate_mmd_config

from common_utils import TINY_RUN, datasource, dora, mmd_cfg


def flat(cfg):
    def walk(node, prefix=""):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from walk(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value
    return dict(walk(omegaconf.OmegaConf.to_container(cfg, resolve=True)))


def test_baseline_differs_from_mmd_only_in_the_weight():
    baseline = flat(train.main.get_xp(["solver=compression/default"]).cfg)
    mmd = flat(train.main.get_xp(["solver=compression/mmd"]).cfg)
    assert set(baseline) == set(mmd)
    assert {key for key in baseline if baseline[key] != mmd[key]} == {"mmd.weight"}
    assert baseline["mmd.weight"] == 0 and mmd["mmd.weight"] > 0
    assert mmd["solver"] == "compression_mmd"


def test_alignment_gives_pattern_delays():
    assert alignment_delays(mmd_cfg().mmd, 4) == [0, 1, 2, 3]
    assert alignment_delays(mmd_cfg(alignment="parallel").mmd, 4) == [0, 0, 0, 0]
    assert alignment_delays(mmd_cfg(delays=[0, 2, 2, 5]).mmd, 4) == [0, 2, 2, 5]


@pytest.mark.parametrize("overrides, key", [
    (dict(delays=[0, 1]), "mmd.delays"),
    (dict(alignment="diagonal"), "mmd.alignment"),
])
def test_bad_alignment_is_rejected(overrides, key):
    with pytest.raises(ConfigError, match=key):
        alignment_delays(mmd_cfg(**overrides).mmd, 4)


@pytest.mark.parametrize("overrides, key", [
    (dict(weight=-1.0), "mmd.weight"),
    (dict(every=0), "mmd.every"),
    (dict(source="decoder"), "mmd.source"),
    (dict(scope="world"), "mmd.scope"),
    (dict(scope_check=True), "mmd.scope_check"),  # checks scope=global only
])
def test_bad_values_are_rejected(overrides, key):
    with pytest.raises(ConfigError, match=key):
        validate_mmd_config(mmd_cfg(**overrides))


@pytest.mark.parametrize("overrides, message", [
    (["mmd.bandwidths=[]"], "bandwidths"),
    (["mmd.estimator=nope"], "estimator"),
    (["dataset.batch_size=1", "dataset.segment_duration=0.06"], "at least 2"),  # 3 frames - delay 3
    (["mmd.condition=past", "mmd.scope=global"], "does not support mmd.scope='global'"),
])
def test_dora_run_stops_at_start_with_the_key_named(tiny_egs, tmp_path, overrides, message):
    run = dora(["run", "solver=compression/mmd", *TINY_RUN, *datasource(tiny_egs), *overrides], tmp_path, timeout=300)
    assert run.returncode != 0
    assert "ConfigError" in run.stderr and message in run.stderr, run.stderr[-3000:]
    assert "Train |" not in run.stderr  # nothing trained


def test_batch_size_not_divisible_by_processes_is_rejected():
    cfg = mmd_cfg()
    with pytest.raises(ConfigError, match=r"dataset\.batch_size=16 is not divisible by the number of processes \(3\)"):
        train.split_batch_sizes(cfg, 3)
    cfg = mmd_cfg()
    cfg.dataset.evaluate.batch_size = 6
    with pytest.raises(ConfigError, match=r"dataset\.evaluate\.batch_size=6"):
        train.split_batch_sizes(cfg, 4)
    train.split_batch_sizes(cfg, 2)
    assert cfg.dataset.batch_size == 8 and cfg.dataset.evaluate.batch_size == 3
