"""The AudioCraft seams of `audiocraft_mmd.integration`, in this process and in worker processes."""

import multiprocessing
import os
import sys

import pytest
import torch

from audiocraft_mmd import train

from common_utils import ProbeDataset, probe


def check(seen: dict) -> None:
    assert seen["audiocraft_config"].endswith(os.path.join("config", "teams", "default.yaml"))
    assert seen["train"] == "audiocraft_mmd.train"
    assert seen["wrapped"] == [True, True, True]
    assert seen["safe_config"]
    assert seen["our_pattern"] == [0, 0, 1, 1]


def test_this_process():
    check(probe())


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_data_loader_workers(method):
    # AudioCraft's loaders use the configured start method (forkserver by default).
    from audiocraft.solvers.builders import get_loader
    loader = get_loader(ProbeDataset(), None, batch_size=None, num_workers=1, seed=0,
                        multiprocessing_context=method)
    (seen,) = list(loader)
    check(seen)


def test_spawned_evaluation_workers():
    from audiocraft_mmd.solvers.compression_mmd import reconstruction_metrics
    cfg = train.main.get_xp(["solver=compression/mmd"]).cfg
    audio = torch.randn(1, 1, 16000)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        metrics = pool.apply(reconstruction_metrics, (audio, audio, cfg))
        assert metrics["sisnr"] < -50  # perfect reconstruction: minus a very large SI-SNR
        check(pool.apply(probe))  # the same worker, after running our evaluation function


def test_registered_names_resolve_through_audiocraft_builders():
    import omegaconf
    from audiocraft.models.builders import get_codebooks_pattern_provider
    from audiocraft.modules.codebooks_patterns import DelayedPatternProvider
    from audiocraft.solvers import builders
    from audiocraft_mmd import registry

    class Probe(DelayedPatternProvider):
        pass

    registry.PATTERNS.register("probe_pattern")(Probe)
    try:
        cfg = omegaconf.OmegaConf.create({"modeling": "probe_pattern", "probe_pattern": {"delays": [0, 2]}})
        provider = get_codebooks_pattern_provider(2, cfg)
        assert isinstance(provider, Probe) and provider.delays == [0, 2]
        # AudioCraft's own names still resolve
        cfg = omegaconf.OmegaConf.create({"modeling": "parallel"})
        assert type(get_codebooks_pattern_provider(4, cfg)).__name__ == "ParallelPatternProvider"
    finally:
        del registry.PATTERNS["probe_pattern"]
    with pytest.raises(KeyError):
        builders.get_solver(omegaconf.OmegaConf.create({"solver": "no_such_solver"}))


def test_ffmpeg_is_on_path():
    import shutil
    assert shutil.which("ffmpeg") is not None
    assert "audiocraft_mmd" in sys.modules
